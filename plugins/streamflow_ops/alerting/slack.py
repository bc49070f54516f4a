"""The Block Kit message for what is owed to people (pure), sent through SlackWebhookHook; and the weekly
review's chart upload through SlackHook (the package's only two Slack paths).

The message says only what Slack was not told yet: changes (from what Slack last acknowledged to the
answered status), probes not measured for sweeps in a row, flapping checks with their history, and
orphaned incidents with the dedup key to close them by hand. `build_message` returns, with the message,
which owed items of which rows it carries: exactly those are acknowledged when Slack answers 200.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from streamflow_ops.alerting.state import (CHANGE, FLAPPING, NOT_MEASURED, ORPHAN, AlertState, Key, dedup_key,
                                           flips)
from streamflow_ops.results import Status

_ICON = {Status.CRITICAL: ":red_circle:", Status.WARNING: ":large_orange_circle:", Status.OK: ":large_green_circle:",
         Status.UNKNOWN: ":grey_question:", Status.SKIPPED: ":white_circle:"}
MAX_BLOCKS = 50  # Slack's limit per message
MAX_SECTION_CHARS = 2900  # and 3,000 characters per section
_FRAME_BLOCKS = 4  # header, summary, divider, context


@dataclass
class SlackMessage:
    text: str
    blocks: list[dict]
    carried: dict[Key, tuple[str, ...]] = field(default_factory=dict)  # what this message tells, per row

    def to_dict(self) -> dict:
        return {"text": self.text, "blocks": self.blocks}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _label(state: AlertState) -> str:
    return f"*{state.check_name}*" + (f" `{state.subject}`" if state.subject else "")


def _section(text: str) -> dict:
    text = text if len(text) <= MAX_SECTION_CHARS else text[:MAX_SECTION_CHARS - 3] + "..."
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def diagnosis_lines(details: dict) -> list[str]:
    """The diagnosis another step put in a result's details: findings, what was not gathered, the fix."""
    diagnosis = details.get("diagnosis")
    if not isinstance(diagnosis, dict):
        return []
    lines = [f"*Diagnosis* ({diagnosis.get('alert') or 'runbook'}):"]
    lines += [f"• {finding}" for finding in diagnosis.get("findings") or []]
    if diagnosis.get("not_gathered"):
        lines.append("_not gathered: " + "; ".join(diagnosis["not_gathered"]) + "_")
    remediation = diagnosis.get("remediation")
    if isinstance(remediation, dict) and remediation.get("url"):
        lines.append(f"Fix: <{remediation['url']}|trigger {remediation.get('dag_id', 'the remediation')}>")
    return lines


def change_text(state: AlertState) -> str:
    """One change: what, from/to, the message, value, threshold, runbook, diagnosis, who pages."""
    r = state.result
    was = state.notified_status.value if state.notified_status else "new"
    lines = [f"{_ICON[state.status]} {_label(state)}: {state.change_kind.value} ({was} -> {state.status.value})",
             r.message]
    facts = [f"value: {r.value:g}"] if r.value is not None else []
    facts += [f"threshold: {r.threshold}"] if r.threshold else []
    if facts:
        lines.append(" | ".join(facts))
    if r.runbook and state.status is not Status.OK:
        lines.append(f"_{r.runbook}_")
    if state.deferred_to:
        lines.append(f":bell: Alertmanager already fires *{state.deferred_to}*: it pages for this, so PagerDuty is "
                     f"not paged a second time by this sweep.")
    if state.status in (Status.WARNING, Status.CRITICAL):
        lines += diagnosis_lines(r.details)
    return "\n".join(lines)


def flapping_text(state: AlertState) -> str:
    history = " -> ".join(state.recent)
    return (f":repeat: {_label(state)} is *flapping*: {flips(state.recent)} changes in its last "
            f"{len(state.recent)} sweeps ({history}). No further change lines or pages until it holds one status "
            f"for {len(state.recent)} sweeps; now {state.status.value}.")


def not_measured_section(states: Sequence[AlertState]) -> tuple[str, list[AlertState]]:
    """One section for every subject not measured sweeps in a row, and the rows that fit in it."""
    text = ":grey_question: *Not measured* (probe failing sweeps in a row; the last known status is kept):"
    shown = []
    for s in states:
        last = s.status.value if s.status else "never measured"
        line = f"\n• {_label(s)} (last known: {last}): {s.unmeasured_reason or 'no answer'}"[:500]
        if len(text) + len(line) > MAX_SECTION_CHARS:
            break
        text += line
        shown.append(s)
    return text, shown


