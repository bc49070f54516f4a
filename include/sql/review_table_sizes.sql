-- Weekly review: total size (table, indexes, TOAST) of each schema.table; null when it does not exist.
select s || '.' || t as name, pg_total_relation_size(to_regclass(format('%%I.%%I', s, t))) as bytes
from unnest(%(schemas)s::text[], %(tables)s::text[]) as x(s, t)
