"""restore_drill's steps, for the DAG file to wire: one drill per backup method, each with its audit row."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from streamflow_ops.config import get_config
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.params import bool_param
from streamflow_ops.recovery.drill import (
    ACTION,
    FAILED,
    PASSED,
    DrillError,
    compare_scratch_cluster,
    create_scratch_cluster,
    delete_scratch_cluster,
    drill_file_backup,
    plan_cluster_drill,
    record_cluster_drill,
    scratch_cluster_name,
)
from streamflow_ops.recovery.sensors import ScratchClusterSensor
from streamflow_ops.store import Actor, AuditRecord, ensure_ops_schema, write_audit


def _actor_and_dry_run() -> tuple[Actor, bool]:
    ctx = get_current_context()
    actor = Actor(ctx["dag"].dag_id, ctx["run_id"], ctx["task_instance"].task_id)
    return actor, bool_param("dry_run", ctx["params"].get("dry_run", False))


def file_drill(method: str):
    """The drill of one file method (pg_dump or gold_export): skipped when no backup of it exists."""

    @task(task_id=f"drill_{method}")
    def drill() -> dict[str, Any]:
        actor, dry_run = _actor_and_dry_run()
        config = get_config()
        details = drill_file_backup(config, method, actor, dry_run)
        if details is None:
            raise AirflowSkipException(f"no finished {method} backup in {config.backup.folder}: nothing to drill")
        print(f"{method}: {details.get('proved') or details.get('would')}")
        return details

    return drill()


@task(task_id="cnpg_plan")
def cnpg_plan() -> dict[str, Any]:
    """The newest completed Backup and the scratch Cluster; then create it (a dry run only records the plan)."""
    actor, dry_run = _actor_and_dry_run()
    config = get_config()
    if not connection_defined(config.kubernetes.conn_id):
        raise AirflowSkipException(f"no {config.kubernetes.conn_id} connection: no CloudNativePG backups to drill")
    plan = plan_cluster_drill(config, actor)
    if plan is None:
        raise AirflowSkipException(f"no completed Backup of Cluster {config.backup.cnpg_namespace}/"
                                   f"{config.backup.cnpg_cluster}: nothing to drill")
    if dry_run:
        with warehouse_connection(config.warehouse) as conn:
            ensure_ops_schema(conn, config.warehouse.ops_schema)
            write_audit(conn, AuditRecord(actor.dag_id, actor.run_id, actor.task_id, ACTION,
                                          f"cnpg://{plan['namespace']}/{plan['backup']}", True, outcome="dry_run",
                                          details={"method": "cnpg", "would_create": plan["body"]}),
                        config.warehouse.ops_schema)
        raise AirflowSkipException(f"dry run: would recover Backup {plan['backup']} into {plan['body']}")
    plan["started_at"] = datetime.now(timezone.utc).isoformat()
    create_scratch_cluster(config, plan)
    print(f"scratch Cluster {plan['namespace']}/{plan['cluster']} recovering from Backup {plan['backup']}")
    return plan


@task(task_id="cnpg_compare")
def cnpg_compare(plan: dict[str, Any]) -> dict[str, Any]:
    """Gold exactly, bronze and silver at least what existed when the backup started; the error is kept
    (XCom `error`) for the drill's audit row."""
    try:
        return compare_scratch_cluster(get_config(), plan)
    except DrillError as exc:
        get_current_context()["ti"].xcom_push(key="error", value=str(exc))
        raise


@task(task_id="cnpg_cleanup", trigger_rule="all_done")
def cnpg_cleanup() -> dict[str, Any]:
    """Always: delete the scratch Cluster (derived from the run, so also after a failed plan step), then write
    the CNPG drill's one audit row: passed only if the comparison passed."""
    ctx = get_current_context()
    ti, config = ctx["ti"], get_config()
    plan = ti.xcom_pull(task_ids="cnpg_plan")
    namespace = (plan or {}).get("namespace", config.backup.cnpg_namespace)
    name = scratch_cluster_name(config.backup.cnpg_cluster, ctx["dag"].dag_id, ctx["run_id"])
    deleted = delete_scratch_cluster(config, namespace, name) if connection_defined(config.kubernetes.conn_id) else False
    if plan is None:
        raise AirflowSkipException(f"no CNPG drill ran (scratch Cluster {name} {'deleted' if deleted else 'absent'})")
    seconds = ti.xcom_pull(task_ids="cnpg_wait")
    compared = ti.xcom_pull(task_ids="cnpg_compare")
    error = ti.xcom_pull(task_ids="cnpg_compare", key="error")
    outcome = PASSED if compared is not None else FAILED
    details = {"restore_seconds": seconds, "compared": compared, "scratch_cluster_deleted": deleted,
               "error": error or (None if compared is not None else
                                  "the scratch Cluster never became ready (cnpg_wait)" if seconds is None
                                  else "the comparison did not finish (cnpg_compare: see its log)")}
    actor = Actor(ctx["dag"].dag_id, ctx["run_id"], ti.task_id)
    record_cluster_drill(config, actor, plan, outcome, details, datetime.fromisoformat(plan["started_at"]))
    print(f"CNPG drill of Backup {plan['backup']}: {outcome}; scratch Cluster {name} deleted: {deleted}")
    if outcome == FAILED:  # the run must read failed: this step is its leaf
        raise AirflowFailException(f"CNPG restore drill of Backup {plan['backup']} failed: {details['error']}")
    return {"outcome": outcome, **details}


def cnpg_drill() -> None:
    """plan + create -> wait (deferred) -> compare, and the cleanup that always runs after them."""
    plan = cnpg_plan()
    waited = ScratchClusterSensor(task_id="cnpg_wait", plan=plan)
    compared = cnpg_compare(plan)
    waited >> compared
    [plan, waited, compared] >> cnpg_cleanup()