def orphan_text(state: AlertState) -> str:
    incident = (f"PagerDuty incident `{dedup_key(state.check_name, state.subject)}` is still open: resolve it by "
                f"hand in PagerDuty" if state.incident_open else "no PagerDuty incident is open")
    was = state.status.value if state.status else "unknown"
    return (f":ghost: {_label(state)} was {was} and is no longer checked (skipped: its connection is not defined). "
            f"{incident}, or define the connection again.")


def summary_line(changes: Sequence[AlertState], others: int, sweep_status: Status, counts: dict[str, int]) -> str:
    kinds = Counter(s.change_kind for s in changes)
    parts = [f"{n} {kind.value}{'' if n == 1 else 's'}" for kind, n in kinds.items()]
    told = f"*{_plural(len(changes), 'change')}* since people were last told" + (f" ({', '.join(parts)})" if parts else "")
    if others:
        told += f", {_plural(others, 'notice')}"
    problems = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "warning", "unknown"))
    return f"{told}. Platform is *{sweep_status.value.upper()}*: {problems}."


def build_message(owed: Sequence[AlertState], sweep_status: Status, counts: dict[str, int], sweep_id: str,
                  notes: Sequence[str] = ()) -> SlackMessage | None:
    """The message for every owed Slack item that fits in Slack's limits (the rest stays owed); None if nothing."""
    worst_first = sorted(owed, key=lambda s: (-(s.status.severity if s.status else 0), s.check_name, s.subject))
    changes = [s for s in worst_first if s.change_kind]
    sections: list[tuple[dict, dict[Key, tuple[str, ...]]]] = []
    sections += [(_section(change_text(s)), {s.key: (CHANGE,)}) for s in changes]
    sections += [(_section(flapping_text(s)), {s.key: (FLAPPING,)}) for s in worst_first if FLAPPING in s.pending_slack]
    sections += [(_section(orphan_text(s)), {s.key: (ORPHAN,)}) for s in worst_first if ORPHAN in s.pending_slack]
    blind = [s for s in worst_first if NOT_MEASURED in s.pending_slack]
    if blind:
        text, shown = not_measured_section(blind)
        sections.append((_section(text), {s.key: (NOT_MEASURED,) for s in shown}))
    if not sections:
        return None
    # The notes share one section (there may be one per failed page): the owed items always get the room.
    room = MAX_BLOCKS - _FRAME_BLOCKS - (1 if notes else 0) - 1  # one block kept for "more follow"
    kept, later = sections[:room], sections[room:]
    carried: dict[Key, tuple[str, ...]] = {}
    for _, items in kept:
        for key, what in items.items():
            carried[key] = (*carried.get(key, ()), *what)
    told_changes = [s for s in changes if CHANGE in carried.get(s.key, ())]
    summary = summary_line(told_changes, len(kept) - len(told_changes), sweep_status, counts)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": f"StreamFlow health: {sweep_status.value.upper()}"}},
              _section(summary), {"type": "divider"}, *(block for block, _ in kept)]
    if later:
        blocks.append(_section(f"... and {len(later)} more: still owed, the next sweep sends them (the alert "
                               f"task's log lists them)"))
    if notes:
        blocks.append(_section("\n".join(f":warning: {note}" for note in notes)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"platform_health_sweep `{sweep_id}`"}]})
    return SlackMessage(summary.replace("*", ""), blocks, carried)


def send(conn_id: str, message: SlackMessage, timeout_s: float) -> None:
    """Post through the provider hook; a non-200 answer raises (the hook checks the response). The package's
    one Slack sender: sweep alerts, the window report and remediation reports all post through here; a
    message without blocks is sent as text alone."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=int(timeout_s)).send(text=message.text,
                                                                                 blocks=message.blocks or None)


# The weekly review's charts: a webhook cannot carry files, so they go through the Slack API's file upload
# (SlackHook.send_file_v2: files.getUploadURLExternal, the upload, files.completeUploadExternal) with the
# optional bot-token connection `review.slack_api_conn_id`.
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


def upload_charts(conn_id: str, channel: str, files: dict[Path, str], comment: str, timeout_s: float) -> list[str]:
    """Upload every chart in one message to `channel` (a name such as #streamflow-alerts, resolved to its
    id with conversations.list, or an id); returns the Slack file ids. A refusal raises SlackApiError."""
    from airflow.providers.slack.hooks.slack import SlackHook

    hook = SlackHook(slack_conn_id=conn_id, timeout=int(timeout_s))
    channel_id = channel if CHANNEL_ID.match(channel) else hook.get_channel_id(channel.lstrip("#"))
    response = hook.send_file_v2(channel_id=channel_id, initial_comment=comment,
                                 file_uploads=[{"file": str(path), "filename": path.name, "title": title}
                                               for path, title in files.items()])
    return [f["id"] for f in response.get("files") or []]
