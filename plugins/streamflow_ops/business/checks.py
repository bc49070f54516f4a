"""Business checks on silver data: the fraud rate of the last hour and how fresh the newest row is.

Evaluators are pure; the probes read through the warehouse connection with identifiers from the config.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streamflow_ops.config import BusinessConfig, StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.postgres.connection import warehouse_connection
from streamflow_ops.results import CheckResult, Status, banded, guarded, skipped
from streamflow_ops.runbook import section
from streamflow_ops.sqlfiles import load_sql
from streamflow_ops.timeutil import utcnow

FRAUD_RATE = "business.fraud_rate"
PIPELINE_LATENCY = "business.pipeline_latency"
CHECKS = (FRAUD_RATE, PIPELINE_LATENCY)


def evaluate_fraud_rate(total: int, flagged: int, cfg: BusinessConfig) -> CheckResult:
    threshold = (f"warning > {cfg.fraud_rate_warning:.0%}, critical > {cfg.fraud_rate_critical:.0%} "
                 f"(fraud_score >= {cfg.fraud_score_threshold:g}, last {cfg.fraud_rate_window_minutes} min)")
    if total == 0:
        # No rows is not a rate of 0%: say so, and let pipeline_latency raise the stale-data alarm.
        return CheckResult(FRAUD_RATE, Status.OK, threshold=threshold, runbook=section(FRAUD_RATE),
                           details={"total": 0, "flagged": 0},
                           message=f"no silver rows in the last {cfg.fraud_rate_window_minutes} min: "
                                   f"no fraud rate to compute (see business.pipeline_latency)")
    rate = flagged / total
    status = banded(rate, cfg.fraud_rate_warning, cfg.fraud_rate_critical, inclusive=False)
    return CheckResult(FRAUD_RATE, status, value=round(rate * 100, 2), threshold=threshold,
                       runbook=section(FRAUD_RATE), details={"total": total, "flagged": flagged},
                       message=f"{rate:.1%} of the last {cfg.fraud_rate_window_minutes} min's transactions "
                               f"score >= {cfg.fraud_score_threshold:g} ({flagged:,} of {total:,})")


def evaluate_pipeline_latency(newest: datetime | None, now: datetime, cfg: BusinessConfig) -> CheckResult:
    threshold = (f"warning >= {cfg.pipeline_latency_warning_s // 60} min, "
                 f"critical > {cfg.pipeline_latency_critical_s // 60} min")
    if newest is None:
        return CheckResult(PIPELINE_LATENCY, Status.CRITICAL, threshold=threshold, runbook=section(PIPELINE_LATENCY),
                           message="silver holds no rows at all: the pipeline has never delivered")
    age_s = max(0.0, (now - newest).total_seconds())
    status = banded(age_s, cfg.pipeline_latency_warning_s, cfg.pipeline_latency_critical_s + 1)
    return CheckResult(PIPELINE_LATENCY, status, value=round(age_s, 1), threshold=threshold,
                       runbook=section(PIPELINE_LATENCY), details={"newest": newest.isoformat()},
                       message=f"newest silver row is {age_s / 60:.1f} min old ({newest:%Y-%m-%d %H:%M:%S} UTC)")


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    wh, cfg = config.warehouse, config.business
    if not connection_defined(wh.conn_id):
        return [skipped(name, wh.conn_id, section(name)) for name in CHECKS]
    now = utcnow(now)
    silver = (wh.silver_schema, wh.silver_table)
    timeout_s = config.postgres_checks.statement_timeout_s

    def fraud_rate() -> CheckResult:
        since = now - timedelta(minutes=cfg.fraud_rate_window_minutes)
        with warehouse_connection(wh, statement_timeout_s=timeout_s) as conn:
            total, flagged = conn.execute(
                load_sql("health_fraud_rate.sql", silver=silver, score=wh.fraud_score_column, time=wh.time_column),
                {"score_threshold": cfg.fraud_score_threshold, "since": since.timestamp(),
                 "until": now.timestamp()}).fetchone()
        return evaluate_fraud_rate(total, flagged, cfg)

    def pipeline_latency() -> CheckResult:
        with warehouse_connection(wh, statement_timeout_s=timeout_s) as conn:
            newest = conn.execute(load_sql("health_pipeline_latency.sql", silver=silver, time=wh.time_column)).fetchone()[0]
        return evaluate_pipeline_latency(
            None if newest is None else datetime.fromtimestamp(newest, timezone.utc), now, cfg)

    return (guarded(FRAUD_RATE, fraud_rate, runbook=section(FRAUD_RATE))
            + guarded(PIPELINE_LATENCY, pipeline_latency, runbook=section(PIPELINE_LATENCY)))

