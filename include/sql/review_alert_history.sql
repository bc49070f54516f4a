-- Weekly review: every answered check result in [since, until), oldest first per check and subject
-- (since reaches back before the week so the week's first change is known).
select check_name, subject, checked_at, status
from {ops}.health_check_results
where checked_at >= %(since)s and checked_at < %(until)s and status in ('ok', 'warning', 'critical')
order by check_name, subject, checked_at
