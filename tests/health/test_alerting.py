"""The alert state machine (pure): what is owed after each sweep, what a delivery acknowledges, and the
Slack and PagerDuty payloads. No Airflow, no network: sequences of sweeps on in-memory rows."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from streamflow_ops import registry
from streamflow_ops.alerting import pagerduty, slack
from streamflow_ops.alerting.run import ALERT_NAMES
from streamflow_ops.alerting.state import (CHANGE, FLAPPING, NOT_MEASURED, ORPHAN, PAGERDUTY, RESOLVE, SLACK, TRIGGER,
                                           AlertState, ChangeKind, Policy, advance, dedup_key, flips, page_delivered,
                                           slack_delivered)
from streamflow_ops.results import CheckResult, Status

C, W, U, O, S = Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK, Status.SKIPPED
T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)
AM = registry.MONITORING_ALERTMANAGER.name
POLICY = Policy(flap_threshold=3, flap_window=6)


def result(status, check="postgres.backup_age", subject="", value=None, details=None):
    return CheckResult(check, status, f"{check} is {status.value}", subject=subject, value=value,
                       threshold="warning > 26 h", runbook="Backup and Recovery > Automated Backups",
                       details=details or {})


class Sweeps:
    """Rows as ops.alert_state would hold them, moved sweep by sweep; `deliver()` acknowledges all owed."""

    def __init__(self, policy: Policy = POLICY, known=None):
        self.policy, self.n, self.states, self.known = policy, 0, {}, known
        self.pages: list[tuple[str, str]] = []  # acknowledged PagerDuty actions
        self.told: list[tuple[str, str, str]] = []  # acknowledged Slack items (item, check, subject)

    def sweep(self, *results: CheckResult, deliver: bool = True) -> dict:
        self.n += 1
        step = advance(self.states, list(results), f"sweep-{self.n}", T0 + timedelta(hours=self.n), self.policy,
                       ALERT_NAMES, AM, self.known)
        self.states = step.merged(self.states)
        if deliver:
            self.deliver()
        return self.states

    def deliver(self) -> None:
        at = T0 + timedelta(hours=self.n, minutes=1)
        for key, state in list(self.states.items()):
            if state.pending_page:
                self.pages.append((state.pending_page, dedup_key(*key)))
                state = page_delivered(state, state.pending_page, at)
            if state.pending_slack:
                self.told += [(item, *key) for item in state.pending_slack]
                state = slack_delivered(state, state.pending_slack, at)
            self.states[key] = state

    def row(self, check="postgres.backup_age", subject="") -> AlertState:
        return self.states[(check, subject)]


@pytest.mark.parametrize("told, now, kind, page", [
    (None, O, None, None),                          # first sweep, healthy: nothing to say
    (None, C, ChangeKind.NEW, TRIGGER),             # first sweep, already broken: news and a page
    (O, W, ChangeKind.NEW, None),                   # warnings never page
    (W, C, ChangeKind.ESCALATION, TRIGGER),
    (C, W, ChangeKind.DEESCALATION, None),          # the incident stays open until the check is ok again
    (C, O, ChangeKind.RESOLUTION, RESOLVE),
    (W, O, ChangeKind.RESOLUTION, None),
    (C, C, None, None),                             # still critical: silence (PagerDuty already has it)
    (W, W, None, None),
])
def test_owed_follows_from_what_people_were_told(told, now, kind, page):
    sweeps = Sweeps()
    if told:
        sweeps.sweep(result(told))
    state = sweeps.sweep(result(now), deliver=False)[("postgres.backup_age", "")]
    assert state.change_kind is kind and state.pending_page == page


def test_one_incident_from_critical_until_ok_through_a_de_escalation():
    sweeps = Sweeps()
    for status in (C, W, C, O):
        sweeps.sweep(result(status))
    key = dedup_key("postgres.backup_age", "")
    assert sweeps.pages == [(TRIGGER, key), (RESOLVE, key)]
    assert [t[0] for t in sweeps.told] == [CHANGE] * 4  # Slack hears every change


@pytest.mark.parametrize("lost", [U, S])
def test_unknown_and_skipped_resolve_nothing(lost):
    sweeps = Sweeps()
    sweeps.sweep(result(C))
    sweeps.sweep(result(lost), result(O, "postgres.reachable"))  # the family answered other checks
    state = sweeps.row()
    assert state.status is C and state.incident_open and state.pending_page is None
    assert sweeps.pages == [(TRIGGER, "streamflow-ops/postgres.backup_age")]
    assert (CHANGE, "postgres.backup_age", "") not in sweeps.told[1:]


def test_probe_failure_with_empty_subject_keeps_every_subject_open():
    """postgres/checks.py reports a failed dead-tuples probe as one unknown with an empty subject."""
    sweeps = Sweeps()
    sweeps.sweep(result(W, "postgres.dead_tuples", "silver.a"), result(C, "kafka.consumer_lag", "g1"))
    sweeps.sweep(result(U, "postgres.dead_tuples"), result(O, "postgres.reachable"),
                 result(U, "kafka.consumer_lag"), result(O, "kafka.broker_reachable"))
    assert sweeps.row("postgres.dead_tuples", "silver.a").status is W
    assert sweeps.row("kafka.consumer_lag", "g1").incident_open
    assert [p for p in sweeps.pages if p[0] == RESOLVE] == []


def test_a_subject_resolves_when_its_own_check_answered_without_it():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "kafka.consumer_lag", "gone"), result(O, "kafka.consumer_lag", "stays"))
    sweeps.sweep(result(O, "kafka.consumer_lag", "stays"))
    assert sweeps.pages == [(TRIGGER, dedup_key("kafka.consumer_lag", "gone")),
                            (RESOLVE, dedup_key("kafka.consumer_lag", "gone"))]
    assert "no longer reported" in sweeps.row("kafka.consumer_lag", "gone").result.message
    sweeps.sweep(result(O, "kafka.consumer_lag", "stays"))  # healthy and gone: forgotten
    assert ("kafka.consumer_lag", "gone") not in sweeps.states


def test_not_measured_is_told_once_after_two_failed_sweeps():
    sweeps = Sweeps()
    sweeps.sweep(result(O))
    for _ in range(4):
        sweeps.sweep(result(U))
    assert sweeps.told == [(NOT_MEASURED, "postgres.backup_age", "")]
    assert sweeps.row().status is O and sweeps.row().unmeasured_sweeps == 4


def test_family_failure_counts_as_not_measured_for_its_checks():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "kafka.consumer_lag", "g1"))
    crashed = CheckResult("kafka.sweep", U, "the check_kafka task produced no results (failed or timed out)")
    sweeps.sweep(crashed)
    sweeps.sweep(crashed)
    assert sweeps.row("kafka.consumer_lag", "g1").incident_open
    assert (NOT_MEASURED, "kafka.consumer_lag", "g1") in sweeps.told
    sweeps.sweep(result(C, "kafka.consumer_lag", "g1"))  # the family is back: the sweep row is forgotten
    assert ("kafka.sweep", "") not in sweeps.states and sweeps.pages == [(TRIGGER, dedup_key("kafka.consumer_lag", "g1"))]


def test_owed_deliveries_fold_into_the_current_state():
    sweeps = Sweeps()
    sweeps.sweep(result(C), deliver=False)  # nothing acknowledged: trigger and change owed
    assert sweeps.row().pending_page == TRIGGER
    sweeps.sweep(result(O), deliver=False)  # resolved before anybody was told
    assert sweeps.row().pending_page is None and sweeps.row().pending_slack == ()
    sweeps.sweep(result(W), deliver=False)  # a warning now: the change owed is ok -> warning, no page
    assert sweeps.row().change_kind is ChangeKind.NEW and sweeps.row().pending_page is None


def test_a_retry_of_the_same_sweep_changes_nothing_twice():
    sweeps = Sweeps()
    sweeps.sweep(result(O))
    first = sweeps.sweep(result(C), deliver=False)
    again = advance(first, [result(C)], f"sweep-{sweeps.n}", T0 + timedelta(hours=sweeps.n), POLICY, ALERT_NAMES, AM)
    older = advance(first, [result(O)], "sweep-0", T0, POLICY, ALERT_NAMES, AM)
    assert again.updated == [] and older.updated == []


def flap_sequence(n: int) -> list[Status]:
    return [O if i % 2 == 0 else C for i in range(n)]


def test_flapping_is_told_once_and_pages_stop_until_stable():
    sweeps = Sweeps()
    statuses = flap_sequence(12)
    for status in statuses:
        sweeps.sweep(result(status))
    # Pages go out until the flips in the window exceed the threshold (independently: count them).
    paged_sweeps = [i for i in range(1, len(statuses))
                    if statuses[i] != statuses[i - 1] and flips([s.value for s in statuses[:i + 1]][-6:]) <= 3]
    assert len(sweeps.pages) == len(paged_sweeps) == 3
    assert [t for t in sweeps.told if t[0] == FLAPPING] == [(FLAPPING, "postgres.backup_age", "")]
    assert sweeps.row().flapping and sweeps.row().incident_open  # held open while flapping
    for _ in range(6):
        sweeps.sweep(result(O))
    assert not sweeps.row().flapping
    assert sweeps.pages[-1] == (RESOLVE, "streamflow-ops/postgres.backup_age") and len(sweeps.pages) == 4


def alertmanager(*alertnames: str, severity: str = "critical") -> CheckResult:
    """The monitoring check's answer as evaluate_alerts words it: alert names, and lines by severity."""
    status = (C if severity == "critical" else W) if alertnames else O
    return CheckResult(AM, status, "firing", details={"alertnames": list(alertnames),
                                                      "firing": {severity: [f"{a} (namespace=x): s" for a in alertnames]}})


