"""The nightly window's Deadline Alert callback, run by the triggerer when the window is overdue."""
from __future__ import annotations

from typing import Any


async def notify_slack_overdue(context: Any = None, **notifier_kwargs: Any) -> None:
    """Post the overdue message with SlackWebhookNotifier (kwargs: slack_webhook_conn_id, text, ...).

    Why a function and not the notifier class in the DAG file: importing the Slack notifier pulls slack_sdk
    and aiohttp, ~0.25 s of every parse of dags/maintenance_tasks.py (bench/results/parse.md); here it is
    imported in the triggerer, only when a deadline is missed. AsyncCallback stores this function's path.
    """
    # parse time: slack_sdk and aiohttp, ~0.25 s of dags/maintenance_tasks.py (measured, see above)
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    await SlackWebhookNotifier(**notifier_kwargs, context=context)
