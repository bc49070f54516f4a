-- Who holds the backup advisory lock (a pg_dump backup of ours in progress), if anyone.
select a.pid, a.application_name, a.backend_start, a.xact_start
from pg_locks l
join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted
  and l.classid = 0 and l.objid = %(key)s and l.objsubid = 1
  and l.database = (select oid from pg_database where datname = current_database())
limit 1