def test_alertmanager_already_paging_is_not_paged_twice():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "postgres.connections"), alertmanager("PostgresHighConnections"))
    assert sweeps.pages == []
    assert sweeps.row("postgres.connections").deferred_to == "PostgresHighConnections"
    sweeps.sweep(result(C, "postgres.connections"), alertmanager())  # Alertmanager stopped: we page
    assert sweeps.pages == [(TRIGGER, dedup_key("postgres.connections", ""))]


def test_a_deferral_lapses_when_alertmanager_stops_answering():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "postgres.connections"), alertmanager("PostgresHighConnections"))
    assert sweeps.pages == []
    sweeps.sweep(result(C, "postgres.connections"), CheckResult(AM, U, "probe failed"))
    assert sweeps.row("postgres.connections").deferred_to is None
    assert sweeps.pages == [(TRIGGER, dedup_key("postgres.connections", ""))]


def test_without_deferral_both_page():
    sweeps = Sweeps(Policy(defer_to_alertmanager=False))
    sweeps.sweep(result(C, "postgres.connections"), alertmanager("PostgresHighConnections"))
    assert sorted(sweeps.pages) == [(TRIGGER, dedup_key(AM, "")), (TRIGGER, dedup_key("postgres.connections", ""))]


def test_orphan_is_told_once_with_its_dedup_key():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "kubernetes.pods", "streamflow-data"))
    for _ in range(3):
        sweeps.sweep(result(S, "kubernetes.pods"))
    assert [t for t in sweeps.told if t[0] == ORPHAN] == [(ORPHAN, "kubernetes.pods", "streamflow-data")]
    state = sweeps.row("kubernetes.pods", "streamflow-data")
    assert state.orphan and state.incident_open
    assert dedup_key("kubernetes.pods", "streamflow-data") in slack.orphan_text(state)


