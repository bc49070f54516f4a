"""What each remediation's tasks do: plan (preconditions included), act (audited), verify, report.

One Remediation per DAG: how it reads and plans, how it acts on an approved plan, and which checks it
is meant to fix. The task functions in flow.py call these with the merged config and the run's params.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.flink.evaluators import select_job
from streamflow_ops.flink.probes import FlinkRest
from streamflow_ops.remediation import actions
from streamflow_ops.remediation.plans import (
    Plan, Refused, plan_flink_restart, plan_session_terminations, plan_taskmanager_scale, plan_workload_restart,
    refuse_unlisted_workload,
)
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.store import Actor, audited, ensure_ops_schema
from streamflow_ops.sweep import run_family

log = logging.getLogger(__name__)
VERIFY_BUDGET_S = 30


@dataclass(frozen=True)
class Remediation:
    dag_id: str
    title: str
    plan: Callable[[StreamflowOpsConfig, Mapping[str, Any]], Plan]
    act: Callable[[StreamflowOpsConfig, Plan, Mapping[str, Any]], dict[str, Any]]
    family: str  # the sweep family whose checks it is meant to fix
    checks: tuple[str, ...]
    subject: Callable[[StreamflowOpsConfig, Mapping[str, Any]], str | None] = lambda config, params: None


# --- remediate_postgres_connections ---------------------------------------------------------------

def _pg(config: StreamflowOpsConfig):
    return warehouse_connection(config.warehouse, statement_timeout_s=config.remediation.statement_timeout_s)


def _idle_s(params: Mapping[str, Any]) -> float:
    return float(params["idle_minutes"]) * 60


def plan_postgres(config: StreamflowOpsConfig, params: Mapping[str, Any], idle_s: float | None = None) -> Plan:
    with _pg(config) as conn:
        role = actions.signal_permission(conn)
        sessions = actions.read_sessions(conn)
        database = conn.info.dbname
    return plan_session_terminations(
        sessions, _idle_s(params) if idle_s is None else idle_s, params.get("application") or None,
        bool(params.get("include_superuser")), config.remediation.own_application_prefix, database,
        role["may_signal"], role["username"], role["is_superuser"])


def act_postgres(config: StreamflowOpsConfig, plan: Plan, params: Mapping[str, Any],
                 idle_s: float | None = None) -> dict[str, Any]:
    """Every approved pid is accounted for: terminated, left (ended or busy since the plan), or failed.
    Any failure is an ActionError carrying all four lists, so the audit row names them either way."""
    with _pg(config) as conn:
        done = actions.terminate_sessions(conn, plan.items, _idle_s(params) if idle_s is None else idle_s)
    outcome = {"rows_affected": len(done["terminated_pids"]), **done}
    if done["left_pids"]:
        outcome["not_terminated"] = (f"{len(done['left_pids'])} planned session(s) ended or became busy "
                                     f"meanwhile: {done['left_pids']}")
    if done["failed_pids"]:
        raise actions.ActionError(
            f"terminated {len(done['terminated_pids'])} of {len(done['asked_pids'])} session(s); PostgreSQL refused "
            f"{len(done['failed_pids'])}: " + "; ".join(f"{pid}: {err}" for pid, err in done["failed_pids"].items()),
            outcome)
    return outcome


# --- Kubernetes: remediate_flink_taskmanagers, remediate_restart_workload, remediate_flink_restart --

def _kube(config: StreamflowOpsConfig) -> actions.KubeActions:
    return actions.KubeActions(config.kubernetes)


def _kube_if_defined(config: StreamflowOpsConfig) -> actions.KubeActions | None:
    return _kube(config) if connection_defined(config.kubernetes.conn_id) else None


def plan_taskmanagers(config: StreamflowOpsConfig, params: Mapping[str, Any]) -> Plan:
    k8s, kube = config.kubernetes, _kube(config)
    cr = kube.flink_deployment(k8s.flink_namespace, k8s.flink_deployment)
    deployment = None if cr else kube.workload(k8s.flink_namespace, "Deployment",
                                               config.remediation.taskmanager_deployment)
    return plan_taskmanager_scale(int(params["replicas"]), k8s.flink_namespace, cr, k8s.flink_deployment,
                                  deployment, config.remediation.taskmanager_deployment)


def act_taskmanagers(config: StreamflowOpsConfig, plan: Plan, params: Mapping[str, Any]) -> dict[str, Any]:
    kube, done = _kube(config), []
    for item in plan.items:
        if item["kind"] == "FlinkDeployment":
            kube.patch_flink_deployment(item["namespace"], item["name"], item["patch"])
        else:
            kube.scale_deployment(item["namespace"], item["name"], item["patch"])
        done.append(item)
    return {"rows_affected": len(done), "patched": done}


def plan_workload(config: StreamflowOpsConfig, params: Mapping[str, Any]) -> Plan:
    namespace, kind, name = params["namespace"], params["kind"], params["name"]
    allowed = config.remediation.restartable_workloads
    refuse_unlisted_workload(namespace, kind, name, allowed)  # before any API read
    return plan_workload_restart(namespace, kind, name, allowed, _kube(config).workload(namespace, kind, name))


def act_workload(config: StreamflowOpsConfig, plan: Plan, params: Mapping[str, Any]) -> dict[str, Any]:
    kube, at = _kube(config), datetime.now(timezone.utc)
    for item in plan.items:
        try:  # the allow-list may have shrunk while the plan waited for its approval
            refuse_unlisted_workload(item["namespace"], item["kind"], item["name"],
                                     config.remediation.restartable_workloads)
        except Refused as exc:
            raise actions.ActionError(f"no longer allowed, nothing done: {exc}") from None
        kube.rollout_restart(item["namespace"], item["kind"], item["name"], at)
    return {"rows_affected": len(plan.items), "restarted_at": at.isoformat()}


def _flink_control(config: StreamflowOpsConfig) -> actions.FlinkControl:
    f = config.flink
    return actions.FlinkControl(f.conn_id, f.connect_timeout_s, f.request_timeout_s)


def plan_restart(config: StreamflowOpsConfig, params: Mapping[str, Any]) -> Plan:
    f, k8s, r = config.flink, config.kubernetes, config.remediation
    rest = FlinkRest.from_config(f)
    job = select_job(rest.jobs(), f.job_name)
    latest = ((rest.checkpoints(job["jid"]).get("latest") or {}).get("completed")) if job else None
    kube = _kube_if_defined(config)
    cr = kube.flink_deployment(k8s.flink_namespace, k8s.flink_deployment) if kube else None
    jar = None if cr or not r.flink_entry_class else _flink_control(config).jar_for(r.flink_entry_class)
    return plan_flink_restart(job, f.job_name, latest, r.flink_savepoint_dir, cr, k8s.flink_namespace,
                              k8s.flink_deployment, jar, r.flink_entry_class, r.flink_program_args)


def act_restart(config: StreamflowOpsConfig, plan: Plan, params: Mapping[str, Any]) -> dict[str, Any]:
    r = config.remediation
    outcome = actions.restart_flink(plan.items[0], _flink_control(config), _kube_if_defined(config),
                                    r.flink_savepoint_timeout_s, r.flink_restart_timeout_s)
    return {"rows_affected": 1, **outcome}


REMEDIATIONS: dict[str, Remediation] = {r.dag_id: r for r in [
    Remediation("remediate_postgres_connections", "Terminate idle PostgreSQL sessions", plan_postgres,
                act_postgres, "postgres", ("postgres.connections",)),
    Remediation("remediate_flink_taskmanagers", "Scale Flink TaskManagers", plan_taskmanagers, act_taskmanagers,
                "flink", ("flink.taskmanagers", "flink.backpressure")),
    Remediation("remediate_flink_restart", "Restart the Flink job from a savepoint", plan_restart, act_restart,
                "flink", ("flink.job_running", "flink.checkpoint_age", "flink.checkpoint_failures")),
    Remediation("remediate_restart_workload", "Rollout restart of a workload", plan_workload, act_workload,
                "kubernetes", ("kubernetes.pods",), subject=lambda config, params: params["namespace"]),
]}


# --- the steps every remediation shares ------------------------------------------------------------

def checks_now(remediation: Remediation, config: StreamflowOpsConfig, params: Mapping[str, Any]) -> list[dict]:
    """The checks this remediation is meant to fix, as the sweep would judge them now."""
    subject = remediation.subject(config, params)
    results = run_family(remediation.family, config, budget_s=VERIFY_BUDGET_S)
    return [r.to_dict() for r in results if r.check_name in remediation.checks
            and (subject is None or r.subject == subject)]


def compare(before: list[dict], after: list[dict]) -> list[str]:
    """One line per check and subject: status before -> after, and the message after."""
    was = {(r["check_name"], r["subject"]): r["status"] for r in before}
    lines = []
    for r in after:
        key = (r["check_name"], r["subject"])
        label = r["check_name"] + (f" [{r['subject']}]" if r["subject"] else "")
        lines.append(f"{label}: {was.get(key, 'not checked')} -> {r['status']}: {r['message']}")
    return lines


class ApprovalConsumed(Exception):
    """This run's approval was already acted on (a cleared or repeated act): the message says when and how."""


