-- Relations of the backed-up schemas: what the manifest counts and the verification compares.
-- kind: r table, p partitioned table, m materialized view, v view, S sequence, f foreign table, i index.
select n.nspname as schema, c.relname as name, c.relkind::text as kind, c.relispopulated as populated,
       pg_total_relation_size(c.oid) as size_bytes
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%(schemas)s)
  and c.relkind in ('r', 'p', 'm', 'v', 'S', 'f', 'i')
order by 1, 2
