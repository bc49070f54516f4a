-- What a gold export carries as data: every table, materialized view and view of the schemas
-- (partitions through their parent). kind: r table, p partitioned table, m materialized view, v view.
select c.oid, n.nspname as schema, c.relname as name, c.relkind::text as kind, c.relispopulated as populated
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%(schemas)s)
  and c.relkind in ('r', 'p', 'm', 'v')
  and not c.relispartition
order by 2, 3
