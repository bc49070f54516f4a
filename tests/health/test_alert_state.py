"""Alerting against real PostgreSQL (ops.alert_state) and local Slack/PagerDuty servers, sweep after sweep:
every failure mode of issue 11 as a sequence (dry run then real; 500 then 200; retries; flapping; a
family that crashes or hangs; Alertmanager already paging; a connection removed while critical)."""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from streamflow_ops import sweep
from streamflow_ops.alerting.ledger import dumps, loads
from streamflow_ops.alerting.state import dedup_key
from streamflow_ops.config import load_config
from streamflow_ops.results import CheckResult, Status
from tests.conftest import scratch_database
from tests.fakes.http_api import FakeApi, http_connection, unused_port
from tests.fakes.payloads import load
from tests.health.fake_alerts import (accepted, alert_far_ends, answering, codes, failing, pd_500, pd_actions, pd_ok,
                                      posts, slack_ok)

C, W, U, O, S = Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK, Status.SKIPPED
BACKUP = dedup_key("postgres.backup_age", "")


def check(status, name="postgres.backup_age", subject="", details=None):
    return CheckResult(name, status, f"{name} {subject} is {status.value}", subject=subject,
                       runbook="Backup and Recovery > Automated Backups", details=details or {})


def healthy_rest() -> list[CheckResult]:
    """Other answers of the same families: a family that answered, so absences could (wrongly) resolve."""
    return [check(O, "postgres.reachable"), check(O, "kafka.broker_reachable")]


@pytest.fixture(scope="module")
def ops_database(postgres_service):
    """An empty database for the ops schema alone (alerting needs no warehouse data: cloning it costs more)."""
    with scratch_database(postgres_service, "alerts") as dsn:
        yield dsn


@pytest.fixture
def ops_db(ops_database, monkeypatch) -> str:
    """`streamflow_postgres` points at the ops database, emptied of earlier tests' state, its tables created
    as the DAG's ensure_ops_tables task creates them (the alert path runs no DDL)."""
    with psycopg.connect(ops_database, autocommit=True) as conn:
        conn.execute("drop schema if exists ops cascade")
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", ops_database)
    sweep.ensure_ops_tables(load_config())
    return ops_database


@pytest.fixture
def far_ends(monkeypatch, ops_db):
    with alert_far_ends(monkeypatch) as apis:
        yield apis


@pytest.fixture
def config():
    return load_config()


def run(config, *results: CheckResult, dry_run=False, sweep_id=None, summary=None, ledger=None):
    """One sweep as the DAG runs it: summarize (stores the results), then alert and push its metrics."""
    run.n = getattr(run, "n", 0) + 1
    summary = summary or sweep.summarize(config, sweep_id or f"manual__{run.n}", list(results),
                                         datetime.now(timezone.utc))
    outcome = sweep.alert(config, summary, dry_run, ledger=ledger)
    if not dry_run:  # sweep_tasks.alert_on_changes pushes after dry runs too; no test here reads that push
        sweep.push_metrics(config, summary)  # as alert_on_changes does, after delivering
    return summary, outcome


def alert_rows(dsn: str) -> dict[tuple[str, str], dict]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("select * from ops.alert_state").fetchall()
    return {(r["check_name"], r["subject"]): r for r in rows}


# --- the failure modes of "What goes wrong today" -----------------------------------------------------

def test_dry_run_does_not_swallow_the_next_real_alert(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends)
    _, dry = run(config, check(C), dry_run=True)
    assert slack_api.requests == [] and pd_api.requests == []
    assert dry.delivery.pagerduty == [{"action": "trigger", "dedup_key": BACKUP, "outcome": "dry run: not sent"}]
    assert alert_rows(ops_db) == {}  # the dry run left ops.alert_state untouched
    run(config, check(C))
    assert accepted(pd_api) == [("trigger", BACKUP)] and len(posts(slack_api)) == 1


def test_a_refused_page_is_delivered_by_the_next_sweep(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends, pd_failures=1)
    _, first = run(config, check(C))
    assert first.delivery.errors and accepted(pd_api) == []
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["pending_page"] == "trigger"
    assert "PagerDuty delivery failed" in json.dumps(posts(slack_api)[0]["blocks"])
    run(config, check(C))
    assert accepted(pd_api) == [("trigger", BACKUP)]
    assert len(posts(slack_api)) == 1  # the change was told once


