"""Business reads through the warehouse connection: the last hour's fraud counts, the newest silver row,
and the Flink group's Kafka backlog from the stored offset samples."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import psycopg

from streamflow_ops.business.evaluators import KafkaBacklog
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.kafka.probes import load_samples
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)


def fraud_counts(conn, config: StreamflowOpsConfig, since: datetime, until: datetime) -> tuple[int, int]:
    """(rows, rows at or above the fraud score threshold) of silver between since and until."""
    wh, cfg = config.warehouse, config.business
    return conn.execute(
        load_sql("health_fraud_rate.sql", silver=(wh.silver_schema, wh.silver_table), score=wh.fraud_score_column,
                 time=wh.time_column),
        {"score_threshold": cfg.fraud_score_threshold, "since": since.timestamp(), "until": until.timestamp()}
    ).fetchone()


def newest_row(conn, config: StreamflowOpsConfig) -> datetime | None:
    """The event time of silver's newest row, None when silver is empty."""
    wh = config.warehouse
    newest = conn.execute(load_sql("health_pipeline_latency.sql", silver=(wh.silver_schema, wh.silver_table),
                                   time=wh.time_column)).fetchone()[0]
    return None if newest is None else datetime.fromtimestamp(newest, timezone.utc)


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
