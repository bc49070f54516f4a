-- The session holding one of our advisory locks in this database (the maintenance lock, two-key form:
-- classid, objid, objsubid 2; the backup lock, one bigint key: 0, key, objsubid 1), if anyone.
select a.pid, a.application_name, a.backend_start, a.xact_start
from pg_locks l
join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted
  and l.classid = %(classid)s and l.objid = %(objid)s and l.objsubid = %(objsubid)s
  and l.database = (select oid from pg_database where datname = current_database())
limit 1
