-- One act per remediation run at a time (a cleared act started while the first still runs waits for nothing:
-- it is refused). Session-level, so a killed worker's lock goes with its connection.
select pg_try_advisory_lock(hashtext('streamflow_ops.act:' || %(dag_id)s || '/' || %(run_id)s)) as locked
