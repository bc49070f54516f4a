-- The backups the maintenance DAGs recorded, newest first: the newest VERIFIED one (what backup_age
-- measures) and the newest real one of any finished outcome (unverified or slow: a warning).
(select 'verified' as kind, finished_at, outcome, target,
        coalesce((details ->> 'duration_s')::float, extract(epoch from finished_at - started_at)) as duration_s
 from {ops}.maintenance_audit
 where action = 'backup' and outcome = 'verified' and not dry_run and finished_at is not null
 order by finished_at desc
 limit 1)
union all
(select 'latest', finished_at, outcome, target,
        coalesce((details ->> 'duration_s')::float, extract(epoch from finished_at - started_at))
 from {ops}.maintenance_audit
 where action = 'backup' and outcome in ('verified', 'unverified') and not dry_run and finished_at is not null
 order by finished_at desc
 limit 1)
