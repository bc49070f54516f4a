"""Kafka I/O: the consumer-lag reader on the provider's AdminClient: a few batched admin calls, not a consumer per partition.

Lag = log-end offset (one `list_offsets` with OffsetSpec.latest() for every partition of every group)
minus committed offset (one `list_consumer_group_offsets` per group; the API takes one group a call,
so all of them are sent before any is awaited).

Offset samples in ops.kafka_offset_samples are the memory that lets an hourly sweep judge a window.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from streamflow_ops.kafka.model import (
    ClusterView,
    GroupOffsets,
    OffsetSample,
    PartitionInfo,
)
from streamflow_ops.results import describe_error
from streamflow_ops.sqlfiles import load_sql
from streamflow_ops.timeutil import utcnow


class LagReadError(RuntimeError):
    """Offsets could not be read (broker down, timeout, authorisation): the lag is unknown."""


def admin_client(conn_id: str):
    """The confluent AdminClient of Airflow connection `conn_id` (extra = librdkafka config)."""
    from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

    return KafkaAdminClientHook(kafka_config_id=conn_id).get_conn


def cluster_view(admin, timeout_s: float) -> ClusterView:
    """Brokers and every topic's partitions (leader, replicas, ISR) from one metadata request."""
    metadata = admin.list_topics(timeout=timeout_s)
    topics = {
        name: tuple(
            PartitionInfo(name, p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
            for p in sorted(meta.partitions.values(), key=lambda p: p.id))
        for name, meta in metadata.topics.items()
        if meta.error is None or meta.partitions
    }
    return ClusterView(brokers=len(metadata.brokers), topics=topics)


def _fetch_committed(admin, groups: Sequence[str], timeout_s: float) -> dict[str, dict | BaseException]:
    """{group: {(topic, partition): offset or None}} or the exception of that group's fetch."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = {group: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                         request_timeout=timeout_s)[group]
               for group in groups}
    committed: dict[str, dict | BaseException] = {}
    for group, future in futures.items():
        try:
            answer = future.result(timeout=timeout_s + 5)
        except Exception as exc:  # noqa: BLE001 - recorded per group, the others still count
            committed[group] = exc
            continue
        # Real Kafka omits uncommitted partitions; some brokers answer them with -1001 (OFFSET_INVALID).
        committed[group] = {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 and tp.error is None else None)
                            for tp in answer.topic_partitions}
    return committed


def _fetch_log_end(admin, partitions: Iterable[tuple[str, int]], timeout_s: float) -> dict:
    """{(topic, partition): log-end offset or the exception} from one list_offsets request."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    request = {TopicPartition(topic, partition): OffsetSpec.latest() for topic, partition in partitions}
    if not request:
        return {}
    futures = admin.list_offsets(request, request_timeout=timeout_s)
    log_end = {}
    for tp, future in futures.items():
        try:
            log_end[(tp.topic, tp.partition)] = future.result(timeout=timeout_s + 5).offset
        except Exception as exc:  # noqa: BLE001 - one partition without a leader must not hide the rest
            log_end[(tp.topic, tp.partition)] = exc
    if all(isinstance(v, BaseException) for v in log_end.values()):
        raise LagReadError(f"log-end offsets unavailable: {describe_error(next(iter(log_end.values())))}")
    return log_end


def read_group_offsets(admin, groups: Sequence[str], timeout_s: float, now: datetime | None = None,
                       topics: Sequence[str] | None = None) -> dict[str, GroupOffsets]:
    """Committed and log-end offsets of every partition the groups consume (optionally only `topics`).

    A group whose fetch failed comes back with `error`; a failure of the shared metadata or
    list_offsets request raises LagReadError, because then no group's lag is known.
    """
    now = utcnow(now)
    try:
        committed = _fetch_committed(admin, groups, timeout_s)
        view = cluster_view(admin, timeout_s)
    except Exception as exc:  # a broker timeout means unknown, never ok
        raise LagReadError(f"cannot read consumer offsets: {describe_error(exc)}") from exc

    wanted: dict[str, tuple[list[str], list[str]]] = {}  # group -> (live topics, deleted topics)
    for group, offsets in committed.items():
        if isinstance(offsets, BaseException):
            continue
        group_topics = sorted({topic for topic, _ in offsets} | set(topics or ()))
        if topics is not None:
            group_topics = [t for t in group_topics if t in topics]
        wanted[group] = ([t for t in group_topics if t in view.topics],
                         [t for t in group_topics if t not in view.topics])
    partitions = {(p.topic, p.partition) for live, _ in wanted.values() for t in live for p in view.topics[t]}
    try:
        log_end = _fetch_log_end(admin, sorted(partitions), timeout_s)
    except Exception as exc:
        raise LagReadError(f"cannot read log-end offsets: {describe_error(exc)}") from exc

    result = {}
    for group in groups:
        offsets = committed[group]
        if isinstance(offsets, BaseException):
            result[group] = GroupOffsets(group, now, error=f"offset fetch failed: {describe_error(offsets)}")
            continue
        live, deleted = wanted[group]
        samples, unavailable = [], []
        for topic in live:
            for p in view.topics[topic]:
                end = log_end[(topic, p.partition)]
                if isinstance(end, BaseException):
                    unavailable.append(f"{topic}[{p.partition}]: {describe_error(end)}")
                    continue
                samples.append(OffsetSample(now, group, topic, p.partition,
                                            offsets.get((topic, p.partition)), end))
        result[group] = GroupOffsets(group, now, tuple(samples), tuple(deleted), tuple(unavailable))
    return result


def group_lag(admin, group: str, timeout_s: float, topics: Sequence[str] | None = None) -> tuple[int | None, str | None]:
    """A waiting sensor's reading: (total lag over `topics` or all committed topics, None) or (None, why not).
    Never raises: a failed read only means "not yet"."""
    try:
        read = read_group_offsets(admin, [group], timeout_s, topics=topics)[group]
    except Exception as exc:  # noqa: BLE001 - a failed read only means not yet
        return None, describe_error(exc)
    if read.error:
        return None, read.error
    return (read.total_lag, None) if read.total_lag is not None else (None, "no committed offsets for the group")


# --- offset samples (ops.kafka_offset_samples) -------------------------------------------------

def store_samples(conn, reads: Iterable[GroupOffsets], ops_schema: str = "ops") -> int:
    """Insert every partition sample of the successful reads, in one transaction."""
    rows = [{"sampled_at": s.sampled_at, "group": s.group, "topic": s.topic, "partition": s.partition,
             "committed": s.committed, "log_end": s.log_end}
            for read in reads if read.error is None for s in read.samples]
    if rows:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(load_sql("kafka_insert_offset_samples.sql", ops=ops_schema), rows)
    return len(rows)


def load_samples(conn, group: str, since: datetime, until: datetime, ops_schema: str = "ops") -> list[OffsetSample]:
    rows = conn.execute(load_sql("kafka_load_offset_samples.sql", ops=ops_schema),
                        {"group": group, "since": since, "until": until}).fetchall()
    return [OffsetSample(*row) for row in rows]


def prune_samples(conn, before: datetime, ops_schema: str = "ops") -> int:
    """Delete samples older than `before` (the configured horizon); returns how many went."""
    with conn.transaction():
        return conn.execute(load_sql("kafka_prune_offset_samples.sql", ops=ops_schema), {"before": before}).rowcount
