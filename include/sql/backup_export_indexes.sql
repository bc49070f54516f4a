-- A relation's index definitions, replayed on the exported plain table after its rows are loaded.
select pg_get_indexdef(i.indexrelid) as definition
from pg_index i
where i.indrelid = %(oid)s
order by 1
