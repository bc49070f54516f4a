insert into {ops}.health_check_results
    (sweep_id, checked_at, component, check_name, subject, status, value, threshold, message, details, runbook)
values (%(sweep_id)s, %(checked_at)s, %(component)s, %(check_name)s, %(subject)s, %(status)s, %(value)s,
        %(threshold)s, %(message)s, %(details)s, %(runbook)s)
