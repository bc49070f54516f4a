"""recover_bronze against a real Kafka-protocol broker (Tansu) and the real PostgreSQL warehouse.

The data: two hours of transactions, in bronze and in a private topic (message timestamps = event time +
0.5 s, one late arrival after the range's end, malformed messages in the range), and flink-fraud-detector's
committed offsets on that topic. Expected values are computed here, in SQL and from the generated events,
never read back from the product.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from sandbox import kafka as sandbox_kafka
from sandbox.pipeline import make_event
from streamflow_ops.config import load_config
from streamflow_ops.recovery.bronze import parse_request
from streamflow_ops.recovery.replay import FETCH_WAITS_MS, REPLAY_CONSUMER, run_replay
from streamflow_ops.store import Actor, AuditRecord, ensure_ops_schema, write_audit
from tests.dagfiles import load_repo_dag
from tests.kafka.broker import commit, create_topic, kafka_conn_env

HOUR0 = (datetime.now(timezone.utc) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
STEP_S, EVENTS, PARTITIONS = 6, 1200, 3  # two hours
FLINK_OFFSETS = {0: 100, 1: 150, 2: 399}
MALFORMED = [b"not json at all", b'{"seed": 1}', b'{"transaction_id": 7}']
ROW = ("transaction_id, customer_id, merchant_id, amount, currency, location, transaction_time, payload")
# Every column a message carries, as PostgreSQL prints the row (ingested_at is when a row was written).
DIGEST = f"""select count(*), md5(coalesce(string_agg(row({ROW})::text, E'\\n' order by transaction_id), ''))
            from bronze.transactions where transaction_time >= %s and transaction_time < %s"""
ALL = (-2**62, 2**62)


def at(minutes: float) -> datetime:
    return HOUR0 + timedelta(minutes=minutes)


def epoch(minutes: float) -> int:
    return int(at(minutes).timestamp())


@pytest.fixture
def stream(kafka_service, warehouse_db, monkeypatch):
    """Bronze holds every event; the topic holds them too, in message-timestamp order per partition."""
    bootstrap = sandbox_kafka.bootstrap(kafka_service)
    topic = create_topic(bootstrap, PARTITIONS, prefix="recover")
    events = [make_event(seq, HOUR0.timestamp() + seq * STEP_S, "rb") for seq in range(EVENTS)]
    # Late arrival: event time 60:59 (inside [30:00, 61:00)) reaching Kafka at 62:00, after the range's end.
    late = {**make_event(EVENTS, epoch(60) + 59, "rb"), "transaction_id": "late-1"}
    messages = [(e, e["transaction_time"] * 1000 + 500) for e in events] + [(late, epoch(62) * 1000)]
    producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    ordered = sorted(((seq % PARTITIONS, stamp, json.dumps(e).encode()) for seq, (e, stamp) in enumerate(messages)))
    ordered += [(p, epoch(40 + p) * 1000, value) for p, value in enumerate(MALFORMED)]
    for partition, stamp, value in sorted(ordered):
        producer.produce(topic, value=value, partition=partition, timestamp=stamp)
        producer.poll(0)
    assert producer.flush(60) == 0
    commit(bootstrap, "flink-fraud-detector", topic, FLINK_OFFSETS)
    with psycopg.connect(warehouse_db, autocommit=True) as conn, conn.cursor() as cur:
        # The seeded rows of these hours are not in the topic: gone, so that the topic is their whole record.
        cur.execute("delete from bronze.transactions where transaction_time >= %s and transaction_time < %s",
                    (epoch(-120), epoch(180)))
        cur.executemany(f"insert into bronze.transactions ({ROW}) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                        [(e["transaction_id"], e["customer_id"], e["merchant_id"], e["amount"], e["currency"],
                          e["location"], e["transaction_time"], json.dumps(e["payload"])) for e in events + [late]])
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", kafka_conn_env(bootstrap))
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"kafka": {"topics": [topic]}}))
    return {"bootstrap": bootstrap, "topic": topic, "dsn": warehouse_db}


def digest(dsn, low_high=ALL):
    with psycopg.connect(dsn) as conn:
        return conn.execute(DIGEST, low_high).fetchone()


def committed(bootstrap, group, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in
                consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)}
    finally:
        consumer.close()


def replay(stream, start, end, dry_run, run_id="r"):
    config = load_config({"kafka": {"topics": [stream["topic"]]}})
    request = parse_request({"start": start.isoformat(), "end": end.isoformat(), "topic": stream["topic"],
                             "dry_run": dry_run}, topics=config.kafka.topics, max_range_hours=72)
    return run_replay(config, request, Actor("recover_bronze", run_id, "recover_bronze"))


def audit_rows(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("select dry_run, rows_affected, outcome from ops.maintenance_audit "
                            "where action = 'recover_bronze' order by id").fetchall()


def test_deleted_range_comes_back_byte_for_byte_and_nothing_else_moves(stream, airflow_db):
    dsn, low, high = stream["dsn"], epoch(30), epoch(61)
    in_range, whole = digest(dsn, (low, high)), digest(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The range, and one row just past its end (transaction_time = end): outside [start, end).
        deleted = conn.execute("delete from bronze.transactions where transaction_time >= %s and transaction_time "
                               "<= %s", (low, high)).rowcount
        outside_deleted = conn.execute("select count(*) from bronze.transactions").fetchone()
    expected = deleted - 1  # the row at transaction_time = end is outside the range
    assert expected == (high - low) // STEP_S + 1 > 0  # the events every 6 s plus the late one
    after_delete = digest(dsn)
    flink_before = committed(stream["bootstrap"], "flink-fraud-detector", stream["topic"])
    assert flink_before == FLINK_OFFSETS

    # Dry run, through the DAG: exact, and nothing changes.
    dag_run = load_repo_dag("recover_bronze").test(run_conf={"start": at(30).isoformat().replace("+00:00", "Z"),
                                                             "end": at(61).isoformat(), "topic": stream["topic"]})
    assert dag_run.state == "success"
    assert digest(dsn) == after_delete and audit_rows(dsn) == [(True, expected, "dry_run")]

    report = replay(stream, at(30), at(61), dry_run=False)
    assert report.total("inserted") == expected and report.total("missing") == expected
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select count(*) from bronze.transactions where transaction_time = %s",
                            (high,)).fetchone() == (0,)  # outside the range: not inserted
    # Byte for byte: put the one outside row back by hand and the whole table is what it was.
    with psycopg.connect(dsn, autocommit=True) as conn:
        event = make_event((high - int(HOUR0.timestamp())) // STEP_S, high, "rb")
        conn.execute(f"insert into bronze.transactions ({ROW}) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (event["transaction_id"], event["customer_id"], event["merchant_id"], event["amount"],
                      event["currency"], event["location"], event["transaction_time"], json.dumps(event["payload"])))
    assert digest(dsn, (low, high)) == in_range and digest(dsn) == whole
    assert outside_deleted[0] == whole[0] - deleted

    # The report: per partition, malformed counted with an example, the late arrival read, nothing unheld.
    parts = {p.partition: p for p in report.partitions}
    assert sum(p.inserted for p in parts.values()) == expected and all(p.inserted > 0 for p in parts.values())
    assert report.total("malformed") == len(MALFORMED) and report.malformed_example["reason"]
    assert report.malformed_example["value"] in {m.decode() for m in MALFORMED}
    assert report.not_held is None and report.restore_instead is None
    assert all(p.offsets_by for p in parts.values())
    # where the time went: the three phases add up to the run's time; the wait this small topic needed
    assert set(report.phase_seconds) == {"plan", "read", "compare_insert"}
    assert abs(sum(report.phase_seconds.values()) - report.seconds) < 0.01
    assert report.fetch_wait_ms in FETCH_WAITS_MS

    # Idempotent; the Flink group never moved; the replay's group never committed anything.
    assert replay(stream, at(30), at(61), dry_run=False, run_id="again").total("inserted") == 0
    assert digest(dsn) == whole
    assert committed(stream["bootstrap"], "flink-fraud-detector", stream["topic"]) == FLINK_OFFSETS
    assert set(committed(stream["bootstrap"], REPLAY_CONSUMER["group.id"], stream["topic"]).values()) == {-1001}
    assert audit_rows(dsn) == [(True, expected, "dry_run"), (False, expected, "success"), (False, 0, "success")]


def test_a_range_partly_older_than_the_topic_is_named_with_the_backup_to_restore(stream):
    dsn = stream["dsn"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_ops_schema(conn)
        for hours_ago, target in ((30, "/backups/pg_dump/older"), (2, "/backups/pg_dump/newest")):
            done = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
            write_audit(conn, AuditRecord("maintenance_tasks", "m", "backup", "backup", target, False, started_at=done,
                                          finished_at=done, outcome="verified", details={"method": "pg_dump"}))
        write_audit(conn, AuditRecord("postgres_backup", "m", "backup", "backup", "/backups/failed", False,
                                      outcome="failed"))
        deleted = conn.execute("delete from bronze.transactions where transaction_time >= %s and transaction_time < %s",
                               (epoch(-60), epoch(10))).rowcount
    report = replay(stream, at(-60), at(10), dry_run=False)
    assert deleted == 10 * 60 // STEP_S  # only events from HOUR0 on existed
    assert report.total("inserted") == deleted  # everything Kafka holds came back
    # Each partition's first message is its first event (+0.5 s): partition p starts at HOUR0 + p*6 s + 0.5 s.
    firsts = {p.partition: p.not_held for p in report.partitions}
    for partition, gap in firsts.items():
        first = HOUR0 + timedelta(seconds=partition * STEP_S + 0.5)
        assert gap == [at(-60).isoformat(), first.isoformat()]
    assert report.not_held == [at(-60).isoformat(), (HOUR0 + timedelta(seconds=2 * STEP_S + 0.5)).isoformat()]
    assert report.restore_instead["target"] == "/backups/pg_dump/newest"
    assert "/backups/pg_dump/newest" in report.summary() and "no longer holds" in report.summary()


def test_a_time_without_a_zone_is_refused_at_trigger(airflow_db):
    from airflow.sdk.exceptions import ParamValidationError

    dag = load_repo_dag("recover_bronze")
    for name in ("start", "end"):
        conf = {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", name: "2026-12-01T10:30:00"}
        with pytest.raises(ParamValidationError, match=f"^Invalid input for param {name}:"):
            dag.test(run_conf=conf)