def test_a_refused_resolve_is_delivered_by_the_next_sweep(config, far_ends, ops_db):
    _, pd_api = failing(far_ends)
    run(config, check(C))
    pd_api.route("POST", r"/v2/enqueue", answering(pd_api, pd_ok, pd_500, 1))
    run(config, check(O))
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["incident_open"] is True
    run(config, check(O))
    assert accepted(pd_api) == [("trigger", BACKUP), ("resolve", BACKUP)]
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["incident_open"] is False


def test_a_retry_never_posts_twice(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends, pd_failures=1)
    summary, first = run(config, check(C))
    assert first.delivery.errors  # the task fails and Airflow retries it with the same summary
    run(config, summary=summary)
    assert codes(slack_api) == [200] and accepted(pd_api) == [("trigger", BACKUP)]


def test_a_probe_failure_does_not_resolve_live_subjects(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends)
    run(config, check(C, "kafka.consumer_lag", "g1"), check(W, "postgres.dead_tuples", "silver.a"), *healthy_rest())
    # Each probe raised: one unknown with an empty subject, while other checks of the family answered.
    run(config, check(U, "kafka.consumer_lag"), check(U, "postgres.dead_tuples"), *healthy_rest())
    assert pd_actions(pd_api) == [("trigger", dedup_key("kafka.consumer_lag", "g1"))]
    assert len(slack_api.calls("POST")) == 1
    rows = alert_rows(ops_db)
    assert rows[("kafka.consumer_lag", "g1")]["incident_open"] and rows[("postgres.dead_tuples", "silver.a")]["status"] == "warning"


def test_flapping_is_one_note_not_a_page_storm(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends)
    flaps = [C if i % 2 else O for i in range(10)]
    for status in flaps:
        run(config, check(status))
    threshold = config.alerting.flap_threshold
    assert len(pd_api.calls("POST")) == threshold  # every flip paged until the flips passed the threshold
    notes = [p for p in posts(slack_api) if "flapping" in json.dumps(p["blocks"])]
    assert len(notes) == 1 and len(posts(slack_api)) == threshold + 1
    # The note quotes the history of the sweep where the flips first exceeded the threshold.
    window = config.alerting.flap_window
    windows = [flaps[max(0, i + 1 - window):i + 1] for i in range(len(flaps))]
    first = next(w for w in windows if sum(a != b for a, b in zip(w, w[1:])) > threshold)
    assert " -> ".join(s.value for s in first) in json.dumps(notes[0])


def test_connection_removed_while_critical_is_an_orphan_told_once(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends)
    run(config, check(C, "kubernetes.pods", "streamflow-data"))
    sweeps = [run(config, check(S, "kubernetes.pods")) for _ in range(2)]
    key = dedup_key("kubernetes.pods", "streamflow-data")
    for summary, outcome in sweeps:  # listed in every sweep's report and alert report
        assert "ORPHAN: kubernetes.pods [streamflow-data]" in summary["report"] and key in summary["report"]
        assert key in "\n".join(outcome.standing.orphans) and "ORPHAN" in outcome.describe()
    assert len(posts(slack_api)) == 2 and key in json.dumps(posts(slack_api)[1]["blocks"])
    assert pd_actions(pd_api) == [("trigger", key)]  # nothing answered: no resolve


# --- sequences ------------------------------------------------------------------------------------

def test_pagerduty_500_three_times_then_healthy_delivers_exactly_one_trigger(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends, pd_failures=3)
    outcomes = [run(config, check(C))[1] for _ in range(4)]
    assert [bool(o.delivery.errors) for o in outcomes] == [True, True, True, False]
    assert codes(pd_api) == [500, 500, 500, 202] and accepted(pd_api) == [("trigger", BACKUP)]
    summary, _ = run(config, check(C))
    assert len(pd_api.calls("POST")) == 4 and len(posts(slack_api)) == 1
    assert f"open incident: {BACKUP} (critical)" in summary["report"]


def test_a_page_owed_for_something_resolved_meanwhile_is_dropped(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends, pd_failures=1, slack_failures=1)
    run(config, check(C))
    run(config, check(O))
    assert codes(pd_api) == [500] and codes(slack_api) == [500]  # nothing owed any more: nothing sent
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["pending_page"] is None


