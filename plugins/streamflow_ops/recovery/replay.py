"""recover_bronze's I/O: read a time range of a topic back from Kafka and insert the bronze rows it lacks.

The runbook's "Emergency Procedures > Data Recovery (Bronze Layer Corruption)" truncates bronze and rewinds
`flink-fraud-detector` to the earliest offsets: Kafka keeps 3 days and bronze 7, so four days of archive
are lost for good, and three days are pushed through Flink again (silver and fraud alerts flooded). This
reads only the range, with a consumer that is assigned partitions and never joins or commits a group
(the running Flink job's offsets never move), and only inserts (never updates or deletes), so running
it twice changes nothing the second time.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.recovery.bronze import (
    MESSAGE_KEYS,
    Malformed,
    ReplayRequest,
    broker_answer_holds,
    decode,
    first_offset_at,
    not_held,
)
from streamflow_ops.sqlfiles import dict_rows, load_sql
from streamflow_ops.store import Actor, audited, ensure_ops_schema

log = logging.getLogger(__name__)

ACTION = "recover_bronze"
# Never a group anyone consumes with: the consumer only assign()s partitions, so no group is joined, and
# auto-commit and the offset store are off, so nothing is ever committed under it either. librdkafka
# needs some group.id to build a consumer at all; a connection extra naming flink-fraud-detector is
# overridden here. History is already there to fetch: a short fetch wait keeps each single-message read of
# the boundary search at one round trip (the default 500 ms wait made every probe cost half a second).
REPLAY_CONSUMER = {"group.id": "streamflow-ops-recover-bronze", "enable.auto.commit": False,
                   "enable.auto.offset.store": False, "auto.offset.reset": "error", "enable.partition.eof": False,
                   "fetch.wait.max.ms": 20}
STAGE, CANDIDATES = "streamflow_recovery_stage", "streamflow_recovery_candidates"
EXAMPLE_BYTES = 200


class ReplayError(RuntimeError):
    """Kafka could not be read as far as the range needs (no leader, a stalled partition, a fetch error)."""


def replay_consumer(conn_id: str):
    """A confluent Consumer of connection `conn_id` through the provider's KafkaConsumerHook, with the
    group-safety settings of REPLAY_CONSUMER over the connection's own extra; never subscribe()d."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook

    class ReplayConsumerHook(KafkaConsumerHook):
        def _get_client(self, config):
            return super()._get_client({**config, **REPLAY_CONSUMER})

    return ReplayConsumerHook(topics=[], kafka_config_id=conn_id).get_conn


@dataclass
class PartitionReport:
    partition: int
    first_offset: int  # the low watermark: the oldest message Kafka still holds
    end_offset: int  # the high watermark when the read began
    first_held_at: str | None  # that oldest message's timestamp (None: the partition is empty)
    from_offset: int = 0
    to_offset: int = 0  # exclusive
    offsets_by: str = ""  # "broker" (offsets_for_times checked) or "search" (the broker's answer was wrong)
    read: int = 0
    in_range: int = 0
    malformed: int = 0
    duplicates: int = 0  # in range, a transaction id already read from an earlier message
    missing: int = 0  # in range and absent from bronze when the run compared (dry: would insert)
    inserted: int = 0
    not_held: list[str] | None = None  # [from, to) of the range older than first_held_at


@dataclass
class Replay:
    """What one run read and did; the task's XCom and the audit row's details."""

    topic: str
    start: str
    end: str
    dry_run: bool
    partitions: list[PartitionReport] = field(default_factory=list)
    malformed_example: dict[str, Any] | None = None
    restore_instead: dict[str, Any] | None = None
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.partitions)

    @property
    def not_held(self) -> list[str] | None:
        """The union over partitions of the range Kafka no longer holds: [start, latest first-held time)."""
        gaps = [p.not_held for p in self.partitions if p.not_held]
        return [self.start, max(gap[1] for gap in gaps)] if gaps else None

    def summary(self) -> str:
        verb = "would insert" if self.dry_run else "inserted"
        count = self.total("missing") if self.dry_run else self.total("inserted")
        text = (f"{'DRY RUN: ' if self.dry_run else ''}{self.topic} [{self.start}, {self.end}): read "
                f"{self.total('read'):,} messages, {self.total('in_range'):,} rows in range, {verb} {count:,} "
                f"missing from bronze; {self.total('malformed'):,} malformed skipped")
        if self.not_held:
            backup = self.restore_instead
            text += (f". Kafka no longer holds [{self.not_held[0]}, {self.not_held[1]}): restore those rows from "
                     + (f"backup {backup['target']} ({backup['outcome']} {backup['finished_at']})" if backup
                        else "a backup (none verified or completed is recorded in ops.maintenance_audit)"))
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "not_held": self.not_held, "read": self.total("read"),
                "in_range": self.total("in_range"), "malformed": self.total("malformed"),
                "duplicates": self.total("duplicates"),
                "missing": self.total("missing"), "inserted": self.total("inserted"), "summary": self.summary()}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


