"""A sweep's results as Prometheus metrics, pushed to a Pushgateway (include/grafana/ draws them).

Encoding of `streamflow_ops_check_status` and `streamflow_ops_sweep_status`: 0 ok, 1 warning,
2 critical, 3 unknown. A `skipped` check (its connection is not defined) has no status series, since
any number in 0..3 would read as healthy or as an alarm; skipped checks are counted in
`streamflow_ops_sweep_checks{status="skipped"}`. A sweep whose checks were all skipped is unknown (3).

Each push PUTs the whole group `job=streamflow_ops_health_sweep`, so a check that disappeared from
the sweep also disappears from Prometheus instead of repeating its last value forever. The alert state
(open incidents, owed deliveries, orphans, flapping) goes to `job=streamflow_ops_alerting` every sweep, and
the nightly window's result to `job=streamflow_ops_maintenance`. include/prometheus/streamflow_ops_rules.yml
reads these groups (tests/monitoring holds every metric a rule reads to one a real sweep or window pushes).
A refused push raises: the pushing task fails with the reason and is retried.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import Iterable

from airflow.sdk.exceptions import AirflowException

from streamflow_ops.alerting.delivery import configured_channels
from streamflow_ops.alerting.state import AlertState
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.results import CheckResult, Status, describe_error, worst
from streamflow_ops.sqlfiles import dict_rows

JOB = "streamflow_ops_health_sweep"
ALERT_JOB = "streamflow_ops_alerting"
WINDOW_JOB = "streamflow_ops_maintenance"
CHANNELS = ("pagerduty", "slack")
STATUS_CODE = {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    """Label value escaping of the text exposition format: backslash, double quote, line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{escape_label(value)}"' for key, value in labels.items()) + "}"


