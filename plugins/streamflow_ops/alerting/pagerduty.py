"""PagerDuty Events API v2 (critical only): trigger when a check turns critical, resolve when it clears.

Sent through the pagerduty provider's PagerdutyEventsAsyncHook, which posts `{base_url}/v2/enqueue`.
Its base URL defaults to https://events.pagerduty.com; when the `pagerduty_streamflow` connection has a
host with a scheme (`https://events.eu.pagerduty.com` for the EU service region, an egress relay, or
a local test server), that host is the base URL. The synchronous PagerdutyEventsHook cannot do this:
its client only accepts the fixed https://events.pagerduty.com endpoint.
"""
from __future__ import annotations

import asyncio

from streamflow_ops.alerting.changes import Change, dedup_key

SOURCE = "streamflow-ops platform_health_sweep"


def build_event(change: Change, sweep_id: str) -> dict:
    """send_event keyword arguments for one change (pure)."""
    r = change.result
    subject = f" [{r.subject}]" if r.subject else ""
    return {
        "action": change.page_action,
        "dedup_key": dedup_key(r.check_name, r.subject),
        "summary": f"{r.check_name}{subject}: {r.message}"[:1024],  # Events v2 limit
        "severity": "critical",
        "source": SOURCE,
        "component": r.component,
        "group": "streamflow",
        "class_type": r.check_name,
        "custom_details": {"status": r.status.value, "previous": change.previous.value if change.previous else None,
                           "value": r.value, "threshold": r.threshold, "runbook": r.runbook, "sweep_id": sweep_id},
    }


def send(conn_id: str, event: dict, timeout_s: float) -> str:
    """Enqueue one event; returns PagerDuty's dedup key. Raises on any delivery failure."""
    from airflow.providers.pagerduty.hooks.pagerduty_events import PagerdutyEventsAsyncHook
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.password:
        raise ValueError(f"connection {conn_id} has no integration (routing) key in its password field")
    hook = PagerdutyEventsAsyncHook(integration_key=conn.password)
    if conn.host and "://" in conn.host:
        hook.base_url = conn.host.rstrip("/")
    return asyncio.run(asyncio.wait_for(hook.send_event(**event), timeout=timeout_s))
