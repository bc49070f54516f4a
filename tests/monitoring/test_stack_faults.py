"""Faults on a private copy of the real monitoring stack (its own ports: the session's stack stays healthy).

Alerts posted to the real Alertmanager drive monitoring.alertmanager and the deferral of our pages; a
time-compressed copy of the shipped rules (sandbox.monitoring.compressed_rules) fires once pushes stop and
reaches Alertmanager and the webhook receiver; a stopped Pushgateway is a real down target.
"""
from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from sandbox import connections, monitoring
from sandbox.proc import Layout, stop_group
from streamflow_ops import sweep
from streamflow_ops.config import load_config
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.alerting.state import dedup_key
from streamflow_ops.metrics import JOB, WINDOW_JOB, push_window_metrics
from streamflow_ops.results import CheckResult, Status
from streamflow_ops.store import ensure_ops_schema
from tests.health.fake_alerts import accepted, alert_far_ends, failing, posts

pytestmark = [pytest.mark.postgres]
FACTOR = 7200  # 2 h -> 1 s, 26 h -> 13 s, 30 min -> 250 ms
NO_RULES = "groups: []\n"


@pytest.fixture(scope="module")
def stack(sandbox_layout, tmp_path_factory):
    layout = Layout(root=tmp_path_factory.mktemp("monitoring-faults"), port_base=sandbox_layout.port_base + 10)
    monitoring.start(layout, rules_text=NO_RULES)
    try:
        yield layout
    finally:
        monitoring.stop(layout)


@pytest.fixture
def on_stack(stack, warehouse_db, monkeypatch):
    for key, value in connections.monitoring_env(stack).items():
        monkeypatch.setenv(key, value)
    with warehouse_connection(load_config().warehouse) as conn:
        ensure_ops_schema(conn, "ops")
    return stack


def window(run_id: str, dry_run: bool = False) -> dict:
    """The parts of a report task's context that push_window_metrics reads."""
    started = datetime.now(timezone.utc)
    return {"dag_run": SimpleNamespace(dag_id="maintenance_tasks", run_id=run_id, start_date=started),
            "params": {"dry_run": dry_run}}


