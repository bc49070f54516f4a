-- The session holding the StreamFlow maintenance advisory lock (two-key form: classid, objid, objsubid 2).
select a.pid, a.application_name, a.backend_start as since
from pg_locks l
join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted
  and l.classid = %(namespace)s and l.objid = %(key)s and l.objsubid = 2
limit 1
