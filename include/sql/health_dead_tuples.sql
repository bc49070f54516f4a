-- Dead tuples per table in the watched schemas (statistics collector; autovacuum resets them).
select schemaname || '.' || relname as table_name, n_dead_tup, n_live_tup,
       greatest(last_vacuum, last_autovacuum) as last_vacuum
from pg_stat_user_tables
where schemaname = any(%(schemas)s)
order by schemaname, relname
