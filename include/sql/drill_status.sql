-- postgres.restore_drill_age: per backup method (those with a backup or a drill), its newest finished
-- restore_drill row (outcome, when, error) and its newest passed one.
with drills as (
    select details ->> 'method' as method, outcome, finished_at, details ->> 'error' as error,
           row_number() over (partition by details ->> 'method' order by finished_at desc) as nth
    from {ops}.maintenance_audit
    where action = 'restore_drill' and not dry_run and finished_at is not null and outcome in ('passed', 'failed')
), methods as (
    select details ->> 'method' as method from {ops}.maintenance_audit
    where action = 'backup' and not dry_run and outcome in ('verified', 'completed', 'unverified', 'success')
      and details ->> 'method' is not null
    union
    select method from drills
)
select m.method, d.outcome as last_outcome, d.finished_at as last_drill_at, d.error as last_error,
       (select max(p.finished_at) from drills p where p.method = m.method and p.outcome = 'passed') as last_passed_at
from methods m
left join drills d on d.method = m.method and d.nth = 1
order by m.method
