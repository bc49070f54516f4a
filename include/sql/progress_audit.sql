-- An open ('in progress') ops.maintenance_audit row's count so far, committed with the work it counts.
update {ops}.maintenance_audit set rows_affected = %(rows_affected)s where id = %(id)s and finished_at is null
