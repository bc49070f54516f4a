"""Airflow self-check family: scheduler heartbeat and the watched DAGs, through the REST API."""
from __future__ import annotations

from datetime import datetime, timedelta

from streamflow_ops.airflow_api import evaluators as ev
from streamflow_ops.airflow_api.probes import AirflowApi
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult
from streamflow_ops.timeutil import utcnow

# Enough newest runs to see a streak past a few queued/running ones.
RECENT_RUNS = 25


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    return run_guarded(config, FAMILY.specs, lambda: _run(config, utcnow(now)))


def _run(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    cfg = config.airflow_api
    api = AirflowApi(cfg)
    results = ev.HEARTBEAT.guarded(lambda: ev.evaluate_heartbeat(api.health(), now, cfg.heartbeat_warning_s,
                                                                cfg.heartbeat_critical_s))
    for dag_id in cfg.watched_dags:
        results += ev.FAILED_RUNS.guarded(lambda d=dag_id: dag_runs(api, d, config, now), subject=dag_id)
    results += ev.EXPECTED_DAGS.guarded(lambda: expected_dags(api, cfg.expected_dags))
    # Last: it judges what the API server answered to every call above.
    results.append(ev.evaluate_api_server(api.answered, api.server_errors,
                                          str(api.last_error) if api.last_error else None))
    return results


def expected_dags(api: AirflowApi, expected: list[str]) -> CheckResult:
    """airflow.expected_dags: each expected DAG (GET /api/v2/dags/<id>) and the import errors."""
    return ev.evaluate_expected_dags(expected, {dag_id: api.dag(dag_id) for dag_id in expected}, api.import_errors())


def dag_runs(api: AirflowApi, dag_id: str, config: StreamflowOpsConfig, now: datetime) -> CheckResult:
    cfg = config.airflow_api
    dag = api.dag(dag_id)
    if dag is None:
        return ev.evaluate_dag_runs(dag_id, None, 0, [], cfg.failed_runs_window_h, cfg.consecutive_failures_critical)
    failed = api.failed_runs_since(dag_id, now - timedelta(hours=cfg.failed_runs_window_h))
    recent = api.recent_runs(dag_id, max(RECENT_RUNS, cfg.consecutive_failures_critical + 10))
    return ev.evaluate_dag_runs(dag_id, dag, failed, recent, cfg.failed_runs_window_h,
                                cfg.consecutive_failures_critical)


FAMILY = register(Family("airflow", run_checks))
