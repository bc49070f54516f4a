-- The backups the maintenance DAGs recorded, newest first: the newest good one, `verified` (restored and
-- compared) or `completed` (a CNPG Backup: nothing restored), what backup_age measures; and the newest
-- real one of any finished outcome (unverified, pending verification, or slow: a warning).
-- Rows written before outcomes were split ('success' with details.verified) keep counting after an upgrade.
with backups as (
    select finished_at, target,
           case when outcome = 'success' then
                    case when (details ->> 'verified')::boolean then 'verified' else 'unverified' end
                else outcome end as outcome,
           coalesce((details ->> 'duration_s')::float, extract(epoch from finished_at - started_at)) as duration_s
    from {ops}.maintenance_audit
    where action = 'backup' and not dry_run and finished_at is not null
      and outcome in ('verified', 'completed', 'unverified', 'success')
)
(select 'verified' as kind, finished_at, outcome, target, duration_s
 from backups where outcome in ('verified', 'completed') order by finished_at desc limit 1)
union all
(select 'latest', finished_at, outcome, target, duration_s
 from backups order by finished_at desc limit 1)
