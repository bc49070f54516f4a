-- Sessions of the current database with what remediate_postgres_connections decides on: how long each
-- has been in its state, whether its role is a superuser or a replication role (a superuser has the
-- replication attribute too: it counts as a superuser), and which one is us.
select a.pid,
       a.usename,
       a.application_name,
       a.state,
       a.backend_type,
       a.backend_start,
       extract(epoch from now() - a.state_change)::float8    as idle_s,
       coalesce(r.rolsuper, false)                           as is_superuser,
       coalesce(r.rolreplication and not r.rolsuper, false) as is_replication,
       a.pid = pg_backend_pid()                              as is_own
from pg_stat_activity a
left join pg_roles r on r.oid = a.usesysid
where a.datname = current_database()
order by a.pid
