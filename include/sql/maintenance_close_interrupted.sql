-- Close a step's real-run audit rows still 'in progress' (the caller holds the maintenance advisory lock,
-- so no live run owns them: a killed run left them) as 'interrupted'; finished_at stays null.
update {ops}.maintenance_audit
set outcome = 'interrupted', details = details || jsonb_build_object('closed_by_run', %(run_id)s::text)
where outcome = 'in progress' and not dry_run and action like %(pattern)s
returning run_id, task_id, action, target, started_at, rows_affected
