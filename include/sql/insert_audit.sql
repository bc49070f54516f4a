insert into {ops}.maintenance_audit
    (dag_id, run_id, task_id, action, target, dry_run, rows_affected, started_at, finished_at, outcome, details)
values (%(dag_id)s, %(run_id)s, %(task_id)s, %(action)s, %(target)s, %(dry_run)s, %(rows_affected)s,
        %(started_at)s, %(finished_at)s, %(outcome)s, %(details)s)
returning id