def test_rows_survive_the_table_round_trip():
    sweeps = Sweeps()
    sweeps.sweep(result(C, details={"diagnosis": {"alert": "X", "findings": ["a"]}}), deliver=False)
    state = sweeps.row()
    assert AlertState.from_row({**state.to_row(), "updated_at": T0}) == state


# --- payloads ----------------------------------------------------------------------------------------

DIAGNOSIS = {"alert": "PostgresHighConnections", "findings": ["92 of 100 connections", "41 idle in transaction"],
             "not_gathered": ["pg_stat_statements: not installed"],
             "remediation": {"dag_id": "remediate_postgres_connections",
                             "url": "http://airflow/dags/remediate_postgres_connections/trigger"}}


def owed_rows(*results: CheckResult, told: Status | None = None) -> list[AlertState]:
    sweeps = Sweeps()
    if told:
        sweeps.sweep(*[result(told, r.check_name, r.subject) for r in results])
    return [s for s in sweeps.sweep(*results, deliver=False).values() if s.owes]


def test_slack_change_block_carries_value_threshold_runbook_and_diagnosis():
    rows = owed_rows(result(C, "postgres.connections", value=92, details={"diagnosis": DIAGNOSIS}))
    message = slack.build_message(rows, C, {"critical": 1}, "scheduled__1")
    text = json.dumps(message.blocks)
    assert message.blocks[0]["type"] == "header" and "CRITICAL" in message.blocks[0]["text"]["text"]
    assert "1 change" in message.blocks[1]["text"]["text"] and "new problem" in message.blocks[1]["text"]["text"]
    for fact in ("value: 92", "threshold: warning > 26 h", "Backup and Recovery", *DIAGNOSIS["findings"],
                 DIAGNOSIS["remediation"]["url"], "pg_stat_statements"):
        assert fact in text
    assert message.carried == {("postgres.connections", ""): (CHANGE,)} and "*" not in message.text


