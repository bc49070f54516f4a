-- Client connections against the server's limit (background workers do not count toward max_connections).
select count(*) filter (where backend_type = 'client backend')        as used,
       current_setting('max_connections')::int                        as max_connections,
       current_setting('superuser_reserved_connections')::int         as superuser_reserved
from pg_stat_activity