class _Partition:
    """Single-message reads of one partition: the timestamp at an offset (cached), for the boundary checks."""

    def __init__(self, consumer, topic: str, partition: int, timeout_s: float):
        self.consumer, self.topic, self.partition, self.timeout_s = consumer, topic, partition, timeout_s
        self.cache: dict[int, int] = {}

    def timestamp_at(self, offset: int) -> int:
        if offset not in self.cache:
            from confluent_kafka import TopicPartition

            self.consumer.assign([TopicPartition(self.topic, self.partition, offset)])
            deadline = time.monotonic() + self.timeout_s
            while True:
                message = self.consumer.poll(min(1.0, self.timeout_s))
                if message is not None:
                    if message.error():
                        raise ReplayError(f"{self.topic}[{self.partition}] offset {offset}: {message.error()}")
                    self.cache[offset] = message.timestamp()[1]
                    break
                if time.monotonic() > deadline:
                    raise ReplayError(f"{self.topic}[{self.partition}]: no message at offset {offset} within "
                                      f"{self.timeout_s:g} s")
        return self.cache[offset]

    def offset_of(self, timestamp_ms: int, low: int, high: int) -> tuple[int, str]:
        """The first offset whose timestamp is >= timestamp_ms: offsets_for_times, trusted only once the
        messages around its answer confirm it; otherwise found by binary search over the timestamps."""
        from confluent_kafka import TopicPartition

        answer = self.consumer.offsets_for_times([TopicPartition(self.topic, self.partition, timestamp_ms)],
                                                 timeout=self.timeout_s)[0]
        offset = high if answer.error is None and answer.offset < 0 else answer.offset
        if answer.error is None and broker_answer_holds(offset, timestamp_ms, low, high, self.timestamp_at):
            return offset, "broker"
        return first_offset_at(timestamp_ms, low, high, self.timestamp_at), f"search (broker answered {offset})"


