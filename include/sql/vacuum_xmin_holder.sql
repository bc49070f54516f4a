-- The session holding the oldest xmin (VACUUM may not remove tuples that died after it), other than ours.
select pid, coalesce(nullif(application_name, ''), 'unnamed client') as application_name, usename, state,
       age(backend_xmin) as xmin_age, now() - xact_start as xact_age
from pg_stat_activity
where backend_xmin is not null and pid <> pg_backend_pid()
order by age(backend_xmin) desc
limit 1
