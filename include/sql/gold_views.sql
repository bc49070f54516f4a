-- Materialized views of the gold schema, and whether CONCURRENTLY can refresh each one:
-- it needs a populated view and a valid unique index on plain columns without a WHERE clause.
select m.matviewname, m.ispopulated,
       exists (select 1 from pg_index i
               where i.indrelid = c.oid and i.indisunique and i.indisvalid
                 and i.indpred is null and i.indexprs is null) as has_unique_index
from pg_matviews m
join pg_namespace n on n.nspname = m.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = m.matviewname
where m.schemaname = %(schema)s
order by m.matviewname
