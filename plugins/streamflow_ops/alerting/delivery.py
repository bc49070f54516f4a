"""Deliver what ops.alert_state says is owed: PagerDuty and Slack at the same time, each within its own
time budget (`alerting.channel_budget_s`), so a hanging channel never starves the other. Slack waits a
little (`alerting.slack_waits_for_pagerduty_s`) for PagerDuty's answers, so a refused page is told in the
same message; a slower PagerDuty is told as not answered yet. Each acknowledgement is applied to the row
as it stands and written back at once through `save`, so a task retry (or the next sweep) sends only
what is still owed and never re-posts what Slack already accepted; what did not get through stays owed.

Only a configured channel is owed anything (the state machine owes nothing to a channel whose
connection is not defined); the Slack message then says that pages are not configured.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from streamflow_ops.alerting import pagerduty, slack
from streamflow_ops.alerting.state import (CHANGE, PAGERDUTY, SLACK, AlertState, Key, dedup_key, delivery_failed,
                                           page_delivered, slack_delivered)
from streamflow_ops.config import AlertingConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.results import Status, describe_error


def configured_channels(alerting: AlertingConfig) -> frozenset[str]:
    """The channels whose Airflow connection is defined: the only ones anything can be owed to."""
    conn_ids = {PAGERDUTY: alerting.pagerduty_conn_id, SLACK: alerting.slack_conn_id}
    return frozenset(channel for channel, conn_id in conn_ids.items() if connection_defined(conn_id))


@dataclass
class DeliveryReport:
    dry_run: bool
    slack: str = "nothing owed"
    changes: list[str] = field(default_factory=list)  # change lines the message tells (or would tell)
    notices: list[str] = field(default_factory=list)  # its other items: not measured, flapping, orphan
    pagerduty: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lines = [f"slack: {self.slack}" + (" (dry run: nothing sent)" if self.dry_run else "")]
        lines += [f"  {line}" for line in self.changes + self.notices]
        lines += [f"pagerduty {e['action']} {e['dedup_key']}: {e['outcome']}" for e in self.pagerduty]
        lines += [f"DELIVERY FAILED: {err}" for err in self.errors]
        return "\n".join(lines)


def _describe_items(report: DeliveryReport, message: slack.SlackMessage, states: dict[Key, AlertState]) -> None:
    for key, items in message.carried.items():
        state = states[key]
        label = key[0] + (f" [{key[1]}]" if key[1] else "")
        for item in items:
            if item == CHANGE:
                was = state.notified_status.value if state.notified_status else "new"
                report.changes.append(f"{state.change_kind.value}: {label} {was} -> {state.status.value}")
            else:
                report.notices.append(f"{item.replace('_', ' ')}: {label}")


def deliver(alerting: AlertingConfig, owed: Sequence[AlertState], sweep_status: Status, counts: dict[str, int],
            sweep_id: str, *, dry_run: bool, now: datetime, save: Callable[[AlertState], None] | None,
            channels: frozenset[str], notes: Sequence[str] = ()) -> tuple[DeliveryReport, dict[Key, AlertState]]:
    """Send every owed item; returns the report and the rows as they stand after the acknowledgements."""
    report = DeliveryReport(dry_run=dry_run)
    states = {s.key: s for s in owed}
    notes = list(notes)
    lock = threading.Lock()  # PagerDuty's thread and Slack acknowledge rows (and write them) one at a time
    budget = alerting.channel_budget_s

    def acknowledge(key: Key, change: Callable[[AlertState], AlertState]) -> None:
        with lock:
            states[key] = change(states[key])
            if save is not None:
                save(states[key])

    pages = {dedup_key(*s.key): s.key for s in owed if s.pending_page}
    events = [pagerduty.build_event(states[key], sweep_id) for key in pages.values()]
    page_notes: list[str] = []

    def paged(event: dict, error: BaseException | None) -> None:
        key = pages[event["dedup_key"]]
        outcome = {"action": event["action"], "dedup_key": event["dedup_key"]}
        if error is None:
            outcome["outcome"] = "sent"
            acknowledge(key, lambda s: page_delivered(s, event["action"], now))
        else:
            failure = f"pagerduty {event['action']} {event['dedup_key']}: {describe_error(error)}"
            outcome["outcome"] = "failed: still owed"
            acknowledge(key, lambda s: delivery_failed(s, failure, now))
            with lock:
                report.errors.append(failure)
                page_notes.append(f"PagerDuty delivery failed ({failure}); it is retried, but page the on-call by "
                                  f"hand if this is urgent")
        with lock:
            report.pagerduty.append(outcome)

    def page_all() -> None:
        try:
            pagerduty.send_all(alerting.pagerduty_conn_id, events, alerting.request_timeout_s, budget, paged)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable connection: every unanswered page failed
            with lock:
                answered = {outcome["dedup_key"] for outcome in report.pagerduty}
            for event in events:
                if event["dedup_key"] not in answered:
                    paged(event, exc)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagerduty") as pool:
        paging = None
        if dry_run:
            report.pagerduty = [{"action": e["action"], "dedup_key": e["dedup_key"], "outcome": "dry run: not sent"}
                                for e in events]
        elif events:
            paging = pool.submit(page_all)
            wait([paging], timeout=min(alerting.slack_waits_for_pagerduty_s, budget))
        with lock:
            notes += page_notes
            if paging is not None and not paging.done():
                waiting = len(events) - len(report.pagerduty)
                notes.append(f"PagerDuty has not answered {waiting} of {len(events)} pages within "
                             f"{alerting.slack_waits_for_pagerduty_s:g} s: each stays owed until it is accepted; "
                             f"page the on-call by hand if this is urgent")
            owed_slack = [s for s in states.values() if s.pending_slack]
        if PAGERDUTY not in channels and any(s.status is Status.CRITICAL and CHANGE in s.pending_slack
                                             for s in owed_slack):
            notes.append(f"Pages are not configured (connection {alerting.pagerduty_conn_id} not defined): "
                         f"nobody is paged for critical problems; define it to page the on-call")
        message = slack.build_message(owed_slack, sweep_status, counts, sweep_id, notes)
        if message is not None:
            with lock:
                _describe_items(report, message, states)
            _send_slack(alerting, message, report, acknowledge, dry_run, channels, now, budget)
        if paging is not None:
            paging.result()  # bounded by the budget: send_all gives up on what is still pending; never raises
    return report, states


def _send_slack(alerting: AlertingConfig, message: slack.SlackMessage, report: DeliveryReport, acknowledge,
                dry_run: bool, channels: frozenset[str], now: datetime, budget: float) -> None:
    if dry_run:
        report.slack = "dry run: not sent"
        return
    if SLACK not in channels:  # the rows owe nothing to Slack then: only a stale row could get here
        report.slack = f"not configured (connection {alerting.slack_conn_id} not defined): nothing owed"
        return
    try:
        slack.send(alerting.slack_conn_id, message, min(alerting.request_timeout_s, budget))
    except Exception as exc:  # noqa: BLE001 - stays owed, reported, and fails the task
        error = f"slack: {describe_error(exc)}"
        report.slack = "failed: still owed"
        report.errors.append(error)
        for key in message.carried:
            acknowledge(key, lambda s: delivery_failed(s, error, now))
    else:
        report.slack = "sent"
        for key, items in message.carried.items():
            acknowledge(key, lambda s, items=items: slack_delivered(s, items, now))
