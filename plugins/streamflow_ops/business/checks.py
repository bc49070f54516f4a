"""Business checks on silver data, wired: the fraud rate of the last hour and how fresh the newest row is.

Evaluators (business/evaluators.py) are pure; the probes (business/probes.py) read through the warehouse
connection with identifiers from the config.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from streamflow_ops.business.evaluators import (
    FRAUD_RATE,
    PIPELINE_LATENCY,
    evaluate_fraud_rate,
    evaluate_pipeline_latency,
)
from streamflow_ops.business.probes import fraud_counts, latest_backlog, newest_row
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult
from streamflow_ops.timeutil import utcnow


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    return run_guarded(config, FAMILY.specs, lambda: _run(config, utcnow(now)))


def _run(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    wh, cfg = config.warehouse, config.business
    timeout_s = config.postgres_checks.statement_timeout_s

    def fraud_rate() -> CheckResult:
        since = now - timedelta(minutes=cfg.fraud_rate_window_minutes)
        with warehouse_connection(wh, statement_timeout_s=timeout_s) as conn:
            total, flagged = fraud_counts(conn, config, since, now)
        return evaluate_fraud_rate(total, flagged, cfg)

    def pipeline_latency() -> CheckResult:
        with warehouse_connection(wh, statement_timeout_s=timeout_s) as conn:
            newest = newest_row(conn, config)
            stale = newest is not None and (now - newest).total_seconds() >= cfg.pipeline_latency_warning_s
            backlog = latest_backlog(conn, config, newest, now) if stale else None
        return evaluate_pipeline_latency(newest, now, cfg, backlog)

    return FRAUD_RATE.guarded(fraud_rate) + PIPELINE_LATENCY.guarded(pipeline_latency)


FAMILY = register(Family("business", run_checks))

