"""Deliver a sweep's changes: PagerDuty first (its failures are then told in Slack), then Slack.

Nothing fails silently: every outcome is in the returned report, and the caller fails the task
(so Airflow retries it) when anything could not be delivered.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from streamflow_ops.alerting import pagerduty, slack
from streamflow_ops.alerting.changes import Change
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.results import Status

TIMEOUT_S = 20


@dataclass
class DeliveryReport:
    dry_run: bool
    changes: int
    slack: str = "nothing to send"
    pagerduty: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lines = [f"alerts: {self.changes} change(s); slack: {self.slack}"
                 + (" (dry run: nothing sent)" if self.dry_run else "")]
        lines += [f"  pagerduty {e['action']} {e['dedup_key']}: {e['outcome']}" for e in self.pagerduty]
        lines += [f"  DELIVERY FAILED: {err}" for err in self.errors]
        return "\n".join(lines)


def deliver(config: StreamflowOpsConfig, changes: Sequence[Change], sweep_status: Status,
            counts: dict[str, int], sweep_id: str, dry_run: bool, notes: Sequence[str] = ()) -> DeliveryReport:
    report = DeliveryReport(dry_run=dry_run, changes=len(changes))
    alerting = config.alerting
    notes = list(notes)
    pages = [pagerduty.build_event(c, sweep_id) for c in changes if c.page_action]
    pd_configured = connection_defined(alerting.pagerduty_conn_id)
    for event in pages:
        outcome = {"action": event["action"], "dedup_key": event["dedup_key"]}
        if dry_run:
            outcome["outcome"] = "dry run: not sent"
        elif not pd_configured:
            outcome["outcome"] = f"not configured (connection {alerting.pagerduty_conn_id} not defined)"
        else:
            try:
                pagerduty.send(alerting.pagerduty_conn_id, event, TIMEOUT_S)
                outcome["outcome"] = "sent"
            except Exception as exc:  # noqa: BLE001 - reported below and fails the task
                error = f"pagerduty {event['action']} {event['dedup_key']}: {type(exc).__name__}: {exc}"[:500]
                outcome["outcome"] = "failed"
                report.errors.append(error)
                notes.append(f"PagerDuty delivery failed, page the on-call by hand: {error}")
        report.pagerduty.append(outcome)
    if changes or notes:
        message = slack.build_message(changes, sweep_status, counts, sweep_id, notes)
        if dry_run:
            report.slack = "dry run: not sent"
        elif not connection_defined(alerting.slack_conn_id):
            report.slack = f"not configured (connection {alerting.slack_conn_id} not defined)"
        else:
            try:
                slack.send(alerting.slack_conn_id, message, TIMEOUT_S)
                report.slack = "sent"
            except Exception as exc:  # noqa: BLE001 - reported and fails the task
                report.slack = "failed"
                report.errors.append(f"slack: {type(exc).__name__}: {exc}"[:500])
    return report
