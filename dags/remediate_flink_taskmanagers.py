"""Runbook KafkaConsumerLagHigh: set the Flink TaskManager count, after approval."""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.remediation.flow import remediation_flow


@dag(
    dag_id="remediate_flink_taskmanagers",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "remediation", "manual", "flink", "kubernetes"],
    params={
        "dry_run": dry_run_param(True, "show the current and the new TaskManager count"),
        "replicas": Param(2, type="integer", minimum=1, maximum=10, title="TaskManagers",
                          description="The TaskManager count to set (runbook: 2; more when the job lags)."),
    },
    doc_md="""
### Scale Flink TaskManagers (runbook: Alert Response Procedures > Alert: KafkaConsumerLagHigh; Flink Operations > Scale TaskManagers)
Use when the Flink consumer group lags and the job is backpressured, or TaskManagers are missing.

- **plan**: the FlinkDeployment's `spec.taskManager.replicas` (flink-kubernetes-operator), else the
  `flink-taskmanager` Deployment's replicas, now and after. Refused while the operator is upgrading or
  rolling back, or when neither exists.
- **approve** (real runs only): Reject or no answer in 1 h: nothing done.
- **act**: a merge patch of the FlinkDeployment, or of the Deployment's scale subresource (`kubectl scale`).
- **verify**: `flink.taskmanagers` and `flink.backpressure` before and after (new TaskManagers take a
  minute to register: re-run the sweep later for the settled state). Audit: `scale_taskmanagers`.
""",
)
def remediate_flink_taskmanagers():
    remediation_flow("remediate_flink_taskmanagers", "Scale the Flink TaskManagers?")


remediate_flink_taskmanagers()
