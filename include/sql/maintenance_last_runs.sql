-- maintenance.last_success: per window step, its newest real (not dry) run and the newest successful one.
-- A run's outcome is the worst of its rows: a row still 'in progress' (or closed as 'interrupted' by the
-- next run) > failed > skipped (the step's '<capability>.skipped' row: gate closed, lock held) > success.
with audited as (
    select case when action like 'bronze\_retention%%' then 'retention'
                when action like 'vacuum%%' then 'vacuum'
                when action like 'gold\_refresh%%' then 'gold_refresh'
                when action = 'backup' then 'backup' end as step,
           run_id, started_at, finished_at,
           case when outcome in ('in progress', 'interrupted') then 4 when outcome = 'failed' then 3
                when action like '%%.skipped' then 2 else 1 end as rank,
           coalesce(details ->> 'reason', details ->> 'error', target) as note
    from {ops}.maintenance_audit
    where not dry_run
), runs as (
    select step, run_id, max(started_at) as started_at, max(finished_at) as finished_at, max(rank) as rank,
           (array_agg(note order by rank desc, started_at desc))[1] as note
    from audited
    where step is not null
    group by step, run_id
)
select step,
       (array_agg(run_id order by started_at desc))[1] as last_run_id,
       (array['success', 'skipped', 'failed', 'in progress'])[(array_agg(rank order by started_at desc))[1]]
           as last_outcome,
       max(started_at) as last_started_at,
       (array_agg(note order by started_at desc))[1] as last_note,
       max(finished_at) filter (where rank = 1) as last_success_at
from runs
group by step
