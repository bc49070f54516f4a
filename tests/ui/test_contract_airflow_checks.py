"""Contract: airflow.failed_dag_runs and airflow.expected_dags against the real `airflow standalone`, with
a DAG run that really failed (airflow_housekeeping without a scheduler image fails its metadata step,
without retries). Expected statuses are computed from the REST API by the test itself."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from streamflow_ops.airflow_api.checks import run_checks
from streamflow_ops.config import load_config
from streamflow_ops.results import Status

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

FAILING = "airflow_housekeeping"
HEALTHY = "platform_health_sweep"


def failed_run(airflow_ui) -> dict:
    """Trigger FAILING and wait until it has failed (polling the REST API)."""
    airflow_ui.unpause((FAILING,))
    with airflow_ui.client() as api:
        # A run an earlier session left unfinished (its standalone was stopped) would hold the next one queued.
        for stale in api.get(f"/dags/{FAILING}/dagRuns", params={"state": ["queued", "running"]}).json()["dag_runs"]:
            api.patch(f"/dags/{FAILING}/dagRuns/{stale['dag_run_id']}", json={"state": "failed"}).raise_for_status()
        response = api.post(f"/dags/{FAILING}/dagRuns", json={"logical_date": None, "conf": {"dry_run": True}})
        assert response.status_code == 200, response.text
        run_id, deadline = response.json()["dag_run_id"], time.monotonic() + 300
        run = {"state": "queued"}
        while run["state"] not in ("success", "failed"):
            assert time.monotonic() < deadline, f"{run_id} still {run['state']}"
            time.sleep(1)
            try:
                run = api.get(f"/dags/{FAILING}/dagRuns/{run_id}").json()
            except httpx.TimeoutException:  # a loaded 2-core machine: the next poll may answer
                continue
    assert run["state"] == "failed", run
    return run


def spec_failed_runs_status(airflow_ui, now: datetime) -> tuple[Status, int]:
    """SPEC: any failed run in 24 h is a warning, 3+ consecutive failed runs critical (from the API)."""
    with airflow_ui.client() as api:
        runs = api.get(f"/dags/{FAILING}/dagRuns", params={"order_by": "-run_after", "limit": 100}).json()["dag_runs"]
    finished = [r for r in runs if r["state"] in ("success", "failed")]
    recent_failed = [r for r in finished if r["state"] == "failed"
                     and datetime.fromisoformat(r["end_date"]) >= now - timedelta(hours=24)]
    streak = 0
    for run in finished:
        if run["state"] != "failed":
            break
        streak += 1
    return (Status.CRITICAL if streak >= 3 else Status.WARNING if recent_failed else Status.OK), len(recent_failed)


def test_failed_run_and_expected_dags_on_real_airflow(airflow_ui, monkeypatch):
    run = failed_run(airflow_ui)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": airflow_ui.api_port, "schema": "http",
        "login": "admin", "password": airflow_ui.password()}))
    config = load_config({"airflow_api": {"watched_dags": [FAILING], "expected_dags": [FAILING, HEALTHY]}})

    now = datetime.now(timezone.utc)
    results = {(r.check_name, r.subject): r for r in run_checks(config, now=now)}
    want, failed_count = spec_failed_runs_status(airflow_ui, now)
    failed = results[("airflow.failed_dag_runs", FAILING)]
    assert failed_count >= 1 and failed.status is want and failed.value == failed_count
    assert run["dag_run_id"] in {r["dag_run_id"] for r in failed.details["recent_runs"]}
    assert failed.runbook == "Alert Response Procedures > Alert: AirflowDAGFailure"
    assert "read the failed task's log" in failed.message
    assert results[("airflow.expected_dags", "")].status is Status.OK
    assert results[("airflow.api_server", "")].status is Status.OK
    assert results[("airflow.scheduler_heartbeat", "")].status is Status.OK

    # A DAG the runbook expects but this Airflow does not have: critical, named.
    missing = load_config({"airflow_api": {"watched_dags": [], "expected_dags": [FAILING, "fraud_detection_batch"]}})
    [expected] = [r for r in run_checks(missing, now=now) if r.check_name == "airflow.expected_dags"]
    assert expected.status is Status.CRITICAL and "missing: fraud_detection_batch" in expected.message
