"""Sweep metrics: the exposition text parses with Prometheus' own parser, and the push reaches a Pushgateway."""
from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamflow_ops.config import load_config
from streamflow_ops.metrics import (JOB, escape_label, push_sweep_metrics, render_alert_metrics, render_metrics,
                                    render_window_metrics)
from streamflow_ops.results import CheckResult, Status
from tests.fakes.http_api import FakeApi

RESULTS = [
    CheckResult("kafka.consumer_lag", Status.WARNING, "lag 2,500", subject="flink-fraud-detector", value=2500),
    CheckResult("flink.job_running", Status.OK, "RUNNING"),
    CheckResult("postgres.dead_tuples", Status.CRITICAL, "too many", subject='bronze."odd"\\tbl\nx', value=1.5e6),
    CheckResult("postgres.reachable", Status.UNKNOWN, "probe failed"),
    CheckResult("kubernetes.pods", Status.SKIPPED, "not configured"),
]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_render_parses_and_encodes_statuses():
    parsed = samples(render_metrics(RESULTS, duration_s=12.5, finished_at=1_800_000_000))

    def status(check, subject=""):
        return parsed[("streamflow_ops_check_status", (("check", check), ("subject", subject)))]

    assert status("flink.job_running") == 0
    assert status("kafka.consumer_lag", "flink-fraud-detector") == 1
    assert status("postgres.dead_tuples", 'bronze."odd"\\tbl\nx') == 2  # escaped and parsed back intact
    assert status("postgres.reachable") == 3
    assert not [k for k in parsed if ("check", "kubernetes.pods") in k[1]], "skipped checks have no series"
    assert parsed[("streamflow_ops_check_value", (("check", "kafka.consumer_lag"),
                                                  ("subject", "flink-fraud-detector")))] == 2500
    assert ("streamflow_ops_check_value", (("check", "postgres.reachable"), ("subject", ""))) not in parsed
    assert parsed[("streamflow_ops_sweep_status", ())] == 2
    assert parsed[("streamflow_ops_sweep_checks", (("status", "skipped"),))] == 1
    assert parsed[("streamflow_ops_sweep_checks", (("status", "ok"),))] == 1
    assert parsed[("streamflow_ops_sweep_duration_seconds", ())] == 12.5
    assert parsed[("streamflow_ops_sweep_last_success_timestamp_seconds", ())] == 1_800_000_000


def test_label_escaping():
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_duplicate_series_keep_the_worst_and_all_skipped_is_unknown():
    twice = [CheckResult("flink.backpressure", Status.OK, "fine", value=0.1),
             CheckResult("flink.backpressure", Status.WARNING, "busy", value=0.9)]
    text = render_metrics(twice, 1.0, 0)
    assert text.count("streamflow_ops_check_status{") == 1
    parsed = samples(text)
    assert parsed[("streamflow_ops_check_value", (("check", "flink.backpressure"), ("subject", "")))] == 0.9
    only_skipped = samples(render_metrics([RESULTS[-1]], 1.0, 0))
    assert only_skipped[("streamflow_ops_sweep_status", ())] == 3


def test_push_puts_the_whole_group(monkeypatch):
    with FakeApi() as gateway:
        gateway.route("PUT", f"/metrics/job/{JOB}", (200, b""))
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_PUSHGATEWAY", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": gateway.port, "schema": "http"}))
        outcome = push_sweep_metrics(load_config(), RESULTS, 3.0)
    [request] = gateway.calls("PUT")
    assert request.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert samples(request.body.decode())[("streamflow_ops_sweep_status", ())] == 2
    assert outcome.startswith("metrics pushed:")


def test_refused_push_raises(monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    with FakeApi() as gateway:
        gateway.route("PUT", f"/metrics/job/{JOB}", (400, b"pushed metrics are invalid or inconsistent"))
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_PUSHGATEWAY", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": gateway.port, "schema": "http"}))
        with pytest.raises(AirflowException, match="400"):
            push_sweep_metrics(load_config(), RESULTS, 3.0)


def test_no_connection_no_push():
    assert "not defined" in push_sweep_metrics(load_config(), RESULTS, 3.0)


def test_grafana_dashboard_draws_only_metrics_we_push():
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "include" / "grafana" / "streamflow_ops_dashboard.json"
    dashboard = json.loads(path.read_text())
    pushed = {family.name for family in text_string_to_metric_families(
        render_metrics(RESULTS, 1.0, 0) + render_alert_metrics([])
        + render_window_metrics([CheckResult("maintenance.vacuum", Status.OK, "ok")], {"vacuum": 1.0}, 2.0, 0, True))}
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"streamflow_ops_[a-z_]+", expr)}
    assert used and used <= pushed, used - pushed
    assert {"streamflow_ops_check_status", "streamflow_ops_check_value",
            "streamflow_ops_sweep_duration_seconds", "streamflow_ops_alert_open_incidents",
            "streamflow_ops_alert_owed_deliveries", "streamflow_ops_window_last_success_timestamp_seconds",
            "streamflow_ops_window_step_status", "streamflow_ops_window_step_duration_seconds"} <= used
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    assert all("gridPos" in panel and panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
