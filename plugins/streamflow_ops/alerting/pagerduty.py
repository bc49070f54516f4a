"""PagerDuty Events API v2 (critical only): trigger when a check turns critical, resolve when it is ok again.

Sent through the pagerduty provider's PagerdutyEventsAsyncHook, which posts `{base_url}/v2/enqueue`.
Its base URL defaults to https://events.pagerduty.com; when the `pagerduty_streamflow` connection has a
host with a scheme (`https://events.eu.pagerduty.com` for the EU service region, an egress relay, or
a local test server), that host is the base URL. The synchronous PagerdutyEventsHook cannot do this:
its client only accepts the fixed https://events.pagerduty.com endpoint.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Sequence

from streamflow_ops.alerting.state import AlertState, dedup_key

SOURCE = "streamflow-ops platform_health_sweep"


def build_event(state: AlertState, sweep_id: str) -> dict:
    """send_event keyword arguments for the page a row owes (pure); the diagnosis goes in whole."""
    r = state.result
    subject = f" [{r.subject}]" if r.subject else ""
    details = {"status": state.status.value if state.status else None,
               "told_before": state.notified_status.value if state.notified_status else None,
               "value": r.value, "threshold": r.threshold, "runbook": r.runbook, "sweep_id": sweep_id,
               "since": state.status_since.isoformat() if state.status_since else None}
    if isinstance(r.details.get("diagnosis"), dict):
        details["diagnosis"] = r.details["diagnosis"]
    return {
        "action": state.pending_page,
        "dedup_key": dedup_key(r.check_name, r.subject),
        "summary": f"{r.check_name}{subject}: {r.message}"[:1024],  # Events v2 limit
        "severity": "critical",
        "source": SOURCE,
        "component": r.component,
        "group": "streamflow",
        "class_type": r.check_name,
        "custom_details": details,
    }


def send_all(conn_id: str, events: Sequence[dict], timeout_s: float, budget_s: float,
             done: Callable[[dict, BaseException | None], None]) -> None:
    """Enqueue every event at once (not one after the other), each within `timeout_s` and all within
    `budget_s`; `done(event, error)` is called as each one is accepted (error None) or fails, so that a
    hanging PagerDuty costs the task `budget_s` at most and an accepted page is acknowledged at once."""
    from airflow.providers.pagerduty.hooks.pagerduty_events import PagerdutyEventsAsyncHook
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.password:
        error = ValueError(f"connection {conn_id} has no integration (routing) key in its password field")
        for event in events:
            done(event, error)
        return
    hook = PagerdutyEventsAsyncHook(integration_key=conn.password)
    # One request per attempt: what fails stays owed in ops.alert_state and the task retry or the next
    # sweep sends it (the hook's own three tries would hold the task and blur what was delivered).
    hook.retry_limit = 1
    if conn.host and "://" in conn.host:
        hook.base_url = conn.host.rstrip("/")

    async def one(event: dict) -> None:
        try:
            await asyncio.wait_for(hook.send_event(**event), timeout=min(timeout_s, budget_s))
        except Exception as exc:  # noqa: BLE001 - reported per event; the others go on
            done(event, exc)
        else:
            done(event, None)

    async def every() -> None:
        tasks = {asyncio.ensure_future(one(event)): event for event in events}
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=budget_s)
        for task in late:
            task.cancel()
            done(tasks[task], TimeoutError(f"no answer within the PagerDuty budget of {budget_s:g} s"))

    asyncio.run(every())
