-- Schemas outside the dump that the dumped objects need to restore: relations read by views and
-- materialized views (pg_rewrite dependencies) and tables referenced by foreign keys.
select distinct rn.nspname as schema
from pg_rewrite rw
join pg_class v on v.oid = rw.ev_class
join pg_namespace vn on vn.oid = v.relnamespace
join pg_depend d on d.objid = rw.oid and d.classid = 'pg_rewrite'::regclass
                 and d.refclassid = 'pg_class'::regclass
join pg_class r on r.oid = d.refobjid
join pg_namespace rn on rn.oid = r.relnamespace
where vn.nspname = any(%(schemas)s)
  and not rn.nspname = any(%(schemas)s)
  and rn.nspname not in ('pg_catalog', 'information_schema')
union
select rn.nspname
from pg_constraint con
join pg_class t on t.oid = con.conrelid
join pg_namespace tn on tn.oid = t.relnamespace
join pg_class r on r.oid = con.confrelid
join pg_namespace rn on rn.oid = r.relnamespace
where con.contype = 'f'
  and tn.nspname = any(%(schemas)s)
  and not rn.nspname = any(%(schemas)s)
order by 1
