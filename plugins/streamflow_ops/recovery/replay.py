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
    Probe,
    ReplayRequest,
    decode,
    not_held,
    offset_search,
    run_probes,
)
from streamflow_ops.sqlfiles import dict_rows, load_sql
from streamflow_ops.store import Actor, audited, ensure_ops_schema

log = logging.getLogger(__name__)

ACTION = "recover_bronze"
# Never a group anyone consumes with: the consumer only assign()s partitions, so no group is joined, and
# auto-commit and the offset store are off, so nothing is ever committed under it either. librdkafka
# needs some group.id to build a consumer at all; a connection extra naming flink-fraud-detector is
# overridden here.
REPLAY_CONSUMER = {"group.id": "streamflow-ops-recover-bronze", "enable.auto.commit": False,
                   "enable.auto.offset.store": False, "auto.offset.reset": "error", "enable.partition.eof": False}
# fetch.wait.max.ms, shortest first. History is already there to fetch, so a real Kafka answers at once and
# the first wait only matters at a partition's end; a short one keeps each single-message read of the boundary
# search at one round trip. A broker that holds every fetch for the whole wait and answers it empty when it
# cannot scan the partition within it (Tansu 0.6 on partitions of ~100,000 messages and more) never answers
# a short one: a round that stays empty for FETCH_PATIENCE_S (or 4 waits) moves to the next wait.
FETCH_WAITS_MS = (20, 100, 250, 500, 1_000, 2_500)
FETCH_PATIENCE_S = 1.0
STAGE, CANDIDATES = "streamflow_recovery_stage", "streamflow_recovery_candidates"
EXAMPLE_BYTES = 200


class ReplayError(RuntimeError):
    """Kafka could not be read as far as the range needs (no leader, a stalled partition, a fetch error)."""


