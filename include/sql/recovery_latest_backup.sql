-- The backup to restore a range Kafka no longer holds from: the newest one a restore proved (verified) or
-- CloudNativePG completed, as the backup DAGs recorded it.
select target, outcome, finished_at, details ->> 'method' as method
from {ops}.maintenance_audit
where action = 'backup' and not dry_run and finished_at is not null and outcome in ('verified', 'completed')
order by finished_at desc
limit 1
