"""Airflow self-check family: scheduler heartbeat and the watched DAGs, through the REST API."""
from __future__ import annotations

from datetime import datetime, timedelta

from streamflow_ops.airflow_api import evaluators as ev
from streamflow_ops.airflow_api.probes import AirflowApi
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.results import CheckResult, guarded, skipped
from streamflow_ops.runbook import section
from streamflow_ops.timeutil import utcnow

# Enough newest runs to see a streak past a few queued/running ones.
RECENT_RUNS = 25


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    cfg = config.airflow_api
    if not connection_defined(cfg.conn_id):
        return [skipped(name, cfg.conn_id, section(name)) for name in (ev.HEARTBEAT, ev.FAILED_RUNS)]
    now, api = utcnow(now), AirflowApi(cfg)
    results = guarded(ev.HEARTBEAT, lambda: ev.evaluate_heartbeat(api.health(), now, cfg.heartbeat_warning_s,
                                                                  cfg.heartbeat_critical_s),
                      runbook=section(ev.HEARTBEAT))
    for dag_id in cfg.watched_dags:
        results += guarded(ev.FAILED_RUNS, lambda d=dag_id: dag_runs(api, d, config, now),
                           subject=dag_id, runbook=section(ev.FAILED_RUNS))
    return results


def dag_runs(api: AirflowApi, dag_id: str, config: StreamflowOpsConfig, now: datetime) -> CheckResult:
    cfg = config.airflow_api
    dag = api.dag(dag_id)
    if dag is None:
        return ev.evaluate_dag_runs(dag_id, None, 0, [], cfg.failed_runs_window_h, cfg.consecutive_failures_critical)
    failed = api.failed_runs_since(dag_id, now - timedelta(hours=cfg.failed_runs_window_h))
    recent = api.recent_runs(dag_id, max(RECENT_RUNS, cfg.consecutive_failures_critical + 10))
    return ev.evaluate_dag_runs(dag_id, dag, failed, recent, cfg.failed_runs_window_h,
                                cfg.consecutive_failures_critical)