def test_slack_500_then_200_is_one_message(config, far_ends, ops_db):
    slack_api, _ = failing(far_ends, slack_failures=1)
    summary, first = run(config, check(W))
    assert first.delivery.slack.startswith("failed")
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["pending_slack"] == ["change"]
    run(config, summary=summary)  # the task's retry
    run(config, check(W))  # and the next sweep
    assert codes(slack_api) == [500, 200] and len(posts(slack_api)) == 1
    assert "new problem" in json.dumps(posts(slack_api)[0]["blocks"])


class _Crashing:
    def run(self, config, now):
        raise RuntimeError("probe module crashed")


class _Hanging:
    def __init__(self):
        self.release = threading.Event()

    def run(self, config, now):
        self.release.wait(30)
        return []


@pytest.mark.parametrize("family", [_Crashing, _Hanging, None])
def test_a_family_that_crashes_or_hangs_keeps_its_subjects_open(config, far_ends, ops_db, monkeypatch, family):
    slack_api, pd_api = failing(far_ends)
    run(config, check(C, "kafka.consumer_lag", "g1"), *healthy_rest())
    if family is None:  # the check_kafka task itself failed: summarize gets no output for it
        results = sweep.collect({"kafka": None})
    else:
        broken = family()
        monkeypatch.setattr(sweep, "load_families", lambda: {"kafka": broken})
        results = sweep.run_family("kafka", config, budget_s=0.5)
        getattr(broken, "release", threading.Event()).set()
    for _ in range(2):
        run(config, *results, check(O, "postgres.reachable"))
    assert pd_actions(pd_api) == [("trigger", dedup_key("kafka.consumer_lag", "g1"))]
    assert alert_rows(ops_db)[("kafka.consumer_lag", "g1")]["incident_open"] is True
    told = json.dumps(posts(slack_api)[-1]["blocks"])
    assert len(posts(slack_api)) == 2 and "Not measured" in told and "kafka.consumer_lag" in told


def test_alertmanager_firing_the_same_alert_is_not_paged_twice(config, far_ends, ops_db, monkeypatch):
    """The real monitoring check reads a local Alertmanager; alerting defers to what it fires."""
    slack_api, pd_api = failing(far_ends)
    watchdog = next(a for a in load("alertmanager", "alerts_critical") if a["labels"]["alertname"] == "Watchdog")
    firing = {**watchdog, "fingerprint": "1f2e3d4c5b6a7980",
              "labels": {"alertname": "PostgresHighConnections", "severity": "critical",
                         "namespace": "streamflow-data"}}
    with FakeApi() as alertmanager:
        alertmanager.route("GET", "/api/v2/alerts", [watchdog, firing])
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_ALERTMANAGER", http_connection(alertmanager.url))
        run(config, check(C, "postgres.connections"), *sweep.run_family("monitoring", config))
        assert pd_api.requests == []  # Alertmanager pages for both; neither is paged a second time
        told = json.dumps(posts(slack_api)[0]["blocks"])
        assert "Alertmanager already fires *PostgresHighConnections*" in told
        alertmanager.route("GET", "/api/v2/alerts", [watchdog])  # it stopped firing (say, resolved there)
        run(config, check(C, "postgres.connections"), *sweep.run_family("monitoring", config))
    assert accepted(pd_api) == [("trigger", dedup_key("postgres.connections", ""))]  # still critical: not lost


def test_dry_run_lists_what_is_owed_and_metrics_count_it(config, far_ends, ops_db, monkeypatch):
    failing(far_ends, pd_failures=1)
    with FakeApi() as gateway:
        gateway.route("PUT", r"/metrics/job/.*", (200, b""))
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_PUSHGATEWAY", http_connection(gateway.url))
        run(config, check(C), check(C, "kafka.consumer_lag", "g1"))
        pushed = gateway.calls("PUT", "/metrics/job/streamflow_ops_alerting")[-1].body.decode()
    assert "streamflow_ops_alert_open_incidents 1" in pushed  # one trigger of two was accepted
    assert 'streamflow_ops_alert_owed_deliveries{channel="pagerduty"} 1' in pushed
    before = alert_rows(ops_db)
    _, dry = run(config, check(C), check(C, "kafka.consumer_lag", "g1"), dry_run=True)
    assert alert_rows(ops_db) == before
    assert [p["outcome"] for p in dry.delivery.pagerduty] == ["dry run: not sent"]
    assert any("pagerduty trigger" in line for line in dry.standing.still_owed)


