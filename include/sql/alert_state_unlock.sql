select pg_advisory_unlock(hashtext('streamflow_ops.alert_state'))
