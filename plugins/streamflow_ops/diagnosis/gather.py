"""Gather each alert's diagnosis with the probes the sweep already has, within a budget per bundle.

`diagnose(config, results)` sets `result.details["diagnosis"]` on every warning/critical result whose
check has a runbook alert (registry CheckSpec.alert):
    {"alert", "findings": [facts], "not_gathered": ["<what>: <reason>"], "remediation": {...} or None}
A step that fails or does not answer in time is listed in not_gathered with the reason; the other
steps' findings stay. Bundles run in parallel, each in a daemon thread with BUDGET_S.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from streamflow_ops import registry
from streamflow_ops.airflow_api.probes import AirflowApi
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.diagnosis import findings as fd
from streamflow_ops.flink.evaluators import select_job
from streamflow_ops.flink.probes import FlinkRest, JobView
from streamflow_ops.kubernetes.probes import KubeProbe
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.remediation.actions import read_sessions
from streamflow_ops.results import CheckResult, Status, describe_error

log = logging.getLogger(__name__)
BUDGET_S = 10.0


@dataclass
class Bundle:
    """One alert's diagnosis as it is being gathered: every step adds findings or says why it could not."""

    alert: str
    findings: list[str] = field(default_factory=list)
    not_gathered: list[str] = field(default_factory=list)
    remediation: dict[str, Any] | None = None

    def step(self, what: str, gather: Callable[[], list[str]]) -> None:
        try:
            self.findings += gather()
        except Exception as exc:  # noqa: BLE001 - one step failing must not lose the others
            log.info("diagnosis step %s of %s failed: %s", what, self.alert, exc)
            self.not_gathered.append(f"{what}: {describe_error(exc, 200)}")

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "findings": list(self.findings), "not_gathered": list(self.not_gathered),
                "remediation": self.remediation}


