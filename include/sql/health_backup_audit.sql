-- The newest real, successful backup the maintenance DAGs recorded.
select finished_at, target, details
from {ops}.maintenance_audit
where action = 'backup' and outcome = 'success' and not dry_run and finished_at is not null
order by finished_at desc
limit 1
