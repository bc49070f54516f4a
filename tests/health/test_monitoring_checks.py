"""Monitoring checks: pure evaluators on recorded payloads, and the family through HttpHook against the
sandbox's real Prometheus and Alertmanager (Grafana, which Debian does not ship, is a local stand-in).
Down targets and firing alerts on the real stack: tests/monitoring/test_stack_faults.py."""
from __future__ import annotations


import pytest

from sandbox import connections
from streamflow_ops.config import load_config
from streamflow_ops.monitoring import evaluators as ev
from streamflow_ops.monitoring.checks import run_checks
from streamflow_ops.results import Status
from tests.fakes.http_api import FakeApi, http_connection, unused_port
from tests.fakes.payloads import load

CONFIG = load_config()


# --- monitoring.prometheus_targets -----------------------------------------------------------------

def test_targets_all_up_is_ok():
    result = ev.evaluate_targets(load("prometheus", "targets_all_up"))
    assert result.status is Status.OK and result.message == "all 4 Prometheus targets up"


def test_targets_down_warns_and_names_them():
    result = ev.evaluate_targets(load("prometheus", "targets_one_down"))
    assert result.status is Status.WARNING
    assert "1 of 5 Prometheus targets down: flink-jobmanager/10.42.0.33:9249" in result.message
    assert "connection refused" in result.message
    assert result.details["down"][0]["scrapeUrl"] == "http://10.42.0.33:9249/metrics"
    assert result.runbook.startswith("Service Health Checks > 5. Monitoring Stack")


def test_targets_none_at_all_warns_and_api_error_is_unknown():
    empty = load("prometheus", "targets_all_up")
    empty["data"]["activeTargets"] = []
    assert ev.evaluate_targets(empty).status is Status.WARNING
    error = ev.evaluate_targets(load("prometheus", "targets_bad_request"))
    assert error.status is Status.UNKNOWN and "bad_data" in error.message


# --- monitoring.alertmanager -----------------------------------------------------------------------

@pytest.mark.parametrize("payload, expected, fragment", [
    ("alerts_none", Status.OK, "no critical or warning alerts firing"),
    ("alerts_watchdog_only", Status.OK, "1 other (info/none, e.g. Watchdog)"),
    ("alerts_warning", Status.WARNING,
     "1 warning: KafkaConsumerLagHigh (namespace=streamflow-kafka, job=kafka-exporter): Consumer group"),
    ("alerts_critical", Status.CRITICAL, "1 critical: FlinkJobNotRunning (namespace=streamflow-processing"),
])
def test_alertmanager_bands(payload, expected, fragment):
    result = ev.evaluate_alerts(load("alertmanager", payload))
    assert result.status is expected
    assert fragment in result.message


def test_alertmanager_lists_every_severity_and_ignores_suppressed():
    alerts = load("alertmanager", "alerts_critical")
    result = ev.evaluate_alerts(alerts)
    assert "1 critical: FlinkJobNotRunning" in result.message and "1 warning: KafkaConsumerLagHigh" in result.message
    assert set(result.details["firing"]) == {"critical", "warning", "none"}
    for alert in alerts:
        alert["status"]["state"] = "suppressed"
    assert ev.evaluate_alerts(alerts).status is Status.OK


# --- monitoring.grafana ----------------------------------------------------------------------------

def test_grafana_bands():
    assert ev.evaluate_grafana(200, load("grafana", "health_ok")).status is Status.OK
    failing = ev.evaluate_grafana(503, load("grafana", "health_database_failing"))
    assert failing.status is Status.WARNING and "database 'failing'" in failing.message


# --- the family through HttpHook against the real stack ---------------------------------------------

@pytest.fixture
def stack(monitoring_service, monkeypatch):
    """The sandbox's Prometheus and Alertmanager, and a Grafana stand-in answering healthy."""
    for key, value in connections.monitoring_env(monitoring_service).items():
        monkeypatch.setenv(key, value)
    with FakeApi() as grafana:
        grafana.route("GET", "/api/health", load("grafana", "health_ok"))
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_GRAFANA", http_connection(grafana.url))
        yield {"grafana": grafana, "layout": monitoring_service}


def statuses(results):
    return {r.check_name: r.status for r in results}


def test_family_healthy_stack_is_all_ok(stack):
    results = {r.check_name: r for r in run_checks(CONFIG)}
    assert statuses(results.values()) == {"monitoring.prometheus_targets": Status.OK,
                                          "monitoring.alertmanager": Status.OK, "monitoring.grafana": Status.OK}
    # the sandbox's Prometheus scrapes three targets: the Pushgateway, itself and Alertmanager
    assert results["monitoring.prometheus_targets"].details == {"active": 3, "down": []}
    assert results["monitoring.prometheus_targets"].message == "all 3 Prometheus targets up"


def test_grafana_unhealthy_is_a_warning(stack):
    stack["grafana"].route("GET", "/api/health", (503, load("grafana", "health_database_failing")))
    assert statuses(run_checks(CONFIG))["monitoring.grafana"] is Status.WARNING


def test_family_http_errors_are_unknown_with_url_and_status(monkeypatch):
    with FakeApi() as prometheus, FakeApi() as alertmanager, FakeApi() as grafana:
        for conn, api in (("PROMETHEUS", prometheus), ("ALERTMANAGER", alertmanager), ("GRAFANA", grafana)):
            monkeypatch.setenv(f"AIRFLOW_CONN_STREAMFLOW_{conn}", http_connection(api.url))
        prometheus.route("GET", "/api/v1/targets", (500, {"status": "error", "error": "internal"}))
        alertmanager.route("GET", "/api/v2/alerts", (200, b"<html>oauth2-proxy sign in</html>"))
        grafana.route("GET", "/api/health", (502, b"Bad Gateway"))
        results = {r.check_name: r for r in run_checks(CONFIG)}
        prometheus_url = prometheus.url
    assert all(r.status is Status.UNKNOWN for r in results.values())
    assert f"GET {prometheus_url}/api/v1/targets?state=active -> HTTP 500" in results[
        "monitoring.prometheus_targets"].message
    assert "not JSON" in results["monitoring.alertmanager"].message
    assert "HTTP 502" in results["monitoring.grafana"].message


def test_family_unreachable_is_unknown_and_missing_connection_skipped(stack, monkeypatch):
    port = unused_port()
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_GRAFANA", http_connection(f"http://127.0.0.1:{port}"))
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_ALERTMANAGER")
    results = {r.check_name: r for r in run_checks(CONFIG)}
    assert results["monitoring.prometheus_targets"].status is Status.OK
    assert results["monitoring.alertmanager"].status is Status.SKIPPED
    assert "streamflow_alertmanager" in results["monitoring.alertmanager"].message
    grafana = results["monitoring.grafana"]
    assert grafana.status is Status.UNKNOWN
    assert f"GET http://127.0.0.1:{port}/api/health: no answer" in grafana.message
