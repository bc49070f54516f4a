-- A run's approval is consumed by its first real act: that act's ops.maintenance_audit row, whatever its
-- outcome (also 'in progress': it started and never closed, e.g. its worker was killed).
select id, started_at, finished_at, outcome, details -> 'approval' as approval
from {ops}.maintenance_audit
where dag_id = %(dag_id)s and run_id = %(run_id)s and task_id = %(task_id)s and not dry_run
order by id
limit 1
