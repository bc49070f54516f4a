-- The user schemas of a database (to prove a restore needed nothing but itself).
select nspname from pg_namespace
where nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and nspname not like 'pg\_%'
order by 1