def post_alert(layout, alertname: str, severity: str, minutes: int = 10) -> None:
    now = datetime.now(timezone.utc)
    body = json.dumps([{"labels": {"alertname": alertname, "severity": severity, "namespace": "streamflow-data"},
                        "annotations": {"summary": f"{alertname} from the test"},
                        "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=minutes)).isoformat()}])
    request = urllib.request.Request(f"{monitoring.url(layout, 'alertmanager')}/api/v2/alerts", data=body.encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def get(layout, service: str, path: str):
    with urllib.request.urlopen(monitoring.url(layout, service) + path, timeout=10) as response:
        return json.load(response)


def monitoring_results(config) -> dict[str, CheckResult]:
    return {r.check_name: r for r in sweep.run_family("monitoring", config)}


def test_alertmanager_check_and_deferral_on_alerts_posted_to_the_real_alertmanager(on_stack, monkeypatch):
    config = load_config()
    assert monitoring_results(config)["monitoring.alertmanager"].status is Status.OK  # nothing posted yet
    post_alert(on_stack, "HighFraudRate", "warning")
    warned = monitoring_results(config)["monitoring.alertmanager"]
    assert warned.status is Status.WARNING and "HighFraudRate" in warned.message
    post_alert(on_stack, "PostgresHighConnections", "critical")
    firing = monitoring_results(config)["monitoring.alertmanager"]
    assert firing.status is Status.CRITICAL
    assert firing.details["alertnames"] == ["HighFraudRate", "PostgresHighConnections"]
    # defer_to_alertmanager: Alertmanager already pages PostgresHighConnections at critical, so do we not
    with alert_far_ends(monkeypatch) as far_ends:
        slack_api, pd_api = failing(far_ends)
        results = [CheckResult("postgres.connections", Status.CRITICAL, "97 % of max_connections",
                               runbook="Alert Response Procedures > Alert: PostgresHighConnections"), firing]
        summary = sweep.summarize(config, "manual__deferral", results, datetime.now(timezone.utc))
        sweep.alert(config, summary, dry_run=False)
        assert accepted(pd_api) == []
        assert "Alertmanager already fires *PostgresHighConnections*" in json.dumps(posts(slack_api))


def test_compressed_rules_fire_through_alertmanager_to_the_webhook_once_pushes_stop(on_stack, monkeypatch):
    """The package pushes once for real (a sweep whose page PagerDuty refuses, a window), then stops."""
    monitoring.start(on_stack, rules_text=monitoring.compressed_rules(monitoring.RULES.read_text(), FACTOR))
    config = load_config()
    pushed_from = time.time()
    with alert_far_ends(monkeypatch) as far_ends:
        failing(far_ends, pd_failures=10)
        summary = sweep.summarize(config, "manual__compressed", [CheckResult(
            "postgres.backup_age", Status.CRITICAL, "no backup", runbook="Backup and Recovery > Automated Backups")],
            datetime.now(timezone.utc))
        sweep.alert(config, summary, dry_run=False)
        assert all(line.startswith("metrics pushed") for line in sweep.push_metrics(config, summary))
    push_window_metrics(config, [CheckResult("maintenance.vacuum", Status.OK, "vacuumed")], window("manual__fast"))

    wanted = {("StreamFlowOpsSweepMissing", "stale"), ("StreamFlowOpsWindowMissed", "stale"),
              ("StreamFlowOpsAlertsUndelivered", None)}

    def received() -> set:
        return {(a["labels"]["alertname"], a["labels"].get("reason"))
                for n in monitoring.webhook_notifications(on_stack) for a in n["alerts"]
                if a["status"] == "firing" and _since(a["startsAt"]) >= int(pushed_from)}

    deadline = time.monotonic() + 45
    while not wanted <= received():
        assert time.monotonic() < deadline, "\n".join(map(str, (
            received(), pushed_from, monitoring.query(on_stack, "ALERTS"),
            monitoring.query(on_stack, '{__name__=~"streamflow_ops_(sweep|window)_last_success_timestamp_seconds"}'),
            [[(a["labels"], a["status"], a["startsAt"]) for a in n["alerts"]]
             for n in monitoring.webhook_notifications(on_stack)])))
        time.sleep(0.5)
    in_alertmanager = {(a["labels"]["alertname"], a["labels"].get("reason"), a["labels"].get("channel"))
                       for a in get(on_stack, "alertmanager", "/api/v2/alerts")}
    assert {("StreamFlowOpsSweepMissing", "stale", None), ("StreamFlowOpsWindowMissed", "stale", None),
            ("StreamFlowOpsAlertsUndelivered", None, "pagerduty")} <= in_alertmanager
    owed = [a for n in monitoring.webhook_notifications(on_stack) for a in n["alerts"]
            if a["labels"]["alertname"] == "StreamFlowOpsAlertsUndelivered"]
    assert {a["labels"]["channel"] for a in owed} == {"pagerduty"}  # slack delivered: owes nothing
    assert "Runbook: Quick Reference > Emergency Contacts" in owed[0]["annotations"]["description"]


def _since(starts_at: str) -> int:
    """Alertmanager's startsAt (RFC 3339, nanoseconds) as whole Unix seconds."""
    return int(datetime.strptime(starts_at[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def test_a_failed_window_keeps_the_last_success_and_a_refused_push_fails_with_the_reason(on_stack):
    from airflow.sdk.exceptions import AirflowException

    config = load_config()
    run = window("manual__w")
    _delete_group(on_stack, WINDOW_JOB)
    assert push_window_metrics(config, [], window("manual__dry", dry_run=True)).startswith("metrics not pushed")
    assert _window_group(on_stack) == {}  # a dry run maintained nothing: no last success, no steps
    push_window_metrics(config, [CheckResult("maintenance.vacuum", Status.OK, "vacuumed")], run)
    before = _window_group(on_stack)
    push_window_metrics(config, [CheckResult("maintenance.vacuum", Status.CRITICAL, "vacuum failed")], run)
    after = _window_group(on_stack)
    assert after["streamflow_ops_window_last_success_timestamp_seconds"] == \
        before["streamflow_ops_window_last_success_timestamp_seconds"]
    assert (before['streamflow_ops_window_step_status{step="vacuum"}'],
            after['streamflow_ops_window_step_status{step="vacuum"}']) == ("0", "2")
    # The real Pushgateway refuses a metric whose type clashes with another group's: the push raises its answer.
    _delete_group(on_stack, WINDOW_JOB)
    monitoring.push(on_stack, "clash", "# TYPE streamflow_ops_window_duration_seconds counter\n"
                                       "streamflow_ops_window_duration_seconds 1\n")
    refusal = r"refused the PUT of job streamflow_ops_maintenance: HTTP 400 .*inconsistent"
    with pytest.raises(AirflowException, match=refusal):
        push_window_metrics(config, [CheckResult("maintenance.vacuum", Status.OK, "vacuumed")], run)
    _delete_group(on_stack, "clash")


def _delete_group(layout, job: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{monitoring.url(layout, 'pushgateway')}/metrics/job/{job}",
                                                  method="DELETE"), timeout=10).close()


def test_alert_task_pages_first_then_fails_on_a_refused_push_and_its_retry_sends_nothing_twice(on_stack,
                                                                                               monkeypatch):
    """sweep_tasks.alert_on_changes as the DAG runs it: the page goes out, the refused push fails the task with
    the Pushgateway's answer, and the retry (Pushgateway fixed) pushes without paging again."""
    from airflow.sdk.exceptions import AirflowException

    from streamflow_ops import sweep_tasks

    context = {"params": {"dry_run": False}, "ti": SimpleNamespace(xcom_push=lambda **kwargs: None)}
    monkeypatch.setattr(sweep_tasks, "get_current_context", lambda: context)
    config = load_config()
    _delete_group(on_stack, JOB)
    monitoring.push(on_stack, "clash", "# TYPE streamflow_ops_sweep_duration_seconds counter\n"
                                       "streamflow_ops_sweep_duration_seconds 1\n")
    with alert_far_ends(monkeypatch) as far_ends:
        _, pd_api = failing(far_ends)
        summary = sweep.summarize(config, "manual__refused", [CheckResult(
            "postgres.backup_age", Status.CRITICAL, "no backup", runbook="Backup and Recovery > Automated Backups")],
            datetime.now(timezone.utc))
        with pytest.raises(AirflowException, match=r"metrics not pushed .*HTTP 400 .*inconsistent"):
            sweep_tasks.alert_on_changes(summary)
        assert accepted(pd_api) == [("trigger", dedup_key("postgres.backup_age", ""))]  # paged before the push
        _delete_group(on_stack, "clash")
        sweep_tasks.alert_on_changes(summary)  # the retry
        assert len(accepted(pd_api)) == 1
    pushed = urllib.request.urlopen(monitoring.url(on_stack, "pushgateway") + "/metrics", timeout=10).read().decode()
    assert f'streamflow_ops_sweep_duration_seconds{{instance="",job="{JOB}"}}' in pushed


def _window_group(layout) -> dict[str, str]:
    with urllib.request.urlopen(monitoring.url(layout, "pushgateway") + "/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    out = {}
    for line in lines:
        if line.startswith("streamflow_ops_window_") and f'job="{WINDOW_JOB}"' in line:
            name, value = line.rsplit(" ", 1)
            out[name.replace(f'instance="",job="{WINDOW_JOB}"', "").replace("{,", "{").replace(",}", "}")
                .replace("{}", "")] = value
    return out


def test_a_stopped_pushgateway_is_a_real_down_target(on_stack):
    stop_group(monitoring._paths(on_stack, "pushgateway")[0])
    deadline = time.monotonic() + 20
    while True:
        result = monitoring_results(load_config())["monitoring.prometheus_targets"]
        if result.status is Status.WARNING or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.status is Status.WARNING, result.message
    [down] = result.details["down"]
    assert down["job"] == "pushgateway" and down["instance"] == f"127.0.0.1:{on_stack.pushgateway_port}"
    assert "connection refused" in down["lastError"] and "pushgateway" in result.message
