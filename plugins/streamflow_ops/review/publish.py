"""The weekly review's charts to Slack through the Slack provider's file upload (SlackHook.send_file_v2:
files.getUploadURLExternal, the upload, files.completeUploadExternal), with the optional bot-token
connection `review.slack_api_conn_id`. The summary itself goes through the package's one webhook sender
(alerting/slack.py `send`); a webhook cannot carry files, hence this second, optional path."""
from __future__ import annotations

import re
from pathlib import Path

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
