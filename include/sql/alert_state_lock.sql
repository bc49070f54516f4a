-- One alerting session at a time (a retried task and a new sweep never deliver the same owed item twice).
select pg_advisory_lock(hashtext('streamflow_ops.alert_state'))
