"""The Slack Block Kit message for a sweep's changes (pure), sent through SlackWebhookHook."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from streamflow_ops.alerting.changes import Change, ChangeKind
from streamflow_ops.results import Status

_ICON = {Status.CRITICAL: ":red_circle:", Status.WARNING: ":large_orange_circle:", Status.OK: ":large_green_circle:",
         Status.UNKNOWN: ":grey_question:", Status.SKIPPED: ":white_circle:"}
MAX_CHANGE_BLOCKS = 40  # Slack allows 50 blocks per message
MAX_SECTION_CHARS = 2900  # and 3,000 characters per section


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(changes: Sequence[Change], sweep_status: Status, counts: dict[str, int]) -> str:
    kinds = Counter(c.kind for c in changes)
    parts = [f"{n} {kind.value}{'' if n == 1 or kind is ChangeKind.BLIND else 's'}" for kind, n in kinds.items()]
    problems = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "warning", "unknown"))
    return (f"*{_plural(len(changes), 'change')}* since the last sweep ({', '.join(parts)}). "
            f"Platform is *{sweep_status.value.upper()}*: {problems}.")


def change_line(change: Change) -> str:
    """One changed check: what, from/to, value, threshold and the runbook step."""
    r = change.result
    subject = f" `{r.subject}`" if r.subject else ""
    was = change.previous.value if change.previous else "new"
    lines = [f"{_ICON[r.status]} *{r.check_name}*{subject}: {change.kind.value} ({was} -> {r.status.value})",
             r.message]
    facts = []
    if r.value is not None:
        facts.append(f"value: {r.value:g}")
    if r.threshold:
        facts.append(f"threshold: {r.threshold}")
    if facts:
        lines.append(" | ".join(facts))
    if r.runbook and r.status is not Status.OK:
        lines.append(f"_{r.runbook}_")
    return "\n".join(lines)[:MAX_SECTION_CHARS]


def build_message(changes: Sequence[Change], sweep_status: Status, counts: dict[str, int], sweep_id: str,
                  notes: Sequence[str] = ()) -> dict:
    """{text, blocks} for chat.postMessage / incoming webhooks; text is the notification fallback."""
    summary = summary_line(changes, sweep_status, counts)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"StreamFlow health: {sweep_status.value.upper()}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "divider"},
    ]
    shown = changes[:MAX_CHANGE_BLOCKS]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": change_line(c)}} for c in shown]
    if len(changes) > len(shown):
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"... and {len(changes) - len(shown)} more: see the sweep report"}})
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {note}"[:MAX_SECTION_CHARS]}}
               for note in notes]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"platform_health_sweep `{sweep_id}`"}]})
    return {"text": summary.replace("*", ""), "blocks": blocks}


def send(conn_id: str, message: dict, timeout_s: int) -> None:
    """Post through the provider hook; a non-200 answer raises (the hook checks the response)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=timeout_s).send(
        text=message["text"], blocks=message["blocks"])
