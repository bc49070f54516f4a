-- Make re-persisting a sweep (a retried task) idempotent.
delete from {ops}.health_check_results where sweep_id = %(sweep_id)s