def _plan(consumer, request: ReplayRequest, late_arrival_s: int, timeout_s: float) -> list[PartitionReport]:
    from confluent_kafka import TopicPartition

    metadata = consumer.list_topics(request.topic, timeout=timeout_s).topics.get(request.topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ReplayError(f"topic {request.topic} is not readable: {getattr(metadata, 'error', 'absent')}")
    start_ms = int(request.start.timestamp() * 1000)
    stop_ms = int(request.end.timestamp() * 1000) + late_arrival_s * 1000
    reports = []
    for number in sorted(metadata.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(request.topic, number), timeout=timeout_s,
                                                   cached=False)
        part = _Partition(consumer, request.topic, number, timeout_s)
        first_ms = part.timestamp_at(low) if high > low else None
        report = PartitionReport(number, low, high, _iso(first_ms) if first_ms is not None else None,
                                 from_offset=low, to_offset=low, offsets_by="empty")
        gap = not_held(request.start, request.end, first_ms)
        report.not_held = [gap[0].isoformat(), gap[1].isoformat()] if gap else None
        if high > low:
            report.from_offset, by_start = part.offset_of(start_ms, low, high)
            report.to_offset, by_stop = part.offset_of(stop_ms, report.from_offset, high)
            report.offsets_by = by_start if by_start == by_stop else f"start: {by_start}; end: {by_stop}"
        reports.append(report)
    return reports


def _read(consumer, conn, request: ReplayRequest, replay: Replay, config: StreamflowOpsConfig) -> None:
    """Stream [from_offset, to_offset) of every partition into the session's staging table."""
    from confluent_kafka import TopicPartition

    settings = config.recovery
    todo = {p.partition: p for p in replay.partitions if p.to_offset > p.from_offset}
    if not todo:
        return
    consumer.assign([TopicPartition(request.topic, p.partition, p.from_offset) for p in todo.values()])
    buffer: list[tuple] = []
    last_progress = time.monotonic()
    while todo:
        # A short wait: consume() blocks until it has num_messages or the timeout, and history is already there.
        messages = consumer.consume(num_messages=10_000, timeout=0.2)
        for message in messages:
            if message.error():
                raise ReplayError(f"{request.topic}[{message.partition()}]: {message.error()}")
            report = todo.get(message.partition())
            if report is None or message.offset() >= report.to_offset:
                continue
            report.read += 1
            try:
                row = decode(message.value())
            except Malformed as exc:
                report.malformed += 1
                if replay.malformed_example is None:
                    replay.malformed_example = {"partition": message.partition(), "offset": message.offset(),
                                                "reason": str(exc),
                                                "value": (message.value() or b"")[:EXAMPLE_BYTES].decode(
                                                    "utf-8", "replace")}
                continue
            if request.start_epoch <= row[6] < request.end_epoch:
                report.in_range += 1
                buffer.append((*row, message.partition(), message.offset()))
        if len(buffer) >= settings.stage_batch_rows:
            _stage(conn, config, buffer)
        if messages:
            last_progress = time.monotonic()
        positions = consumer.position([TopicPartition(request.topic, n) for n in todo])
        for position in positions:
            if position.offset >= todo[position.partition].to_offset:
                consumer.incremental_unassign([TopicPartition(request.topic, position.partition)])
                del todo[position.partition]
        if todo and time.monotonic() - last_progress > settings.read_timeout_s:
            stalled = {p.partition: f"at {p.offset}, to {todo[p.partition].to_offset}" for p in positions
                       if p.partition in todo}
            raise ReplayError(f"{request.topic}: no message for {settings.read_timeout_s:g} s from partitions "
                              f"{stalled}")
    _stage(conn, config, buffer)


def _identifiers(config: StreamflowOpsConfig) -> dict[str, Any]:
    w = config.warehouse
    return {"bronze": (w.bronze_schema, w.bronze_table), "id": w.id_column, "stage": STAGE,
            "candidates": CANDIDATES, "columns": _columns(config)}


def _columns(config: StreamflowOpsConfig):
    """The bronze columns a message fills, in MESSAGE_KEYS order (id and time named by the config)."""
    from psycopg import sql

    names = {"transaction_id": config.warehouse.id_column, "transaction_time": config.warehouse.time_column}
    return sql.SQL(", ").join(sql.Identifier(names.get(key, key)) for key in MESSAGE_KEYS)


def _stage(conn, config: StreamflowOpsConfig, rows: list[tuple]) -> None:
    from psycopg import sql

    if not rows:
        return
    statement = sql.SQL("copy {} ({}, kafka_partition, kafka_offset) from stdin").format(
        sql.Identifier(STAGE), _columns(config))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
    rows.clear()


def _restore_instead(conn, config: StreamflowOpsConfig) -> dict[str, Any] | None:
    rows = dict_rows(conn, "recovery_latest_backup.sql", ops=config.warehouse.ops_schema)
    if not rows:
        return None
    row = rows[0]
    return {**row, "finished_at": row["finished_at"].isoformat()}


def run_replay(config: StreamflowOpsConfig, request: ReplayRequest, actor: Actor) -> Replay:
    """Plan, read, compare and (unless dry) insert; one ops.maintenance_audit row whatever happens."""
    started = time.monotonic()
    replay = Replay(request.topic, request.start.isoformat(), request.end.isoformat(), request.dry_run)
    ops = config.warehouse.ops_schema
    bronze = f"{config.warehouse.bronze_schema}.{config.warehouse.bronze_table}"
    ids = _identifiers(config)
    with warehouse_connection(config.warehouse, statement_timeout_s=config.recovery.statement_timeout_s) as conn:
        ensure_ops_schema(conn, ops)
        with audited(conn, actor, ACTION, f"{bronze} from {request.topic} [{replay.start}, {replay.end})",
                     request.dry_run) as record:
            consumer = replay_consumer(config.kafka.conn_id)
            try:
                replay.partitions = _plan(consumer, request, config.recovery.late_arrival_s,
                                          config.kafka.request_timeout_s)
                conn.execute(load_sql("recovery_stage.sql", **ids))
                _read(consumer, conn, request, replay, config)
            finally:
                consumer.close()
            conn.execute(load_sql("recovery_candidates.sql", **ids))
            missing = {r["kafka_partition"]: r for r in dict_rows(conn, "recovery_missing.sql", **ids)}
            inserted: dict[int, int] = {}
            if not request.dry_run:
                with conn.transaction():
                    inserted = {r["kafka_partition"]: r["inserted"]
                                for r in dict_rows(conn, "recovery_insert.sql", **ids)}
            for report in replay.partitions:
                report.missing = missing.get(report.partition, {}).get("missing", 0)
                report.duplicates = missing.get(report.partition, {}).get("duplicates", 0)
                report.inserted = inserted.get(report.partition, 0)
            if replay.not_held:
                replay.restore_instead = _restore_instead(conn, config)
            replay.seconds = round(time.monotonic() - started, 3)
            record.rows_affected = replay.total("missing") if request.dry_run else replay.total("inserted")
            record.details.update(replay.to_dict())
    return replay
