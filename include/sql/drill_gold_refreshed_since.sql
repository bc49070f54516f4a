-- restore_drill: the newest real gold refresh since an instant (a CNPG backup's start): live gold views may
-- differ from the backup's then, and the exact comparison becomes a note.
select finished_at from {ops}.maintenance_audit
where action like 'gold_refresh%%' and not dry_run and finished_at is not null and finished_at > %(since)s
order by finished_at desc
limit 1
