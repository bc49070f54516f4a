-- A relation's columns with their exact types (typmods included), in order: the export's table definition.
select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null
from pg_attribute a
where a.attrelid = %(oid)s and a.attnum > 0 and not a.attisdropped
order by a.attnum
