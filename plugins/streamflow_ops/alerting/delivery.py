"""Deliver what ops.alert_state says is owed: PagerDuty first (a failed page is then told in Slack), then
one Slack message. Each acknowledgement is written back at once through `save`, so a task retry (or the
next sweep) sends only what is still owed and never re-posts what Slack already accepted.

A channel whose connection is not defined keeps its items owed (visible in the report and the metric):
defining the connection later tells people the current state, folded, not a backlog.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from streamflow_ops.alerting import pagerduty, slack
from streamflow_ops.alerting.state import CHANGE, AlertState, Key, delivery_failed, page_delivered, slack_delivered
from streamflow_ops.config import AlertingConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.results import Status, describe_error


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
            notes: Sequence[str] = ()) -> tuple[DeliveryReport, dict[Key, AlertState]]:
    """Send every owed item; returns the report and the rows as they stand after the acknowledgements."""
    report = DeliveryReport(dry_run=dry_run)
    states = {s.key: s for s in owed}
    notes = list(notes)

    def keep(state: AlertState) -> None:
        states[state.key] = state
        if save is not None:
            save(state)

    pd_configured = connection_defined(alerting.pagerduty_conn_id)
    for state in [s for s in owed if s.pending_page]:
        event = pagerduty.build_event(state, sweep_id)
        outcome = {"action": event["action"], "dedup_key": event["dedup_key"]}
        if dry_run:
            outcome["outcome"] = "dry run: not sent"
        elif not pd_configured:
            outcome["outcome"] = f"not configured (connection {alerting.pagerduty_conn_id} not defined): still owed"
        else:
            try:
                pagerduty.send(alerting.pagerduty_conn_id, event, alerting.request_timeout_s)
            except Exception as exc:  # noqa: BLE001 - stays owed, reported, and fails the task
                error = f"pagerduty {event['action']} {event['dedup_key']}: {describe_error(exc)}"
                outcome["outcome"] = "failed: still owed"
                report.errors.append(error)
                notes.append(f"PagerDuty delivery failed ({error}); it is retried, but page the on-call by hand "
                             f"if this is urgent")
                keep(delivery_failed(state, error, now))
            else:
                outcome["outcome"] = "sent"
                keep(page_delivered(state, event["action"], now))
        report.pagerduty.append(outcome)

    message = slack.build_message([s for s in states.values() if s.pending_slack], sweep_status, counts, sweep_id,
                                  notes)
    if message is None:
        return report, states
    _describe_items(report, message, states)
    if dry_run:
        report.slack = "dry run: not sent"
    elif not connection_defined(alerting.slack_conn_id):
        report.slack = f"not configured (connection {alerting.slack_conn_id} not defined): still owed"
    else:
        try:
            slack.send(alerting.slack_conn_id, message, alerting.request_timeout_s)
        except Exception as exc:  # noqa: BLE001 - stays owed, reported, and fails the task
            error = f"slack: {describe_error(exc)}"
            report.slack = "failed: still owed"
            report.errors.append(error)
            for key in message.carried:
                keep(delivery_failed(states[key], error, now))
        else:
            report.slack = "sent"
            for key, items in message.carried.items():
                keep(slack_delivered(states[key], items, now))
    return report, states
