"""A real sweep and a real nightly window push to the sandbox's Pushgateway; the real Prometheus reads them.

One sweep (sweep.run_sweep) and one window (maintenance_tasks through dag.test()) per module, against a
copy of the seeded warehouse, with streamflow_prometheus/alertmanager/pushgateway on the sandbox's stack.
"""
from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import yaml

from sandbox import connections, monitoring
from streamflow_ops import sweep
from streamflow_ops.config import load_config
from streamflow_ops.kubernetes.checks import pvc_usage
from streamflow_ops.metrics import ALERT_JOB, JOB, WINDOW_JOB
from streamflow_ops.results import Status
from tests.conftest import TEMPLATE_DB, scratch_database
from tests.dagfiles import load_repo_dag_module

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]
REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "include" / "prometheus" / "streamflow_ops_rules.yml"
DASHBOARD = REPO / "include" / "grafana" / "streamflow_ops_dashboard.json"
WINDOW_STEPS = {"bronze_retention", "vacuum", "gold_refresh", "backup", "housekeeping"}


def api(layout, path: str, **params) -> dict:
    url = f"{monitoring.url(layout, 'prometheus')}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


@pytest.fixture(scope="module")
def pushed(monitoring_service, postgres_service, airflow_db, tmp_path_factory):
    """The sandbox stack after one real sweep and one real window (both pushed)."""
    config = {**connections.SANDBOX_CONFIG, "backup": {"folder": str(tmp_path_factory.mktemp("backups"))}}
    with scratch_database(postgres_service, "mon", TEMPLATE_DB) as dsn, pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", dsn)
        mp.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps(config))
        for key, value in connections.monitoring_env(monitoring_service).items():
            mp.setenv(key, value)
        started = time.time()
        summary, _ = sweep.run_sweep(load_config(config), f"manual__monitoring_{uuid.uuid4().hex[:8]}")
        run = load_repo_dag_module("maintenance_tasks").build(deadline=None).test()
        finished = time.time()
        with psycopg.connect(dsn) as conn:
            audit = conn.execute("select task_id, started_at, finished_at from ops.maintenance_audit "
                                 "where run_id = %s", (run.run_id,)).fetchall()
        # Prometheus has scraped both groups once their push times are this module's
        for job in (JOB, ALERT_JOB, WINDOW_JOB):
            monitoring.wait_for(monitoring_service, f'push_time_seconds{{job="{job}"}} >= {started}')
        yield SimpleNamespace(layout=monitoring_service, summary=summary, run=run, audit=audit, started=started,
                              finished=finished, config=load_config(config), dsn=dsn)


def test_the_real_window_succeeded_and_pushed_its_steps(pushed):
    assert pushed.run.state == "success"
    status = {s["metric"]["step"]: float(s["value"][1])
              for s in monitoring.query(pushed.layout, f'streamflow_ops_window_step_status{{job="{WINDOW_JOB}"}}')}
    assert WINDOW_STEPS <= set(status) and all(v in (0, 1) for v in status.values()), status  # ok or warning
    [last] = monitoring.query(pushed.layout, "streamflow_ops_window_last_success_timestamp_seconds")
    assert pushed.started <= float(last["value"][1]) <= pushed.finished
    # durations: first start to last end of each step's audit rows, computed here from the rows
    expected = {}
    for task_id, started_at, finished_at in pushed.audit:
        step = task_id.split(".")[0]
        low, high = expected.get(step, (started_at, finished_at))
        expected[step] = (min(low, started_at), max(high, finished_at))
    durations = {s["metric"]["step"]: float(s["value"][1]) for s in
                 monitoring.query(pushed.layout, "streamflow_ops_window_step_duration_seconds")}
    assert expected and set(durations) == set(expected)
    for step, (low, high) in expected.items():
        assert durations[step] == pytest.approx((high - low).total_seconds(), abs=0.01), step


def test_owed_deliveries_pushed_as_zero_for_every_channel(pushed):
    owed = {s["metric"]["channel"]: s["value"][1] for s in
            monitoring.query(pushed.layout, f'streamflow_ops_alert_owed_deliveries{{job="{ALERT_JOB}"}}')}
    assert owed == {"pagerduty": "0", "slack": "0"}  # nothing configured, nothing owed, still pushed


def test_rules_evaluate_without_error_and_nothing_pending_or_firing(pushed):
    def quiet() -> bool:
        groups = api(pushed.layout, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert all(r["health"] == "ok" and not r.get("lastError") for r in rules), rules
        return len(rules) == 5 and all(r["state"] == "inactive" for r in rules)

    deadline = time.monotonic() + 20
    while not quiet():
        assert time.monotonic() < deadline, api(pushed.layout, "/api/v1/alerts")
        time.sleep(0.5)
    assert not [a for a in api(pushed.layout, "/api/v1/alerts")["alerts"] if a["labels"]["alertname"].startswith(
        "StreamFlowOps")]


def test_every_metric_a_rule_reads_is_pushed_by_the_real_sweep_or_window(pushed):
    """No drift: each metric name in a rule's expr exists in Prometheus under the job the rule selects."""
    selectors = set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            selectors |= set(re.findall(r'(streamflow_ops_[a-z_]+)\{job="([a-z_]+)"\}', rule["expr"]))
    assert {name for name, _ in selectors} == {"streamflow_ops_sweep_last_success_timestamp_seconds",
                                               "streamflow_ops_window_last_success_timestamp_seconds",
                                               "streamflow_ops_alert_owed_deliveries"}
    for name, job in selectors:
        assert monitoring.query(pushed.layout, f'{name}{{job="{job}"}} and on() push_time_seconds{{job="{job}"}} '
                                               f'>= {pushed.started}'), (name, job)
    [last] = monitoring.query(pushed.layout, f'streamflow_ops_sweep_last_success_timestamp_seconds{{job="{JOB}"}}')
    assert pushed.started <= float(last["value"][1]) <= pushed.finished


def test_every_grafana_panel_query_returns_data(pushed):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"].replace("$check", ".*") for p in dashboard["panels"] for t in p["targets"]]
    empty = [expr for expr in exprs if not monitoring.query(pushed.layout, expr)]
    assert len(exprs) >= 16 and not empty, empty


def test_pvc_usage_runs_a_real_promql_query(pushed):
    results = {r.subject: r for r in pvc_usage(pushed.config)}
    assert set(results) == {f"{ns}/{pvc}" for ns, pvc, _, _ in monitoring.SANDBOX_PVCS}
    for ns, pvc, used, capacity in monitoring.SANDBOX_PVCS:
        result = results[f"{ns}/{pvc}"]
        assert result.status is Status.OK and result.value == round(used / capacity * 100, 1)


def test_monitoring_family_reads_the_healthy_stack(pushed):
    results = {r.check_name: r for r in sweep.run_family("monitoring", pushed.config)}
    assert results["monitoring.prometheus_targets"].status is Status.OK
    assert results["monitoring.prometheus_targets"].details["active"] == 3
    assert results["monitoring.alertmanager"].status is Status.OK
    sweep_results = {r["check_name"]: r["status"] for r in pushed.summary["results"]}
    assert sweep_results["monitoring.prometheus_targets"] == sweep_results["monitoring.alertmanager"] == "ok"
    assert sweep_results["kubernetes.pvc_usage"] == "ok"
