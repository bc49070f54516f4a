"""A sweep's results as Prometheus metrics, pushed to a Pushgateway (include/grafana/ draws them).

Encoding of `streamflow_ops_check_status` and `streamflow_ops_sweep_status`: 0 ok, 1 warning,
2 critical, 3 unknown. A `skipped` check (its connection is not defined) has no status series, since
any number in 0..3 would read as healthy or as an alarm; skipped checks are counted in
`streamflow_ops_sweep_checks{status="skipped"}`. A sweep whose checks were all skipped is unknown (3).

Each push PUTs the whole group `job=streamflow_ops_health_sweep`, so a check that disappeared from
the sweep also disappears from Prometheus instead of repeating its last value forever. The alert task
pushes the alert state (open incidents, owed deliveries, orphans, flapping) to `job=streamflow_ops_alerting`.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import Iterable

from streamflow_ops.alerting.state import AlertState
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.results import CheckResult, Status, worst

JOB = "streamflow_ops_health_sweep"
ALERT_JOB = "streamflow_ops_alerting"
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


def render_alert_metrics(states: Iterable[AlertState]) -> str:
    """What people are owed and what is open, from ops.alert_state (pure)."""
    states = list(states)
    owed = Counter()
    for s in states:
        owed["pagerduty"] += bool(s.pending_page)
        owed["slack"] += bool(s.pending_slack)
    lines = _family("streamflow_ops_alert_open_incidents",
                    "PagerDuty incidents this package opened and has not resolved.",
                    [("", sum(s.incident_open for s in states))])
    lines += _family("streamflow_ops_alert_owed_deliveries",
                     "Checks with a notification still owed after a failed or impossible delivery, by channel.",
                     ((_labels(channel=channel), owed[channel]) for channel in ("pagerduty", "slack")))
    lines += _family("streamflow_ops_alert_orphans",
                     "Problems whose check is no longer configured (skipped): close their incidents by hand.",
                     [("", sum(s.orphan for s in states))])
    lines += _family("streamflow_ops_alert_flapping", "Checks currently damped as flapping (not paged).",
                     [("", sum(s.flapping for s in states))])
    return "\n".join(lines) + "\n"


def _push(config: StreamflowOpsConfig, job: str, body: str) -> str:
    """PUT the whole group `job` when the Pushgateway connection is defined; returns a one-line outcome.

    A refused or failed push raises (HttpHook checks the response), so the calling task retries it and
    the failure shows instead of a dashboard that silently stops moving.
    """
    from airflow.providers.http.hooks.http import HttpHook

    conn_id = config.monitoring.pushgateway_conn_id
    if not connection_defined(conn_id):
        return f"metrics not pushed: Airflow connection '{conn_id}' is not defined"
    hook = HttpHook(method="PUT", http_conn_id=conn_id)
    hook.run(f"/metrics/job/{job}", data=body.encode(), headers={"Content-Type": CONTENT_TYPE},
             extra_options={"timeout": config.monitoring.request_timeout_s})
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return f"metrics pushed: {series} series to '{conn_id}' (job {job})"


def push_sweep_metrics(config: StreamflowOpsConfig, results: list[CheckResult], duration_s: float) -> str:
    """The sweep's check metrics (group JOB)."""
    return _push(config, JOB, render_metrics(results, duration_s, time.time()))


def push_alert_metrics(config: StreamflowOpsConfig, states: list[AlertState]) -> str:
    """The alert state's metrics, in their own group (ALERT_JOB) so that neither push erases the other."""
    return _push(config, ALERT_JOB, render_alert_metrics(states))
