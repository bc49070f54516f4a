-- Connections against the server's limit. The runbook counts every row of pg_stat_activity; only client
-- backends take a max_connections slot (background workers, autovacuum, walsenders do not), so `used`
-- counts those and `total` is the runbook's figure, reported alongside.
select count(*) filter (where backend_type = 'client backend')        as used,
       count(*)                                                       as total,
       current_setting('max_connections')::int                        as max_connections,
       current_setting('superuser_reserved_connections')::int         as superuser_reserved
from pg_stat_activity
