"""Business checks on silver data: the fraud rate of the last hour and how fresh the newest row is.

Evaluators are pure; the probes read through the warehouse connection with identifiers from the config.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from streamflow_ops import registry
from streamflow_ops.config import BusinessConfig, StreamflowOpsConfig
from streamflow_ops.kafka.samples import load_samples
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult, Status, banded
from streamflow_ops.sqlfiles import load_sql
from streamflow_ops.timeutil import utcnow

FRAUD_RATE = registry.BUSINESS_FRAUD_RATE
PIPELINE_LATENCY = registry.BUSINESS_PIPELINE_LATENCY
log = logging.getLogger(__name__)


def evaluate_fraud_rate(total: int, flagged: int, cfg: BusinessConfig) -> CheckResult:
    threshold = (f"warning > {cfg.fraud_rate_warning:.0%}, critical > {cfg.fraud_rate_critical:.0%} "
                 f"(fraud_score >= {cfg.fraud_score_threshold:g}, last {cfg.fraud_rate_window_minutes} min)")
    if total == 0:
        # No rows is not a rate of 0%: nothing reached silver in the window, itself a finding (SPEC).
        return FRAUD_RATE.result(Status.WARNING, threshold=threshold, details={"total": 0, "flagged": 0},
                                 message=f"no transactions: no silver rows in the last "
                                         f"{cfg.fraud_rate_window_minutes} min, so no fraud rate to compute",
                                 step=f"see business.pipeline_latency: {PIPELINE_LATENCY.first_step}")
    rate = flagged / total
    status = banded(rate, cfg.fraud_rate_warning, cfg.fraud_rate_critical, inclusive=False)
    return FRAUD_RATE.result(status, value=round(rate * 100, 2), threshold=threshold,
                       details={"total": total, "flagged": flagged},
                       message=f"{rate:.1%} of the last {cfg.fraud_rate_window_minutes} min's transactions "
                               f"score >= {cfg.fraud_score_threshold:g} ({flagged:,} of {total:,})")


@dataclass(frozen=True)
class KafkaBacklog:
    """The Flink group's lag in the newest stored Kafka offset sample (ops.kafka_offset_samples)."""

    group: str
    lag: int
    sampled_at: datetime


def stale_cause(backlog: KafkaBacklog | None, newest: datetime) -> tuple[str, str | None]:
    """Pure: why silver is stale, and the first step for that cause (None: the runbook's own).
    Events waiting in Kafka mean Flink stopped consuming; none waiting (the group consumed everything)
    mean nothing new arrived. Only a sample taken after the newest silver row can tell."""
    if backlog is None or backlog.sampled_at <= newest:
        return "no Kafka offset sample since then to tell no new events from a stalled Flink job", None
    if backlog.lag == 0:
        return (f"no new events: {backlog.group} has consumed everything on its topics (lag 0 at "
                f"{backlog.sampled_at:%H:%M:%S} UTC), so the producers are quiet, not Flink",
                "check the event producers upstream of transactions.raw; Flink and the warehouse are waiting")
    return (f"Flink stalled: {backlog.lag:,} events wait in Kafka for {backlog.group} "
            f"(at {backlog.sampled_at:%H:%M:%S} UTC) while silver does not advance",
            "check the Flink job (flink.job_running, flink.checkpoint_age, flink.backpressure) and its consumer lag")


def evaluate_pipeline_latency(newest: datetime | None, now: datetime, cfg: BusinessConfig,
                              backlog: KafkaBacklog | None = None) -> CheckResult:
    threshold = (f"warning >= {cfg.pipeline_latency_warning_s // 60} min, "
                 f"critical > {cfg.pipeline_latency_critical_s // 60} min")
    if newest is None:
        return PIPELINE_LATENCY.result(Status.CRITICAL, threshold=threshold,
                           message="silver holds no rows at all: the pipeline has never delivered")
    age_s = max(0.0, (now - newest).total_seconds())
    # Warning from 5 min on, critical only above 15 min (SPEC "> 15 min"), fractional ages included.
    status = (Status.CRITICAL if age_s > cfg.pipeline_latency_critical_s
              else Status.WARNING if age_s >= cfg.pipeline_latency_warning_s else Status.OK)
    message = f"newest silver row is {age_s / 60:.1f} min old ({newest:%Y-%m-%d %H:%M:%S} UTC)"
    details, step = {"newest": newest.isoformat()}, None
    if status is not Status.OK:
        cause, step = stale_cause(backlog, newest)
        message += ": " + cause
        if backlog is not None:
            details["kafka_lag"] = {"group": backlog.group, "lag": backlog.lag,
                                    "sampled_at": backlog.sampled_at.isoformat()}
    return PIPELINE_LATENCY.result(status, value=round(age_s, 1), threshold=threshold, details=details,
                                   message=message, step=step)


def latest_backlog(conn, config: StreamflowOpsConfig, since: datetime, now: datetime) -> KafkaBacklog | None:
    """The Flink group's lag in the newest offset sample the Kafka check stored since `since`.
    None when there is no such sample (or no sample store): the cause then stays unknown."""
    groups = config.kafka.checkpoint_committing_groups
    if not groups:
        return None
    try:
        samples = load_samples(conn, groups[0], since, now, config.warehouse.ops_schema)
    except psycopg.Error as exc:
        log.warning("kafka offset samples unavailable for pipeline_latency: %s", exc)
        return None
    if not samples:
        return None
    latest = max(s.sampled_at for s in samples)
    lags = [s.lag for s in samples if s.sampled_at == latest and s.lag is not None]
    return KafkaBacklog(groups[0], sum(lags), latest) if lags else None


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    return run_guarded(config, FAMILY.specs, lambda: _run(config, utcnow(now)))


def _run(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    wh, cfg = config.warehouse, config.business
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
            newest = None if newest is None else datetime.fromtimestamp(newest, timezone.utc)
            stale = newest is not None and (now - newest).total_seconds() >= cfg.pipeline_latency_warning_s
            backlog = latest_backlog(conn, config, newest, now) if stale else None
        return evaluate_pipeline_latency(newest, now, cfg, backlog)

    return FRAUD_RATE.guarded(fraud_rate) + PIPELINE_LATENCY.guarded(pipeline_latency)


FAMILY = register(Family("business", run_checks))

