-- Direct partitions of the bronze table with their bounds; each partition's own schema and name come from
-- the catalog (a partition may live in another schema than its parent).
select pn.nspname as schema, c.relname, c.oid::regclass::text as relation, c.relkind,
       pg_get_expr(c.relpartbound, c.oid) as bound
from pg_inherits i
join pg_class c on c.oid = i.inhrelid
join pg_namespace pn on pn.oid = c.relnamespace
join pg_class p on p.oid = i.inhparent
join pg_namespace n on n.oid = p.relnamespace
where n.nspname = %(schema)s and p.relname = %(table)s and p.relkind = 'p'
order by c.relname