def _family(name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {_number(value)}" for labels, value in samples]
    return lines


def _worst_per_series(results: Iterable[CheckResult]) -> list[CheckResult]:
    """One result per (check, subject): a duplicate series would make the Pushgateway refuse the push."""
    chosen: dict[tuple[str, str], CheckResult] = {}
    for result in results:
        key = (result.check_name, result.subject)
        if key not in chosen or result.status.severity > chosen[key].status.severity:
            chosen[key] = result
    return [chosen[key] for key in sorted(chosen)]


def render_metrics(results: list[CheckResult], duration_s: float, finished_at: float) -> str:
    """The Prometheus text exposition of one sweep (pure: no clock, no I/O)."""
    series = _worst_per_series(results)
    rated = [r for r in series if r.status is not Status.SKIPPED]
    overall = worst(r.status for r in rated)
    counts = Counter(r.status for r in series)
    lines = _family("streamflow_ops_check_status",
                    "Check status: 0 ok, 1 warning, 2 critical, 3 unknown (probe failed). Skipped checks are absent.",
                    ((_labels(check=r.check_name, subject=r.subject), STATUS_CODE[r.status]) for r in rated))
    lines += _family("streamflow_ops_check_value", "The measured value a check compared with its thresholds.",
                     ((_labels(check=r.check_name, subject=r.subject), r.value) for r in rated
                      if r.value is not None))
    lines += _family("streamflow_ops_sweep_status",
                     "Worst status of the sweep: 0 ok, 1 warning, 2 critical, 3 unknown (also: nothing checked).",
                     [("", STATUS_CODE[overall])])
    lines += _family("streamflow_ops_sweep_checks", "Checks of the sweep by status.",
                     ((_labels(status=status.value), counts[status]) for status in Status))
    lines += _family("streamflow_ops_sweep_duration_seconds", "Wall time of the sweep.", [("", duration_s)])
    lines += _family("streamflow_ops_sweep_last_success_timestamp_seconds",
                     "Unix time at which the last sweep completed and pushed its metrics.", [("", finished_at)])
    return "\n".join(lines) + "\n"


def owed_deliveries(states: Iterable[AlertState], configured: Iterable[str]) -> dict[str, int]:
    """Checks with a notification still owed, per channel; a channel that is not configured is owed nothing
    (0), whatever a row still holds: it can never be delivered, so it must not page as undelivered (pure)."""
    configured = set(configured)
    owed = Counter()
    for s in states:
        owed["pagerduty"] += bool(s.pending_page)
        owed["slack"] += bool(s.pending_slack)
    return {channel: owed[channel] if channel in configured else 0 for channel in CHANNELS}


def render_alert_metrics(states: Iterable[AlertState], configured: Iterable[str] = CHANNELS) -> str:
    """What people are owed and what is open, from ops.alert_state (pure). `configured`: the channels whose
    connection is defined; `streamflow_ops_alert_owed_deliveries` is 0 for the others."""
    states = list(states)
    owed = owed_deliveries(states, configured)
    lines = _family("streamflow_ops_alert_open_incidents",
                    "PagerDuty incidents this package opened and has not resolved.",
                    [("", sum(s.incident_open for s in states))])
    lines += _family("streamflow_ops_alert_owed_deliveries",
                     "Checks with a notification still owed after a failed or impossible delivery, by channel.",
                     ((_labels(channel=channel), owed[channel]) for channel in CHANNELS))
    lines += _family("streamflow_ops_alert_orphans",
                     "Problems whose check is no longer configured (skipped): close their incidents by hand.",
                     [("", sum(s.orphan for s in states))])
    lines += _family("streamflow_ops_alert_flapping", "Checks currently damped as flapping (not paged).",
                     [("", sum(s.flapping for s in states))])
    return "\n".join(lines) + "\n"


def render_window_metrics(steps: list[CheckResult], durations: dict[str, float], window_duration_s: float,
                          finished_at: float, succeeded: bool) -> str:
    """The nightly window's result (pure): per-step status and duration, and, only when the window
    succeeded, `streamflow_ops_window_last_success_timestamp_seconds` (StreamFlowOpsWindowMissed reads it).
    A step is named by its check without the `maintenance.` prefix; a skipped step has no status series."""
    by_step: dict[str, Status] = {}
    for result in steps:
        step = result.check_name.removeprefix("maintenance.")
        if result.status is not Status.SKIPPED:
            by_step[step] = worst([by_step.get(step, Status.OK), result.status])
    lines = _family("streamflow_ops_window_step_status",
                    "Worst status of each step of the last window: 0 ok, 1 warning, 2 critical, 3 unknown.",
                    ((_labels(step=step), STATUS_CODE[status]) for step, status in sorted(by_step.items())))
    lines += _family("streamflow_ops_window_step_duration_seconds",
                     "Wall time of each step of the last window (its audit rows, first start to last end).",
                     ((_labels(step=step), seconds) for step, seconds in sorted(durations.items())))
    lines += _family("streamflow_ops_window_duration_seconds", "Wall time of the last window up to its report.",
                     [("", window_duration_s)])
    lines += _family("streamflow_ops_window_last_run_timestamp_seconds",
                     "Unix time at which the last window (successful or not) reported.", [("", finished_at)])
    if succeeded:
        lines += _family("streamflow_ops_window_last_success_timestamp_seconds",
                         "Unix time at which the last successful window reported.", [("", finished_at)])
    return "\n".join(lines) + "\n"


class PushRefused(AirflowException):
    """The Pushgateway answered with an error; the message carries its answer."""


def _push(config: StreamflowOpsConfig, job: str, body: str, method: str = "PUT") -> str:
    """PUT the whole group `job` (POST: replace only the metric names in `body`) when the Pushgateway
    connection is defined; returns a one-line outcome.

    A refused or failed push raises (HttpHook checks the response), so the calling task retries it and
    the failure shows instead of a dashboard that silently stops moving.
    """
    from airflow.providers.http.hooks.http import HttpHook

    conn_id = config.monitoring.pushgateway_conn_id
    if not connection_defined(conn_id):
        return f"metrics not pushed: Airflow connection '{conn_id}' is not defined"
    hook = HttpHook(method=method, http_conn_id=conn_id)
    response = hook.run(f"/metrics/job/{job}", data=body.encode(), headers={"Content-Type": CONTENT_TYPE},
                        extra_options={"timeout": config.monitoring.request_timeout_s, "check_response": False})
    if not response.ok:  # the Pushgateway says why (e.g. "inconsistent with previously collected metrics")
        raise PushRefused(f"Pushgateway '{conn_id}' refused the {method} of job {job}: HTTP {response.status_code} "
                          f"{response.reason}: {' '.join(response.text.split())[:500]}")
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return f"metrics pushed: {series} series to '{conn_id}' (job {job})"


def push_sweep_metrics(config: StreamflowOpsConfig, results: list[CheckResult], duration_s: float) -> str:
    """The sweep's check metrics (group JOB)."""
    return _push(config, JOB, render_metrics(results, duration_s, time.time()))


def push_alert_metrics(config: StreamflowOpsConfig, states: list[AlertState]) -> str:
    """The alert state's metrics, in their own group (ALERT_JOB) so that neither push erases the other.
    Owed deliveries count only for the channels whose connection is defined."""
    return _push(config, ALERT_JOB, render_alert_metrics(states, configured_channels(config.alerting)))


def window_step_durations(config: StreamflowOpsConfig, dag_id: str, run_id: str) -> dict[str, float]:
    """Seconds per step of one window run, from its ops.maintenance_audit rows (steps without rows: none)."""
    with warehouse_connection(config.warehouse) as conn:
        rows = dict_rows(conn, "window_step_durations.sql", {"dag_id": dag_id, "run_id": run_id},
                         ops=config.warehouse.ops_schema)
    return {row["step"]: row["seconds"] for row in rows}


def push_window_metrics(config: StreamflowOpsConfig, steps: list[CheckResult], context) -> str:
    """The window's result to WINDOW_JOB, from its report step (`context`: the task's; its dag_run and params).

    A successful window (no critical step) PUTs the whole group; a failed one POSTs its step metrics only,
    so the last success time stays as it was. A dry run maintained nothing: it pushes nothing. Durations
    that cannot be read (PostgreSQL down) are left out and said; a refused push raises."""
    if context["params"].get("dry_run"):
        return "metrics not pushed: a dry run is not a maintenance window"
    dag_run = context["dag_run"]
    succeeded = not any(r.status is Status.CRITICAL for r in steps)
    note = ""
    try:
        durations = window_step_durations(config, dag_run.dag_id, dag_run.run_id)
    except Exception as exc:  # noqa: BLE001 - the statuses still go out; the report says what is missing
        durations, note = {}, f" (step durations unavailable: {describe_error(exc)})"
    now = time.time()
    started = dag_run.start_date.timestamp() if dag_run.start_date else now
    body = render_window_metrics(steps, durations, max(0.0, now - started), now, succeeded)
    return _push(config, WINDOW_JOB, body, method="PUT" if succeeded else "POST") + note
