"""Business evaluators: pure functions from the silver table's numbers (and the Kafka backlog) to CheckResults."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streamflow_ops import registry
from streamflow_ops.config import BusinessConfig
from streamflow_ops.results import CheckResult, Status, banded

FRAUD_RATE = registry.BUSINESS_FRAUD_RATE
PIPELINE_LATENCY = registry.BUSINESS_PIPELINE_LATENCY


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