def test_slack_message_stays_within_block_kit_limits_and_the_rest_stays_owed():
    long = {"diagnosis": {**DIAGNOSIS, "findings": ["x" * 400] * 20}}
    rows = owed_rows(*[result(W, "postgres.dead_tuples", f"s.t{i}", details=long) for i in range(80)])
    message = slack.build_message(rows, W, {}, "x")
    assert len(message.blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in message.blocks if b["type"] == "section")
    carried = len(message.carried)
    assert 0 < carried < 80 and f"{80 - carried} more" in json.dumps(message.blocks)


def test_notes_share_one_block_so_many_failed_pages_never_crowd_out_the_owed_items():
    """One note per failed PagerDuty page: 60 of them once took 60 blocks, past Slack's 50, and the
    message carried none of the owed changes."""
    rows = owed_rows(*[result(C, "kubernetes.pods", f"ns-{i}") for i in range(10)])
    notes = [f"PagerDuty delivery failed (pagerduty trigger ns-{i}: 500)" for i in range(60)]
    message = slack.build_message(rows, C, {"critical": 10}, "x", notes)
    assert len(message.blocks) <= 50 and len(message.carried) == 10
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    warnings = [text for text in sections if ":warning:" in text]
    assert len(warnings) == 1 and notes[0] in warnings[0]


def test_pagerduty_event_dedups_per_check_and_subject_with_the_diagnosis():
    [row] = owed_rows(result(C, "kafka.consumer_lag", "flink-fraud-detector", value=20000,
                             details={"diagnosis": DIAGNOSIS}))
    event = pagerduty.build_event(row, "run1")
    assert event["action"] == TRIGGER and event["severity"] == "critical"
    assert event["dedup_key"] == dedup_key("kafka.consumer_lag", "flink-fraud-detector") != \
        dedup_key("kafka.consumer_lag", "other")
    assert event["custom_details"]["diagnosis"] == DIAGNOSIS and event["custom_details"]["value"] == 20000


def test_alert_metrics_count_open_incidents_owed_deliveries_orphans_and_flapping():
    from prometheus_client.parser import text_string_to_metric_families

    from streamflow_ops.metrics import render_alert_metrics

    sweeps = Sweeps()
    sweeps.sweep(result(C, "kubernetes.pods", "a"), result(C, "postgres.connections"))  # two incidents open
    sweeps.sweep(result(S, "kubernetes.pods"), result(C, "postgres.connections"), result(C), deliver=False)
    samples = {(s.name, tuple(s.labels.items())): s.value for family in
               text_string_to_metric_families(render_alert_metrics(sweeps.states.values())) for s in family.samples}
    rows = list(sweeps.states.values())
    assert samples[("streamflow_ops_alert_open_incidents", ())] == sum(s.incident_open for s in rows) == 2
    assert samples[("streamflow_ops_alert_owed_deliveries", (("channel", "pagerduty"),))] == 1  # backup_age
    assert samples[("streamflow_ops_alert_owed_deliveries", (("channel", "slack"),))] == 2  # + the orphan note
    assert samples[("streamflow_ops_alert_orphans", ())] == 1 and samples[("streamflow_ops_alert_flapping", ())] == 0


def test_a_resolution_owed_when_the_connection_goes_is_still_told():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "kubernetes.pods", "ns"))
    sweeps.sweep(result(O, "kubernetes.pods", "ns"), deliver=False)  # resolved; Slack and PagerDuty refused
    sweeps.sweep(result(S, "kubernetes.pods"))  # then the connection was removed
    assert sweeps.pages[-1] == (RESOLVE, dedup_key("kubernetes.pods", "ns"))
    assert sweeps.told[-1] == (CHANGE, "kubernetes.pods", "ns") and not sweeps.row("kubernetes.pods", "ns").orphan
    assert not any(item == ORPHAN for item, *_ in sweeps.told)
    sweeps.sweep(result(S, "kubernetes.pods"))  # nothing open or owed any more: forgotten
    assert ("kubernetes.pods", "ns") not in sweeps.states


# --- issue 22 -----------------------------------------------------------------------------------------

BACKUP = dedup_key("postgres.backup_age", "")


