-- The requested schemas that do not exist (bad input, refused before any work).
select s from unnest(%(schemas)s::text[]) as s
where not exists (select 1 from pg_namespace where nspname = s)
order by 1