def test_postgres_unreachable_still_pages_from_the_sweep_alone(config, far_ends, monkeypatch):
    slack_api, pd_api = failing(far_ends)
    summary = sweep.summarize(config, "manual__pg_down", [check(C, "postgres.reachable")], datetime.now(timezone.utc))
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES",
                       f"postgresql://streamflow:x@127.0.0.1:{unused_port()}/streamflow")
    outcome = sweep.alert(config, summary, dry_run=False)
    assert accepted(pd_api) == [("trigger", dedup_key("postgres.reachable", ""))] and len(posts(slack_api)) == 1
    assert "ops.alert_state cannot be used" in json.dumps(posts(slack_api)[0]["blocks"])
    assert outcome.delivery.errors == [] and "ops.alert_state cannot be used" in outcome.describe()


def test_the_diagnosis_reaches_slack_and_pagerduty(config, far_ends, ops_db, monkeypatch):
    """Delivery only: summarize's own diagnose() (tests/remediation) would replace this one with what it
    gathers from the sandbox, so it is left out here."""
    monkeypatch.setattr(sweep, "diagnose", lambda config, results: 0)
    slack_api, pd_api = failing(far_ends)
    diagnosis = {"alert": "PostgresHighConnections", "findings": ["97 of 100 connections", "60 idle in transaction"],
                 "not_gathered": [], "remediation": {"dag_id": "remediate_postgres_connections",
                                                     "url": "http://airflow.local/dags/remediate_postgres_connections"}}
    run(config, check(C, "postgres.connections", details={"diagnosis": diagnosis}))
    [event] = [body for code, body in pd_api.answered if code == 202]
    assert event["payload"]["custom_details"]["diagnosis"] == diagnosis
    told = json.dumps(posts(slack_api)[0]["blocks"])
    assert all(line in told for line in [*diagnosis["findings"], diagnosis["remediation"]["url"]])


# --- issue 22: sequences that once held a page back or left an incident open -------------------------

class MemoryLedger:
    """The Airflow Variable ledger's JSON round trip (alerting.ledger dumps/loads), kept in memory."""

    def __init__(self):
        self.text: str | None = None

    def load(self):
        return loads(self.text)

    def store(self, states, offline):
        self.text = dumps(states, offline)


def postgres_down(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES",
                       f"postgresql://streamflow:x@127.0.0.1:{unused_port()}/streamflow")


def offline_summary(config, sweep_id: str, *results: CheckResult) -> dict:
    return sweep.summarize(config, sweep_id, list(results), datetime.now(timezone.utc))


def test_a_first_critical_after_flapping_is_paged(config, far_ends, ops_db):
    slack_api, pd_api = failing(far_ends)
    flaps = [O, W] * 3  # 5 flips in 6 sweeps: more than flap_threshold (3), so flapping
    for status in flaps:
        run(config, check(status))
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["flapping"] is True and pd_api.requests == []
    run(config, check(C))  # its first critical: no incident is open, so it is paged now
    assert accepted(pd_api) == [("trigger", BACKUP)]
    assert "(warning -> critical)" in json.dumps(posts(slack_api)[-1]["blocks"])
    for status in (O, C, O):  # still flapping: the incident is held open, no page again
        run(config, check(status))
    assert accepted(pd_api) == [("trigger", BACKUP)]
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["incident_open"] is True


def test_an_incident_paged_while_postgres_was_down_is_recorded_and_resolved(config, far_ends, ops_db,
                                                                           monkeypatch):
    slack_api, pd_api = failing(far_ends)
    ledger = MemoryLedger()
    postgres_down(monkeypatch)
    _, down = run(config, summary=offline_summary(config, "manual__down", check(C)), ledger=ledger)
    assert accepted(pd_api) == [("trigger", BACKUP)] and down.delivery.errors == []
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", ops_db)  # PostgreSQL answers again
    assert alert_rows(ops_db) == {}
    _, back = run(config, check(C), ledger=ledger)  # still critical: recorded, not paged a second time
    row = alert_rows(ops_db)[("postgres.backup_age", "")]
    assert row["incident_open"] is True and row["notified_status"] == "critical"
    assert accepted(pd_api) == [("trigger", BACKUP)] and len(posts(slack_api)) == 1
    assert ledger.load().offline is False  # recorded: the ledger is a copy of the table again
    run(config, check(O), ledger=ledger)  # it answers ok: resolved
    assert accepted(pd_api) == [("trigger", BACKUP), ("resolve", BACKUP)]
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["incident_open"] is False


