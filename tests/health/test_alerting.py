"""Alerting: which changes are news (pure), the Slack Block Kit message, the PagerDuty events, and real
deliveries through SlackWebhookHook and PagerdutyEventsAsyncHook to local servers that answer like them."""
from __future__ import annotations

import json

import pytest

from streamflow_ops.alerting import pagerduty, slack
from streamflow_ops.alerting.changes import ChangeKind, History, detect_changes, dedup_key
from streamflow_ops.alerting.notify import deliver
from streamflow_ops.config import load_config
from streamflow_ops.results import CheckResult, Status
from tests.fakes.payloads import load
from tests.health.fake_alerts import PD_ROUTING_KEY as PD_KEY, alert_far_ends, pd_actions, slack_answer

C, W, U, O, S = Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK, Status.SKIPPED


def result(status, check="postgres.backup_age", subject="", value=None):
    return CheckResult(check, status, f"{check} is {status.value}", subject=subject, value=value,
                       threshold="warning > 26 h", runbook="Runbook 6.7 PostgreSQL: stale backups")


def hist(last=None, before=None, known=None, in_previous=True):
    return History(last, before, known if known is not None else (last if last in (C, W, O) else None), in_previous)


@pytest.mark.parametrize("past, now, kind, action", [
    (None, O, None, None),                         # first sweep, healthy: nothing to say
    (None, C, ChangeKind.NEW, "trigger"),          # first sweep, already broken: news
    (hist(O), W, ChangeKind.NEW, None),            # warnings never page
    (hist(O), C, ChangeKind.NEW, "trigger"),
    (hist(W), C, ChangeKind.ESCALATION, "trigger"),
    (hist(C), W, ChangeKind.DEESCALATION, "resolve"),
    (hist(C), O, ChangeKind.RESOLUTION, "resolve"),
    (hist(W), O, ChangeKind.RESOLUTION, None),
    (hist(C), C, None, None),                      # still critical: silence (PagerDuty already has it)
    (hist(W), W, None, None),
    (hist(O), O, None, None),
    (hist(O), U, None, None),                      # one failed probe: silence
    (hist(U, O), U, ChangeKind.BLIND, None),       # failing twice in a row: told once, never paged
    (hist(U, U, O), U, None, None),                # ...and not again
    (hist(C), U, None, None),                      # critical -> unknown: neither resolved nor re-paged
    (hist(U, C, C), C, None, None),                # critical -> unknown -> critical: one incident
    (hist(U, C, C), O, ChangeKind.RESOLUTION, "resolve"),
    (hist(S), S, None, None), (hist(O), S, None, None),
])
def test_state_changes(past, now, kind, action):
    history = {("postgres.backup_age", ""): past} if past else {}
    changes = detect_changes(history, [result(now)])
    assert [c.kind for c in changes] == ([kind] if kind else [])
    if kind:
        assert changes[0].page_action == action


def test_vanished_problem_resolves_only_when_its_family_answered():
    history = {("postgres.dead_tuples", "silver.dropped"): hist(W), ("kafka.consumer_lag", "g1"): hist(C)}
    current = [result(O, "postgres.dead_tuples", "silver.other"), result(U, "kafka.broker_reachable")]
    changes = detect_changes(history, current)
    assert [(c.kind, c.key) for c in changes] == [(ChangeKind.RESOLUTION, ("postgres.dead_tuples", "silver.dropped"))]
    # Reported as resolved once: a key absent from the previous sweep is history, not news.
    stale = {("postgres.dead_tuples", "silver.dropped"): hist(W, in_previous=False)}
    assert detect_changes(stale, current) == []


def test_subjects_are_tracked_separately_and_worst_comes_first():
    history = {("kafka.consumer_lag", "a"): hist(O), ("kafka.consumer_lag", "b"): hist(C)}
    changes = detect_changes(history, [result(W, "kafka.consumer_lag", "a"), result(O, "kafka.consumer_lag", "b"),
                                       result(C, "flink.job_running")])
    assert [(c.result.check_name, c.result.subject, c.kind) for c in changes] == [
        ("flink.job_running", "", ChangeKind.NEW), ("kafka.consumer_lag", "a", ChangeKind.NEW),
        ("kafka.consumer_lag", "b", ChangeKind.RESOLUTION)]


def test_slack_message_has_summary_and_one_line_per_change_with_value_threshold_runbook():
    changes = detect_changes({("business.fraud_rate", ""): hist(O)},
                             [result(C, "postgres.backup_age", value=61.5), result(W, "business.fraud_rate", value=12)])
    message = slack.build_message(changes, C, {"critical": 1, "warning": 1, "unknown": 0}, "scheduled__1")
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header" and "CRITICAL" in blocks[0]["text"]["text"]
    assert "2 changes" in blocks[1]["text"]["text"] and "2 new problems" in blocks[1]["text"]["text"]
    lines = [b["text"]["text"] for b in blocks if b["type"] == "section"][1:]
    assert len(lines) == 2
    assert "*postgres.backup_age*" in lines[0] and "value: 61.5" in lines[0]
    assert "threshold: warning > 26 h" in lines[0] and "Runbook 6.7" in lines[0]
    assert message["text"] and "*" not in message["text"]


