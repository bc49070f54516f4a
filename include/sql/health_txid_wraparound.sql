-- Transaction ID age per database; wraparound protection stops writes at 2^31.
select datname, age(datfrozenxid)::bigint as xid_age
from pg_database
where datallowconn
order by xid_age desc
