"""Kafka health checks: one metadata probe feeds four evaluators; the lag reader feeds kafka.consumer_lag.

`run_checks` is the family interface the health sweep calls; `broker_reachable` stays on its own for
the maintenance preflight.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from streamflow_ops import registry
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.kafka import evaluators
from streamflow_ops.kafka.probes import (
    admin_client,
    cluster_view,
    load_samples,
    prune_samples,
    read_group_offsets,
    store_samples,
)
from streamflow_ops.kafka.model import GroupOffsets, OffsetSample
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult, describe_error
from streamflow_ops.store import ensure_ops_schema
from streamflow_ops.timeutil import utcnow

log = logging.getLogger(__name__)


def broker_reachable(config: StreamflowOpsConfig) -> CheckResult:
    """kafka.broker_reachable: metadata from the cluster through KafkaAdminClientHook."""
    try:
        view = cluster_view(admin_client(config.kafka.conn_id), config.kafka.request_timeout_s)
    except Exception as exc:  # noqa: BLE001 - no answer is the finding
        return evaluators.broker_unreachable(config.kafka.conn_id, describe_error(exc))
    return evaluators.broker_reachable(view)


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    """Every kafka.* check; skipped without the connection; one failing check is unknown, never raises."""
    return run_guarded(config, FAMILY.specs, lambda: _run(config, utcnow(now)))


def _run(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    cfg = config.kafka
    try:
        admin = admin_client(cfg.conn_id)
        view = cluster_view(admin, cfg.request_timeout_s)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so once, the rest is unknown
        error = describe_error(exc)
        return [evaluators.broker_unreachable(cfg.conn_id, error)] + [
            spec.unknown(f"not measured, the broker does not answer: {error}")
            for spec in (registry.KAFKA_TOPICS_PRESENT, registry.KAFKA_PARTITION_LEADERS,
                         registry.KAFKA_UNDER_REPLICATED)] + [
            registry.KAFKA_TOPIC_LAYOUT.unknown(f"{topic}: not measured, the broker does not answer: {error}",
                                                subject=topic) for topic in cfg.topics] + [
            registry.KAFKA_CONSUMER_LAG.unknown(f"{group}: lag unknown, the broker does not answer: {error}",
                                                subject=group) for group in cfg.consumer_groups]
    results = [evaluators.broker_reachable(view)]
    for spec, evaluate in (
        (registry.KAFKA_TOPICS_PRESENT, lambda: evaluators.topics_present(view, cfg.topics)),
        (registry.KAFKA_PARTITION_LEADERS, lambda: evaluators.partition_leaders(view)),
        (registry.KAFKA_UNDER_REPLICATED, lambda: evaluators.under_replicated(view)),
        (registry.KAFKA_TOPIC_LAYOUT, lambda: evaluators.topic_layout(view, cfg.topics, cfg.expected_partitions,
                                                                      cfg.expected_replication_factor)),
    ):
        results += spec.guarded(evaluate)
    results += registry.KAFKA_CONSUMER_LAG.guarded(lambda: consumer_lag(config, admin, now))
    return results


def consumer_lag(config: StreamflowOpsConfig, admin, now: datetime) -> list[CheckResult]:
    """One kafka.consumer_lag result per configured group: read, remember, judge the window."""
    cfg = config.kafka
    try:
        reads = read_group_offsets(admin, cfg.consumer_groups, cfg.request_timeout_s, now)
    except Exception as exc:  # noqa: BLE001 - a broker timeout is unknown, never ok
        reads = {g: GroupOffsets(g, now, error=describe_error(exc)) for g in cfg.consumer_groups}
    history, note = sample_history(config, list(reads.values()), now)
    return [evaluators.consumer_lag(reads[g], history.get(g, ()), cfg, now, note) for g in cfg.consumer_groups]


def sample_history(config: StreamflowOpsConfig, reads: list[GroupOffsets],
                   now: datetime) -> tuple[dict[str, list[OffsetSample]], str | None]:
    """Store this read, prune past the horizon, load each group's history. Without PostgreSQL the
    bands still apply, so a store failure becomes a note on the result instead of an unknown."""
    cfg, ops = config.kafka, config.warehouse.ops_schema
    try:
        with warehouse_connection(config.warehouse, statement_timeout_s=30) as conn:
            ensure_ops_schema(conn, ops)
            store_samples(conn, reads, ops)
            since = now - timedelta(hours=cfg.sample_horizon_hours)
            prune_samples(conn, since, ops)
            return {r.group: load_samples(conn, r.group, since, now, ops) for r in reads if r.error is None}, None
    except Exception as exc:  # noqa: BLE001 - without history the bands still hold
        log.warning("kafka offset samples unavailable: %s", exc)
        return {}, f"window rules skipped, sample store unavailable: {describe_error(exc)}"


FAMILY = register(Family("kafka", run_checks))
