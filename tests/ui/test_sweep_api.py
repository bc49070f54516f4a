"""platform_health_sweep through the REST API (/api/v2 with a JWT from POST /auth/token), as an outside
tool would drive it: trigger, wait, read the summary; its results land in the ops table and its
metrics reach the Pushgateway."""
from __future__ import annotations

import time

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamflow_ops.metrics import JOB

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

DAG = "platform_health_sweep"


def wait_for_run(api, run_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"/dags/{DAG}/dagRuns/{run_id}").json()
        if run["state"] in ("success", "failed"):
            return run
        assert time.monotonic() < deadline, f"{run_id} still {run['state']} after {timeout:.0f}s"
        time.sleep(1)


def test_sweep_triggered_through_the_rest_api(airflow_ui, ui_warehouse, pushgateway):
    airflow_ui.unpause((DAG,))
    with airflow_ui.client() as api:
        assert api.get(f"/dags/{DAG}").json()["is_paused"] is False
        response = api.post(f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"dry_run": True}})
        assert response.status_code == 200, response.text
        run = wait_for_run(api, response.json()["dag_run_id"])
        states = {ti["task_id"]: ti["state"] for ti in
                  api.get(f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances").json()["task_instances"]}
        summary = api.get(f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances/summarize/xcomEntries/"
                          f"return_value", params={"deserialize": True}).json()["value"]
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}, states

    results = {(r["check_name"], r["subject"]): r["status"] for r in summary["results"]}
    assert results[("postgres.reachable", "")] == "ok"
    assert results[("airflow.scheduler_heartbeat", "")] == "ok"  # the sweep checked this very Airflow
    # Not configured in this session: reported as skipped, never as healthy.
    assert {s for (check, _), s in results.items() if check.startswith(("kafka.", "flink.", "kubernetes."))} \
        == {"skipped"}
    assert summary["persisted"] is True
    assert f"platform health sweep {summary['sweep_id']}" in summary["report"]

    with psycopg.connect(ui_warehouse) as conn:
        stored = conn.execute("select count(*) from ops.health_check_results where sweep_id = %s",
                              (summary["sweep_id"],)).fetchone()[0]
    assert stored == len(summary["results"])

    pushes = pushgateway.calls("PUT", f"/metrics/job/{JOB}")
    assert pushes, "the sweep did not push its metrics"
    push = pushes[-1]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(push.body.decode()) for s in family.samples}
    assert samples[("streamflow_ops_check_status", (("check", "postgres.reachable"), ("subject", "")))] == 0
    assert samples[("streamflow_ops_sweep_checks", (("status", "skipped"),))] >= 1