def remediation_link(config: StreamflowOpsConfig, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    """Where the fix is one approved click away. Airflow 3.3.2's UI has no trigger-form route that takes
    params from the URL, so the link opens the DAG (its Trigger button shows the form) and `conf` says
    what to enter; the remediation's own defaults are safe (dry_run=true)."""
    return {"dag_id": dag_id, "url": f"{config.remediation.airflow_ui_url.rstrip('/')}/dags/{dag_id}", "conf": conf}


# --- the bundles -----------------------------------------------------------------------------------

def _flink_rest(config: StreamflowOpsConfig):
    return FlinkRest.from_config(config.flink)


def flink_job_bundle(bundle: Bundle, config: StreamflowOpsConfig, result: CheckResult) -> None:
    bundle.remediation = remediation_link(config, "remediate_flink_restart", {"dry_run": True})
    rest, jobs = _flink_rest(config), []

    def history() -> list[str]:
        jobs.extend(rest.jobs())
        return fd.job_history_findings(jobs, config.flink.job_name)

    bundle.step("job state history", history)
    job = select_job(jobs, config.flink.job_name)
    if job is None:
        bundle.not_gathered.append("root exception and checkpoints: no job to ask")
        return
    bundle.step("root exception", lambda: fd.root_exception_findings(rest.exceptions(job["jid"])))
    bundle.step("checkpoints", lambda: fd.checkpoint_findings(rest.checkpoints(job["jid"])))


def lag_bundle(bundle: Bundle, config: StreamflowOpsConfig, result: CheckResult) -> None:
    def suggest(taskmanagers: int) -> None:
        replicas = min(10, max(taskmanagers, config.flink.expected_taskmanagers) + 1)
        bundle.remediation = remediation_link(config, "remediate_flink_taskmanagers",
                                              {"dry_run": True, "replicas": replicas})

    suggest(0)
    bundle.step("lag trend", lambda: fd.lag_findings(result.details))

    def capacity() -> list[str]:
        rest = _flink_rest(config)
        view = JobView(rest, config.flink.job_name)
        overview = rest.overview()
        suggest(overview.get("taskmanagers", 0))
        running = view.target is not None and view.target.get("state") == "RUNNING"
        return fd.flink_capacity_findings(view.jobs, config.flink.job_name, overview,
                                          view.vertices if running else [], view.backpressure() if running else {})

    bundle.step("Flink job, TaskManagers and backpressure", capacity)


def connections_bundle(bundle: Bundle, config: StreamflowOpsConfig, result: CheckResult) -> None:
    def sessions() -> list[str]:
        with warehouse_connection(config.warehouse, statement_timeout_s=5) as conn:
            max_connections = int(conn.execute("show max_connections").fetchone()[0])
            return fd.connection_findings(read_sessions(conn), max_connections)

    bundle.remediation = remediation_link(config, "remediate_postgres_connections",
                                          {"dry_run": True, "idle_minutes": 30})
    bundle.step("connections by state, application and user", sessions)


def broker_bundle(bundle: Bundle, config: StreamflowOpsConfig, result: CheckResult) -> None:
    k8s = config.kubernetes
    if not connection_defined(k8s.conn_id):
        bundle.not_gathered.append(f"broker pods: connection {k8s.conn_id} is not defined")
    else:
        bundle.step("broker pods", lambda: fd.broker_pod_findings(KubeProbe(k8s).list_pods(k8s.kafka_namespace),
                                                                  k8s.kafka_cluster))
    bundle.not_gathered.append("PVC usage: read it from kubernetes.pvc_usage in the same sweep")


def _warehouse_rows(config: StreamflowOpsConfig, name: str) -> list[dict]:
    w = config.warehouse
    with warehouse_connection(w, statement_timeout_s=5) as conn:
        return dict_rows(conn, name, bronze=(w.bronze_schema, w.bronze_table), time_column=w.time_column,
                         silver=(w.silver_schema, w.silver_table), enriched_at=w.enriched_at_column,
                         alerts=(w.silver_schema, w.fraud_alerts_table))


def business_bundle(bundle: Bundle, config: StreamflowOpsConfig, result: CheckResult) -> None:
    bundle.step("stage freshness", lambda: fd.stage_findings(
        _warehouse_rows(config, "remediation_diagnosis_stages.sql")[0]))
    bundle.step("fraud alerts by rule", lambda: fd.fraud_rule_findings(
        _warehouse_rows(config, "remediation_diagnosis_fraud_rules.sql")))
    if bundle.alert == "PipelineLatencyHigh":
        bundle.step("Flink job", lambda: fd.job_history_findings(_flink_rest(config).jobs(), config.flink.job_name))


def dag_failure_bundle(bundle: Bundle, config: StreamflowOpsConfig, result: CheckResult) -> None:
    def failure() -> list[str]:
        api, dag_id = AirflowApi(config.airflow_api), result.subject
        run = next((r for r in api.recent_runs(dag_id, 10) if r["state"] == "failed"), None)
        tasks = api.failed_tasks(dag_id, run["dag_run_id"]) if run else []
        return fd.dag_failure_findings(dag_id, run, tasks, config.remediation.airflow_ui_url.rstrip("/"))

    bundle.step("failed run and tasks", failure)


BUNDLES: dict[str, Callable[[Bundle, StreamflowOpsConfig, CheckResult], None]] = {
    "KafkaConsumerLagHigh": lag_bundle,
    "KafkaBrokerDown": broker_bundle,
    "FlinkJobNotRunning": flink_job_bundle,
    "FlinkCheckpointFailing": flink_job_bundle,
    "PostgresHighConnections": connections_bundle,
    "PipelineLatencyHigh": business_bundle,
    "HighFraudRate": business_bundle,
    "AirflowDAGFailure": dag_failure_bundle,
}


def alert_of(result: CheckResult) -> str | None:
    try:
        return registry.spec(result.check_name).alert
    except KeyError:
        return None


def gather(config: StreamflowOpsConfig, result: CheckResult, alert: str, budget_s: float = BUDGET_S) -> dict:
    """One alert's bundle within its budget; what did not finish in time is listed as not gathered."""
    bundle = Bundle(alert)
    build = BUNDLES.get(alert)
    if build is None:
        bundle.not_gathered.append(f"{alert}: no diagnosis bundle for this alert yet")
        return bundle.to_dict()
    worker = threading.Thread(target=bundle.step, args=("diagnosis", lambda: build(bundle, config, result) or []),
                              name=f"diagnosis-{alert}", daemon=True)
    worker.start()
    worker.join(budget_s)
    snapshot = bundle.to_dict()
    if worker.is_alive():
        snapshot["not_gathered"].append(f"the rest of {alert}'s diagnosis: not finished within {budget_s:g} s")
    return snapshot


def diagnose(config: StreamflowOpsConfig, results: Iterable[CheckResult], budget_s: float = BUDGET_S) -> int:
    """Attach a diagnosis to every warning/critical result with a runbook alert; how many got one.
    The bundles run side by side, so the whole step takes about one budget."""
    todo = [(r, alert) for r in results if r.status in (Status.WARNING, Status.CRITICAL) and (alert := alert_of(r))]
    done: dict[int, dict] = {}

    def run(index: int, result: CheckResult, alert: str) -> None:
        done[index] = gather(config, result, alert, budget_s)

    threads = [threading.Thread(target=run, args=(i, r, a), daemon=True) for i, (r, a) in enumerate(todo)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(budget_s + 1)
    for i, (result, alert) in enumerate(todo):
        result.details["diagnosis"] = done.get(i) or {
            "alert": alert, "findings": [], "remediation": None,
            "not_gathered": [f"{alert}'s diagnosis: not finished within {budget_s:g} s"]}
    return len(todo)
