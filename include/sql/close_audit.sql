-- Close an action's ops.maintenance_audit row, written as 'in progress' before the action started.
update {ops}.maintenance_audit
set finished_at = %(finished_at)s, outcome = %(outcome)s, rows_affected = %(rows_affected)s, details = %(details)s
where id = %(id)s
