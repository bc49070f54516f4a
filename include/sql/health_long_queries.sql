-- Active client queries and how long they have been running; the evaluator applies the threshold.
select pid, coalesce(usename, '') as usename, coalesce(application_name, '') as application_name,
       extract(epoch from clock_timestamp() - query_start)::float8 as running_s,
       left(query, 200) as query
from pg_stat_activity
where state = 'active' and backend_type = 'client backend' and pid <> pg_backend_pid()
  and query_start is not null
order by query_start