def test_resolved_while_postgres_was_down_is_resolved_when_it_is_back(config, far_ends, ops_db, monkeypatch):
    """The check is ok by the time PostgreSQL answers: the incident paged meanwhile is resolved, not forgotten."""
    _, pd_api = failing(far_ends)
    ledger = MemoryLedger()
    postgres_down(monkeypatch)
    run(config, summary=offline_summary(config, "manual__down", check(C, "kafka.consumer_lag", "g1")), ledger=ledger)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", ops_db)
    run(config, check(O, "kafka.consumer_lag", "g1"), ledger=ledger)
    key = dedup_key("kafka.consumer_lag", "g1")
    assert accepted(pd_api) == [("trigger", key), ("resolve", key)]


def test_a_retry_while_postgres_is_down_never_posts_slack_twice(config, far_ends, monkeypatch):
    slack_api, pd_api = failing(far_ends, pd_failures=1)
    ledger = MemoryLedger()
    postgres_down(monkeypatch)
    summary = offline_summary(config, "manual__down", check(C))
    _, first = run(config, summary=summary, ledger=ledger)
    assert first.delivery.errors and accepted(pd_api) == [] and len(posts(slack_api)) == 1  # the task fails
    _, retry = run(config, summary=summary, ledger=ledger)  # Airflow's retry: same summary, same ledger
    assert retry.delivery.errors == [] and accepted(pd_api) == [("trigger", BACKUP)]
    run(config, summary=offline_summary(config, "manual__down2", check(C)), ledger=ledger)  # next sweep, still down
    assert len(posts(slack_api)) == 1 and codes(pd_api) == [500, 202]


@pytest.mark.parametrize("severity, paged", [("warning", True), ("critical", False)])
def test_a_warning_from_alertmanager_never_stands_in_for_our_critical_page(config, far_ends, ops_db, monkeypatch,
                                                                          severity, paged):
    slack_api, pd_api = failing(far_ends)
    watchdog = next(a for a in load("alertmanager", "alerts_critical") if a["labels"]["alertname"] == "Watchdog")
    fraud = {**watchdog, "fingerprint": "2a3b4c5d6e7f8091",
             "labels": {"alertname": "HighFraudRate", "severity": severity, "namespace": "streamflow-data"}}
    with FakeApi() as alertmanager:
        alertmanager.route("GET", "/api/v2/alerts", [watchdog, fraud])
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_ALERTMANAGER", http_connection(alertmanager.url))
        run(config, check(C, "business.fraud_rate"), *sweep.run_family("monitoring", config))
    fraud_key = dedup_key("business.fraud_rate", "")
    assert (("trigger", fraud_key) in accepted(pd_api)) is paged
    told = json.dumps(posts(slack_api)[0]["blocks"])
    assert ("it pages for this" in told) is not paged


def test_a_hanging_pagerduty_never_starves_slack(far_ends, ops_db, monkeypatch):
    """20 s per event one by one before Slack, inside a 2-minute task timeout, starved Slack; here each channel
    has its own budget and Slack goes out while PagerDuty hangs (scaled down: 2 s per request, 3 s budget)."""
    monkeypatch.setattr(sweep, "diagnose", lambda config, results: 0)
    config = load_config({"alerting": {"request_timeout_s": 2, "channel_budget_s": 3,
                                       "slack_waits_for_pagerduty_s": 0.5}})
    slack_api, pd_api = far_ends
    release, posted_at = threading.Event(), []
    pd_api.route("POST", r"/v2/enqueue", lambda request: (release.wait(30), (503, {"status": "late"}))[1])
    slack_api.route("POST", r"/services/.*", lambda request: (posted_at.append(time.monotonic()), slack_ok(request))[1])
    pods = [check(C, "kubernetes.pods", f"streamflow-ns{i}") for i in range(8)]
    summary = offline_summary(config, "manual__hang", *pods)
    try:
        started = time.monotonic()
        outcome = sweep.alert(config, summary, dry_run=False)
        took = time.monotonic() - started
    finally:
        release.set()
    # One by one, 8 x 2 s = 16 s passed before Slack; margins for a loaded machine.
    assert posted_at and posted_at[0] - started < 6
    assert took < 3 + 6  # PagerDuty's budget, plus Slack and PostgreSQL
    assert len(outcome.delivery.errors) == 8
    assert "has not answered 8 of 8 pages" in json.dumps(slack_api.requests[0].json())
    rows = alert_rows(ops_db)
    assert [rows[("kubernetes.pods", f"streamflow-ns{i}")]["pending_page"] for i in range(8)] == ["trigger"] * 8
    assert all(rows[("kubernetes.pods", f"streamflow-ns{i}")]["pending_slack"] == [] for i in range(8))
    pd_api.route("POST", r"/v2/enqueue", answering(pd_api, pd_ok, pd_500, 0))
    sweep.alert(config, offline_summary(config, "manual__after", *pods), dry_run=False)  # PagerDuty is back
    assert sorted(accepted(pd_api)) == sorted(("trigger", dedup_key("kubernetes.pods", f"streamflow-ns{i}"))
                                              for i in range(8))
    assert len(posted_at) == 1  # Slack was told once