def test_slack_message_stays_within_block_kit_limits():
    changes = detect_changes({}, [result(W, "postgres.dead_tuples", f"s.t{i}") for i in range(80)])
    blocks = slack.build_message(changes, W, {}, "x")["blocks"]
    assert len(blocks) <= 50 and "40 more" in json.dumps(blocks)


def test_pagerduty_event_dedups_per_check_and_subject():
    change = detect_changes({}, [result(C, "kafka.consumer_lag", "flink-fraud-detector", value=20000)])[0]
    event = pagerduty.build_event(change, "run1")
    assert event["action"] == "trigger" and event["severity"] == "critical"
    assert event["dedup_key"] == dedup_key("kafka.consumer_lag", "flink-fraud-detector")
    assert event["dedup_key"] != dedup_key("kafka.consumer_lag", "other")
    assert event["custom_details"]["runbook"].startswith("Runbook")


# --- deliveries to local servers -------------------------------------------------------------------

@pytest.fixture
def far_ends(monkeypatch):
    with alert_far_ends(monkeypatch) as apis:
        yield apis


def send(changes, dry_run=False):
    return deliver(load_config(), changes, C, {"critical": 1}, "sweep-1", dry_run=dry_run)


def test_delivery_posts_block_kit_and_pagerduty_events_v2(far_ends):
    slack_api, pd_api = far_ends
    changes = detect_changes({("flink.job_running", ""): hist(C)},
                             [result(C, "postgres.backup_age"), result(O, "flink.job_running")])
    report = send(changes)
    assert report.errors == [] and report.slack == "sent"
    [post] = slack_api.calls("POST")
    assert post.path == "/services/T0001/B0001/XXXXXXXX" and post.json()["blocks"][0]["type"] == "header"
    assert pd_actions(pd_api) == [
        ("trigger", "streamflow-ops/postgres.backup_age"), ("resolve", "streamflow-ops/flink.job_running")]
    events = [r.json() for r in pd_api.calls("POST", "/v2/enqueue")]
    assert all(e["routing_key"] == PD_KEY for e in events)
    assert events[0]["payload"]["severity"] == "critical" and events[0]["payload"]["summary"]


def test_dry_run_sends_nothing_but_says_what_it_would(far_ends):
    slack_api, pd_api = far_ends
    report = send(detect_changes({}, [result(C)]), dry_run=True)
    assert slack_api.requests == [] and pd_api.requests == []
    assert report.slack.startswith("dry run") and report.pagerduty[0]["outcome"].startswith("dry run")


def test_no_change_no_call(far_ends):
    slack_api, pd_api = far_ends
    report = send([])
    assert report.slack == "nothing to send" and slack_api.requests == [] and pd_api.requests == []


@pytest.mark.parametrize("answer", ["invalid_blocks", "no_service", "rollup_error"])
def test_slack_failure_is_reported_never_silent(far_ends, answer):
    slack_api, _ = far_ends
    slack_api.route("POST", r"/services/.*", lambda req: slack_answer(answer))
    report = send(detect_changes({}, [result(W)]))
    assert report.slack == "failed" and answer in report.errors[0]


def test_pagerduty_failure_is_reported_and_told_in_slack(far_ends):
    slack_api, pd_api = far_ends
    pd_api.route("POST", r"/v2/enqueue", (400, load("pagerduty", "enqueue_invalid")))
    report = send(detect_changes({}, [result(C)]))
    assert report.pagerduty[0]["outcome"] == "failed" and report.errors
    assert "PagerDuty delivery failed" in json.dumps(slack_api.calls("POST")[0].json()["blocks"])


def test_unreachable_far_ends_fail_fast_and_loud(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
        {"conn_type": "slackwebhook", "host": "http://127.0.0.1:9", "password": "T/B/X"}))
    monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_STREAMFLOW", json.dumps(
        {"conn_type": "pagerduty", "host": "http://127.0.0.1:9", "password": PD_KEY}))
    report = send(detect_changes({}, [result(C)]))
    assert report.slack == "failed" and len(report.errors) == 2


def test_not_configured_is_reported_not_an_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_PAGERDUTY_STREAMFLOW", raising=False)
    report = send(detect_changes({}, [result(C)]))
    assert report.errors == [] and report.slack.startswith("not configured")
    assert report.pagerduty[0]["outcome"].startswith("not configured")
