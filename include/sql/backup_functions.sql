-- Functions and procedures per schema: part of the object counts a restore must reproduce.
select n.nspname as schema, count(*) as functions
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
where n.nspname = any(%(schemas)s)
group by 1
