-- (view, depends_on) pairs between materialized views of one schema, also through plain views,
-- read from the rewrite rules' dependencies (pg_depend / pg_rewrite).
with recursive reads as (
    select distinct r.ev_class as reader, d.refobjid as source
    from pg_rewrite r
    join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
                    and d.refclassid = 'pg_class'::regclass and d.refobjid <> r.ev_class
), reach as (
    select rd.reader as mv, rd.source
    from reads rd
    join pg_class c on c.oid = rd.reader and c.relkind = 'm'
    join pg_namespace n on n.oid = c.relnamespace and n.nspname = %(schema)s
    union
    select reach.mv, rd.source
    from reach
    join pg_class v on v.oid = reach.source and v.relkind = 'v'
    join reads rd on rd.reader = reach.source
)
select distinct mv.relname as view, src.relname as depends_on
from reach
join pg_class mv on mv.oid = reach.mv
join pg_class src on src.oid = reach.source and src.relkind = 'm'
join pg_namespace sn on sn.oid = src.relnamespace and sn.nspname = %(schema)s
order by 1, 2
