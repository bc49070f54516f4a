-- Per check and subject, the statuses of the last two earlier sweeps and the last known (not unknown/skipped) one.
with previous_sweep as (
    select sweep_id from {ops}.health_check_results
    where sweep_id <> %(sweep_id)s and checked_at >= %(since)s
    order by checked_at desc, id desc
    limit 1
), recent as (
    select check_name, subject, status, sweep_id,
           row_number() over (partition by check_name, subject order by checked_at desc, id desc) as n
    from {ops}.health_check_results
    where sweep_id <> %(sweep_id)s and checked_at >= %(since)s
)
select check_name, subject,
       max(status) filter (where n = 1)                                                     as last_status,
       max(status) filter (where n = 2)                                                     as before_last_status,
       (array_agg(status order by n) filter (where status in ('critical', 'warning', 'ok')))[1] as last_known_status,
       bool_or(sweep_id = (select sweep_id from previous_sweep))                              as in_previous_sweep
from recent
group by check_name, subject