def audit(config: StreamflowOpsConfig, context: Mapping[str, Any], plan: Plan, dry_run: bool,
          act: Callable[[], dict[str, Any]], approval: dict | None = None) -> dict[str, Any]:
    """Run `act` inside an ops.maintenance_audit row (written also when it fails, with what an ActionError
    says was done). A real act consumes the run's approval: a second act of the same run (the act task
    cleared by hand, or run twice at once) raises ApprovalConsumed and does nothing."""
    ti = context["ti"]
    actor = Actor(ti.dag_id, ti.run_id, ti.task_id, config.warehouse.ops_schema)
    with _pg(config) as conn:
        ensure_ops_schema(conn, actor.ops_schema)
        with ExitStack() as stack:
            if not dry_run:
                stack.enter_context(_approval_consumed_once(conn, actor))
            with audited(conn, actor, plan.action, plan.target, dry_run) as record:
                record.details["plan"] = plan.steps
                if approval is not None:
                    record.details["approval"] = approval
                try:
                    outcome = act()
                except actions.ActionError as exc:
                    record.rows_affected = exc.outcome.get("rows_affected")
                    record.details["outcome"] = {k: v for k, v in exc.outcome.items() if k != "rows_affected"}
                    raise
                record.rows_affected = outcome.get("rows_affected")
                record.details["outcome"] = {k: v for k, v in outcome.items() if k != "rows_affected"}
    return outcome


@contextmanager
def _approval_consumed_once(conn, actor: Actor) -> Iterator[None]:
    """Hold the run's act lock while acting; refuse if the run already has a real act audit row."""
    key = {"dag_id": actor.dag_id, "run_id": actor.run_id, "task_id": actor.task_id}
    if not dict_rows(conn, "remediation_act_lock.sql", key)[0]["locked"]:
        raise ApprovalConsumed(f"another act of run {actor.run_id} is running: its approval is being acted on")
    try:
        earlier = dict_rows(conn, "remediation_acted.sql", key, ops=actor.ops_schema)
        if earlier:
            row = earlier[0]
            raise ApprovalConsumed(
                f"the approval of run {actor.run_id} was already acted on at {row['started_at'].isoformat()} "
                f"(ops.maintenance_audit id {row['id']}, outcome {row['outcome']!r}); an approval is used once: "
                f"trigger a new run to plan and approve again")
        yield
    finally:
        dict_rows(conn, "remediation_act_unlock.sql", key)
