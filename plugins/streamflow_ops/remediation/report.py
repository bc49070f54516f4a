"""A remediation run's outcome in words (pure), and its post back to #streamflow-alerts."""
from __future__ import annotations

import logging
from typing import Any

from streamflow_ops.alerting import slack
from streamflow_ops.alerting.slack import MAX_SECTION_CHARS, SlackMessage
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined

log = logging.getLogger(__name__)


def build_report(remediation, params: dict[str, Any], run_id: str, planned: dict | None, refused: str | None,
                 approval: dict | None, acted: dict | None, verified: dict | None) -> dict[str, Any]:
    """outcome: refused | failed | dry_run | nothing_to_do | rejected | timed_out | done; a headline; text."""
    lines: list[str] = []
    if refused:
        outcome, headline = "refused", f"refused: {refused}"
    elif planned is None:
        outcome, headline = "failed", "could not plan (see the plan task's log); nothing done"
    elif planned["dry_run"]:
        outcome, headline = "dry_run", f"dry run: would do {len(planned['plan']['items'])} thing(s); nothing done"
    elif not planned["plan"]["items"]:
        outcome, headline = "nothing_to_do", "nothing to do"
    elif approval is None:
        outcome, headline = "failed", "the approval step did not complete; nothing done"
    elif approval["chosen_options"] != ["Approve"]:
        by = approval.get("responded_by_user")
        outcome = "rejected" if by else "timed_out"
        headline = (f"rejected by {by.get('name') or by.get('id')}" if by
                    else "not approved in time (the approval defaults to Reject)") + "; nothing done"
    elif acted is None:
        outcome, headline = "failed", "approved, but the action failed (see the act task's log and the audit row)"
    else:
        by = approval.get("responded_by_user") or {}
        outcome, headline = "done", f"done (approved by {by.get('name') or by.get('id') or 'unknown'})"
    if planned:
        lines.append(planned["plan"]["text"])
    if acted:
        lines.append(f"outcome: {', '.join(f'{k}={v}' for k, v in acted.items() if v not in (None, [], ''))}")
    if verified:
        lines += ["before -> after:", *verified["lines"]]
    elif outcome == "done":
        lines.append("verification did not run (see the verify task's log)")
    title = f"{remediation.dag_id}: {headline}"
    return {"outcome": outcome, "headline": headline, "run_id": run_id, "params": params,
            "text": "\n".join([title, *lines])}


def slack_message(report: dict[str, Any]):
    title, _, body = report["text"].partition("\n")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}}]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:MAX_SECTION_CHARS]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"run `{report['run_id']}`"}]})
    return SlackMessage(title, blocks)


def post_report(config: StreamflowOpsConfig, report: dict[str, Any]) -> str:
    """Post to Slack when its connection exists; what happened, in one line (never raises for a missing one)."""
    alerting = config.alerting
    if not connection_defined(alerting.slack_conn_id):
        return f"not posted: connection {alerting.slack_conn_id} is not defined"
    slack.send(alerting.slack_conn_id, slack_message(report), alerting.request_timeout_s)
    return f"posted to {alerting.slack_channel}"