def test_damping_never_holds_back_a_first_critical():
    sweeps = Sweeps()
    for status in [O, W] * 3:  # 5 flips in 6 sweeps: flapping, never paged (warnings)
        sweeps.sweep(result(status))
    assert sweeps.row().flapping and sweeps.pages == []
    sweeps.sweep(result(C))
    assert sweeps.pages == [(TRIGGER, BACKUP)] and sweeps.told[-1] == (CHANGE, "postgres.backup_age", "")
    for status in (O, C, O):  # still flapping: held open, paged again only once stable
        sweeps.sweep(result(status))
    assert sweeps.pages == [(TRIGGER, BACKUP)] and sweeps.row().incident_open


def test_a_warning_alertmanager_alert_never_stands_in_for_our_critical_page():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "business.fraud_rate"), alertmanager("HighFraudRate", severity="warning"), deliver=False)
    row = sweeps.row("business.fraud_rate")
    assert row.pending_page == TRIGGER and row.deferred_to is None
    assert "pages for this" not in slack.change_text(row)
    sweeps.sweep(result(C, "business.fraud_rate"), alertmanager("HighFraudRate", severity="critical"), deliver=False)
    row = sweeps.row("business.fraud_rate")  # the same alert at critical: Alertmanager pages for it
    assert row.pending_page is None and "Alertmanager already fires *HighFraudRate*" in slack.change_text(row)


def test_a_retired_check_resolves_its_incident_with_a_note_then_is_forgotten():
    sweeps = Sweeps(known={"postgres.backup_age", "postgres.reachable"})
    sweeps.sweep(result(C), result(O, "postgres.reachable"))
    sweeps.known = {"postgres.reachable"}  # postgres.backup_age was renamed
    sweeps.sweep(result(O, "postgres.reachable"), deliver=False)
    row = sweeps.row()
    assert row.pending_page == RESOLVE and row.change_kind is ChangeKind.RESOLUTION
    assert row.result.message.startswith("postgres.backup_age no longer exists (renamed or removed")
    sweeps.deliver()
    sweeps.sweep(result(O, "postgres.reachable"))
    assert ("postgres.backup_age", "") not in sweeps.states
    assert sweeps.pages == [(TRIGGER, BACKUP), (RESOLVE, BACKUP)] and NOT_MEASURED not in [t[0] for t in sweeps.told]


def test_only_a_configured_channel_is_owed_and_defining_it_later_owes_the_current_state():
    sweeps = Sweeps(Policy(channels=frozenset({SLACK})))
    sweeps.sweep(result(C), deliver=False)
    assert sweeps.row().pending_page is None and sweeps.row().pending_slack == (CHANGE,)
    sweeps.policy = Policy(channels=frozenset())
    sweeps.sweep(result(C), deliver=False)
    assert not sweeps.row().owes
    sweeps.policy = Policy()
    sweeps.sweep(result(W), deliver=False)  # both defined again: the current state, a warning, no page
    assert sweeps.row().pending_page is None and sweeps.row().change_kind is ChangeKind.NEW


def test_a_retry_after_a_channel_was_removed_owes_it_nothing():
    sweeps = Sweeps()
    states = sweeps.sweep(result(C), deliver=False)
    retry = advance(states, [result(C)], f"sweep-{sweeps.n}", T0 + timedelta(hours=sweeps.n),
                    Policy(channels=frozenset({SLACK})), ALERT_NAMES, AM)
    [row] = retry.updated
    assert row.pending_page is None and row.pending_slack == (CHANGE,) and row.status is C


def test_an_incident_waiting_for_pagerduty_is_never_forgotten_when_its_check_is_skipped():
    sweeps = Sweeps()
    sweeps.sweep(result(C, "kubernetes.pods", "ns"))
    sweeps.policy = Policy(channels=frozenset({SLACK}))  # PagerDuty's connection removed
    sweeps.sweep(result(O, "kubernetes.pods", "ns"))  # resolved, but nothing can be owed to PagerDuty
    sweeps.sweep(result(S, "kubernetes.pods"))  # and the check's connection removed too
    assert sweeps.row("kubernetes.pods", "ns").incident_open
    sweeps.policy = Policy(channels=frozenset({PAGERDUTY, SLACK}))
    sweeps.sweep(result(S, "kubernetes.pods"))
    key = dedup_key("kubernetes.pods", "ns")
    assert sweeps.pages == [(TRIGGER, key), (RESOLVE, key)]