def test_a_worker_running_ahead_never_freezes_later_sweeps(config, far_ends, ops_db):
    _, pd_api = failing(far_ends)
    ahead = datetime.now(timezone.utc) + timedelta(hours=3)  # this worker's clock is 3 h fast
    run(config, summary=sweep.summarize(config, "manual__ahead", [check(C)], ahead, checked_at=ahead))
    run(config, check(O))  # the next sweep, on a worker with the right time
    assert accepted(pd_api) == [("trigger", BACKUP), ("resolve", BACKUP)]
    with psycopg.connect(ops_db) as conn:
        db_now = conn.execute("select now()").fetchone()[0]
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["checked_at"] <= db_now < ahead


def test_alert_state_follows_the_runs_run_after(config, far_ends, ops_db):
    _, pd_api = failing(far_ends)
    hour = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    def at(run_after, status, sweep_id):  # noqa: E306 - workers whose clocks disagree with the runs' order
        worker = datetime.now(timezone.utc) - (run_after - hour) * 5
        summary = sweep.summarize(config, sweep_id, [check(status)], worker, checked_at=worker, run_after=run_after)
        return run(config, summary=summary)
    at(hour, C, "scheduled__10")
    at(hour + timedelta(hours=1), O, "scheduled__11")  # its worker's clock says it ran 5 h earlier
    assert accepted(pd_api) == [("trigger", BACKUP), ("resolve", BACKUP)]
    at(hour - timedelta(hours=1), C, "scheduled__09")  # an older run's late retry changes nothing
    assert accepted(pd_api) == [("trigger", BACKUP), ("resolve", BACKUP)]
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["checked_at"] == hour + timedelta(hours=1)


def test_a_renamed_check_resolves_its_incident_with_a_note(config, far_ends, ops_db, monkeypatch):
    from streamflow_ops.alerting import run as alerting_run

    slack_api, pd_api = failing(far_ends)
    old_name = "postgres.backup_freshness"  # what an earlier release called postgres.backup_age
    with monkeypatch.context() as release_before:  # the earlier release, whose registry had the old name
        release_before.setattr(alerting_run, "KNOWN_CHECKS", alerting_run.KNOWN_CHECKS | {old_name}, raising=False)
        run(config, check(C, old_name), check(O, "postgres.reachable"))
    for _ in range(3):  # the release with the new name: the old one is gone from the registry
        run(config, check(C), check(O, "postgres.reachable"))
    old_key = dedup_key(old_name, "")
    assert sorted(accepted(pd_api)) == sorted([("trigger", old_key), ("trigger", BACKUP), ("resolve", old_key)])
    told = json.dumps(posts(slack_api)[1]["blocks"])
    assert f"{old_name} no longer exists (renamed or removed" in told and "resolution" in told
    assert "not measured" not in json.dumps([p["blocks"] for p in posts(slack_api)]).lower()
    assert (old_name, "") not in alert_rows(ops_db) and len(posts(slack_api)) == 2  # told once, then forgotten


def test_without_a_pagerduty_connection_nothing_is_owed_to_it(config, far_ends, ops_db, monkeypatch):
    slack_api, pd_api = failing(far_ends)
    pd_conn = os.environ.pop("AIRFLOW_CONN_PAGERDUTY_STREAMFLOW")
    monkeypatch.delenv("AIRFLOW_CONN_PAGERDUTY_STREAMFLOW", raising=False)
    _, outcome = run(config, check(C))
    row = alert_rows(ops_db)[("postgres.backup_age", "")]
    assert row["pending_page"] is None and row["pending_slack"] == [] and outcome.standing.still_owed == []
    assert "Pages are not configured" in json.dumps(posts(slack_api)[0]["blocks"])
    assert outcome.delivery.pagerduty == [] and pd_api.requests == []
    monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_STREAMFLOW", pd_conn)  # configured later: the current state
    run(config, check(C))
    assert accepted(pd_api) == [("trigger", BACKUP)] and len(posts(slack_api)) == 1


