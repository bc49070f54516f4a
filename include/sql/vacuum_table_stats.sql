-- Dead tuples and transaction-ID age of the tables (and materialized views) in the given schemas.
select s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, age(c.relfrozenxid) as xid_age
from pg_stat_user_tables s
join pg_class c on c.oid = s.relid
where s.schemaname = any(%(schemas)s) and c.relkind in ('r', 'm', 't')
order by s.schemaname, s.relname
