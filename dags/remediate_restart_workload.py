"""Rollout restart of one allow-listed workload, after approval.

Runbook: Quick Reference > Critical Commands ("Restart a crashed service").
"""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.remediation.flow import remediation_flow


@dag(
    dag_id="remediate_restart_workload",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "remediation", "manual", "kubernetes"],
    params={
        "dry_run": dry_run_param(True, "check that the workload may be restarted and show the patch"),
        "namespace": Param("streamflow-processing", type="string", pattern=r"^streamflow-[a-z0-9-]+$",
                           title="Namespace", description="A streamflow-* namespace (others are refused)."),
        "kind": Param("Deployment", type="string", enum=["Deployment", "StatefulSet"], title="Kind",
                      description="The workload's kind: Deployment or StatefulSet."),
        "name": Param("flink-taskmanager", type="string", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                      title="Name", description="The workload's name; it must be in remediation.restartable_workloads."),
    },
    doc_md="""
### Rollout restart of a workload (runbook: Quick Reference > Critical Commands, "Restart a crashed service")
What `kubectl rollout restart <kind>/<name> -n <namespace>` does: the pod template annotation
`kubectl.kubernetes.io/restartedAt` is set, and the controller replaces the pods one by one.

- **plan**: refused unless the workload is in a streamflow-* namespace **and** in the config's allow
  list `remediation.restartable_workloads`; refused while it is already rolling out.
- **approve** (real runs only): Reject or no answer in 1 h: nothing done.
- **act**: a strategic merge patch of the pod template. **verify**: `kubernetes.pods` of the namespace
  before and after. Audit: `rollout_restart`.
""",
)
def remediate_restart_workload():
    remediation_flow("remediate_restart_workload", "Restart this workload?")


remediate_restart_workload()