# --- no DDL in the alert path -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["access share", "access exclusive"])
def test_an_analysts_open_transaction_never_stops_alerting(far_ends, ops_db, mode):
    """An analyst's open transaction on ops.health_check_results: a select (access share) queued the
    sweep's ALTER TABLE; an ALTER of their own (access exclusive) holds the table itself."""
    config = load_config({"postgres_checks": {"statement_timeout_s": 2}, "warehouse": {"schema_lock_timeout_s": 1}})
    _, pd_api = failing(far_ends)
    with psycopg.connect(ops_db) as analyst:  # a transaction left open
        analyst.execute(f"lock table ops.health_check_results in {mode} mode")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):  # the setup step fails fast, not the alerting
            sweep.ensure_ops_tables(config)
        assert time.monotonic() - started < 4  # its lock timeout (1 s), not the statement timeout (60 s)
        summary, outcome = run(config, check(C))
        analyst.rollback()
    assert summary["persisted"] is (mode == "access share")
    assert outcome.delivery.errors == [] and accepted(pd_api) == [("trigger", BACKUP)]
    assert alert_rows(ops_db)[("postgres.backup_age", "")]["incident_open"] is True


def test_tables_owned_by_another_role_still_alert(config, far_ends, ops_db, monkeypatch):
    slack_api, pd_api = failing(far_ends)
    suffix = uuid.uuid4().hex[:8]
    owner, sweeper = f"ops_owner_{suffix}", f"sweeper_{suffix}"
    admin = psycopg.connect(ops_db, autocommit=True)
    try:
        admin.execute(f"create role {owner} nologin")
        admin.execute(f"create role {sweeper} login password 'pw' nosuperuser")
        admin.execute(f"alter schema ops owner to {owner}")
        for (table,) in admin.execute("select tablename from pg_tables where schemaname = 'ops'").fetchall():
            admin.execute(f"alter table ops.{table} owner to {owner}")
        admin.execute(f"grant usage on schema ops to {sweeper}")
        admin.execute(f"grant select, insert, update, delete on all tables in schema ops to {sweeper}")
        admin.execute(f"grant usage on all sequences in schema ops to {sweeper}")
        info = psycopg.conninfo.conninfo_to_dict(ops_db)
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES",
                           f"postgresql://{sweeper}:pw@{info['host']}:{info['port']}/{info['dbname']}")
        summary, outcome = run(config, check(C))
        assert summary["persisted"] and outcome.delivery.errors == []
        assert alert_rows(ops_db)[("postgres.backup_age", "")]["incident_open"] is True
        admin.execute(f"revoke all on ops.alert_state from {sweeper}")  # now it cannot be used at all
        _, outcome = run(config, check(C), check(C, "kafka.consumer_lag", "g1"))
        assert outcome.delivery.errors == [] and "ops.alert_state cannot be used" in outcome.describe()
        # From its own results: both current problems (PagerDuty deduplicates the repeated key).
        assert sorted(accepted(pd_api)) == sorted([("trigger", BACKUP), ("trigger", BACKUP),
                                                   ("trigger", dedup_key("kafka.consumer_lag", "g1"))])
    finally:
        admin.execute("drop schema if exists ops cascade")
        for role in (sweeper, owner):
            admin.execute(f"drop owned by {role}")
            admin.execute(f"drop role {role}")
        admin.close()


def test_an_outage_starts_from_what_was_known_and_repeats_nothing(config, far_ends, ops_db, monkeypatch):
    """An incident open before PostgreSQL went down is neither paged nor told again during the outage."""
    slack_api, pd_api = failing(far_ends)
    ledger = MemoryLedger()
    run(config, check(C), ledger=ledger)
    postgres_down(monkeypatch)
    _, down = run(config, summary=offline_summary(config, "manual__down", check(C)), ledger=ledger)
    assert accepted(pd_api) == [("trigger", BACKUP)] and len(posts(slack_api)) == 1
    assert "cannot be used" in down.describe()
