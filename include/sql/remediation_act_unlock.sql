select pg_advisory_unlock(hashtext('streamflow_ops.act:' || %(dag_id)s || '/' || %(run_id)s))
