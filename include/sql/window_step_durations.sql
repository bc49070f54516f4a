-- Wall time of each step of one maintenance window run, from its audit rows (the database's clock):
-- the first action's start to the last action's end, per step (the task id before its first dot).
select split_part(task_id, '.', 1) as step,
       extract(epoch from max(coalesce(finished_at, now())) - min(started_at))::float8 as seconds
from {ops}.maintenance_audit
where dag_id = %(dag_id)s and run_id = %(run_id)s
group by 1
order by 1
