"""Runbook FlinkJobNotRunning / FlinkCheckpointFailing: savepoint, then restart the job, after approval."""
from __future__ import annotations

from airflow.sdk import dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.remediation.flow import remediation_flow


@dag(
    dag_id="remediate_flink_restart",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "remediation", "manual", "flink"],
    params={"dry_run": dry_run_param(True, "show the savepoint and restart steps")},
    doc_md="""
### Restart the Flink job (runbook: Alert Response Procedures > Alert: FlinkJobNotRunning / Alert: FlinkCheckpointFailing; Flink Operations > Restart Flink Job)
- **plan**: when `FraudDetectionJob` runs, a savepoint first (REST `POST /jobs/<id>/savepoints`, waited
  for). Then, with the flink-kubernetes-operator, `spec.restartNonce` + 1 on the FlinkDeployment (refused
  with upgradeMode stateless: the state would be lost); on a standalone cluster, cancel the job and
  resubmit the uploaded jar (`remediation.flink_entry_class`, `flink_program_args`) from the savepoint,
  or from the newest completed checkpoint when the job is down. Refused when there is neither.
- **approve** (real runs only): Reject or no answer in 1 h: nothing done.
- **act**: as planned; waits until the new job is RUNNING and reports the checkpoint it restored. With the
  operator: the nonce is the live resource's + 1, read at act time, and the act is done only once the
  operator reports that nonce reconciled and the job RUNNING with a new start time (else it fails: not done).
- **verify**: `flink.job_running`, `flink.checkpoint_age`, `flink.checkpoint_failures` before and after.
  Audit: `restart_flink_job`.
""",
)
def remediate_flink_restart():
    remediation_flow("remediate_flink_restart", "Savepoint and restart the Flink job?")


remediate_flink_restart()