def replay_consumer(conn_id: str, fetch_wait_ms: int):
    """A confluent Consumer of connection `conn_id` through the provider's KafkaConsumerHook, with the
    group-safety settings of REPLAY_CONSUMER over the connection's own extra; never subscribe()d."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook

    class ReplayConsumerHook(KafkaConsumerHook):
        def _get_client(self, config):
            return super()._get_client({**config, **REPLAY_CONSUMER, "fetch.wait.max.ms": fetch_wait_ms})

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
    # where the time went: finding the offsets, reading into the stage, comparing with bronze and inserting
    phase_seconds: dict[str, float] = field(default_factory=dict)
    fetch_wait_ms: int = 0  # the fetch.wait.max.ms the broker needed (FETCH_WAITS_MS)

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


class _Reader:
    """The run's one consumer, and single-message reads of several partitions at once (cached): a round of
    the boundary probes costs one fetch whatever the number of partitions. Rebuilt with the next of
    FETCH_WAITS_MS when the broker leaves a round unanswered (see there)."""

    def __init__(self, conn_id: str, topic: str, timeout_s: float):
        self.conn_id, self.topic, self.timeout_s = conn_id, topic, timeout_s
        self.waits = list(FETCH_WAITS_MS)
        self.consumer = replay_consumer(conn_id, self.waits[0])
        self.cache: dict[tuple[int, int], int] = {}

    def close(self) -> None:
        self.consumer.close()

    def _longer_wait(self) -> bool:
        if len(self.waits) == 1:
            return False
        self.consumer.close()
        self.waits.pop(0)
        log.info("%s: the broker answered no fetch within the wait; fetch.wait.max.ms now %d ms",
                 self.topic, self.waits[0])
        self.consumer = replay_consumer(self.conn_id, self.waits[0])
        return True

    def timestamps(self, wanted: dict[int, int]) -> dict[int, int]:
        """{partition: offset} -> {partition: timestamp of the first message at or after that offset}."""
        from confluent_kafka import TopicPartition

        todo = {p: o for p, o in wanted.items() if (p, o) not in self.cache}
        while todo:
            self.consumer.assign([TopicPartition(self.topic, p, o) for p, o in todo.items()])
            last_wait = len(self.waits) == 1
            patience = self.timeout_s if last_wait else max(FETCH_PATIENCE_S, 4 * self.waits[0] / 1000)
            quiet_since = time.monotonic()
            while todo:
                message = self.consumer.poll(min(0.2, patience))
                if message is not None and message.error():
                    raise ReplayError(f"{self.topic}[{message.partition()}]: {message.error()}")
                # Messages of partitions already answered keep coming (prefetched): only a wanted one counts
                # as the broker answering, so one stalled partition is noticed while the others stream on.
                offset = None if message is None else todo.get(message.partition())
                if offset is not None and message.offset() >= offset:
                    self.cache[message.partition(), offset] = message.timestamp()[1]
                    del todo[message.partition()]
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > patience:
                    if self._longer_wait():
                        break
                    raise ReplayError(f"{self.topic}: no message within {self.timeout_s:g} s at "
                                      + ", ".join(f"partition {p} offset {o}" for p, o in sorted(todo.items())))
        return {p: self.cache[p, o] for p, o in wanted.items()}


def _plan_partition(report: PartitionReport, request: ReplayRequest, start_ms: int, stop_ms: int,
                    answers: tuple[int | None, int | None]) -> Probe:
    """One partition's plan: its oldest message's time (what Kafka no longer holds), then the offsets of
    start and stop."""
    low, high = report.first_offset, report.end_offset
    first_ms = (yield low) if high > low else None
    report.first_held_at = _iso(first_ms) if first_ms is not None else None
    gap = not_held(request.start, request.end, first_ms)
    report.not_held = [gap[0].isoformat(), gap[1].isoformat()] if gap else None
    if high > low:
        report.from_offset, by_start = yield from offset_search(start_ms, answers[0], low, high)
        report.to_offset, by_stop = yield from offset_search(stop_ms, answers[1], report.from_offset, high)
        report.offsets_by = by_start if by_start == by_stop else f"start: {by_start}; end: {by_stop}"
    return report


def _broker_answers(consumer, topic: str, highs: dict[int, int], timestamp_ms: int,
                    timeout_s: float) -> dict[int, int | None]:
    """offsets_for_times for every partition at once; -1 (no such message) is the end, an error is None."""
    from confluent_kafka import TopicPartition

    found = consumer.offsets_for_times([TopicPartition(topic, p, timestamp_ms) for p in highs], timeout=timeout_s)
    return {a.partition: None if a.error is not None else highs[a.partition] if a.offset < 0 else a.offset
            for a in found}


def _plan(reader: _Reader, request: ReplayRequest, late_arrival_s: int, timeout_s: float) -> list[PartitionReport]:
    from confluent_kafka import TopicPartition

    consumer = reader.consumer
    metadata = consumer.list_topics(request.topic, timeout=timeout_s).topics.get(request.topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ReplayError(f"topic {request.topic} is not readable: {getattr(metadata, 'error', 'absent')}")
    start_ms = int(request.start.timestamp() * 1000)
    stop_ms = int(request.end.timestamp() * 1000) + late_arrival_s * 1000
    reports = {}
    for number in sorted(metadata.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(request.topic, number), timeout=timeout_s,
                                                   cached=False)
        reports[number] = PartitionReport(number, low, high, None, from_offset=low, to_offset=low,
                                          offsets_by="empty")
    highs = {n: r.end_offset for n, r in reports.items()}
    at_start = _broker_answers(consumer, request.topic, highs, start_ms, timeout_s)
    at_stop = _broker_answers(consumer, request.topic, highs, stop_ms, timeout_s)
    planned = run_probes({n: _plan_partition(r, request, start_ms, stop_ms, (at_start.get(n), at_stop.get(n)))
                          for n, r in reports.items()}, reader.timestamps)
    return [planned[n] for n in sorted(planned)]


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
            reader = _Reader(config.kafka.conn_id, request.topic, config.kafka.request_timeout_s)
            try:
                replay.partitions = _plan(reader, request, config.recovery.late_arrival_s,
                                          config.kafka.request_timeout_s)
                replay.phase_seconds["plan"] = round(time.monotonic() - started, 3)
                conn.execute(load_sql("recovery_stage.sql", **ids))
                _read(reader.consumer, conn, request, replay, config)
                replay.phase_seconds["read"] = round(time.monotonic() - started - replay.phase_seconds["plan"], 3)
            finally:
                replay.fetch_wait_ms = reader.waits[0]
                reader.close()
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
            replay.phase_seconds["compare_insert"] = round(replay.seconds - sum(replay.phase_seconds.values()), 3)
            record.rows_affected = replay.total("missing") if request.dry_run else replay.total("inserted")
            record.details.update(replay.to_dict())
    return replay
