"""Benchmark: consumer lag of 50 groups over 600 partitions on the sandbox broker (Tansu).

The batched reader (streamflow_ops.kafka.probes: one list_consumer_group_offsets per group, all in flight
together, one metadata request and one list_offsets for every partition) against the naive loop (a
Consumer per group, Consumer.committed + get_watermark_offsets per partition).
Goal: batched >= 10x faster than naive and < 5 s in total. Writes bench/results/kafka_lag.md and .json.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

TOPICS = 20
PARTITIONS = 30  # 20 x 30 = 600 partitions
GROUPS = 50
TOPICS_PER_GROUP = 2  # each group reads 60 partitions: 3,000 group-partitions in all
MESSAGES_PER_PARTITION = 20
PREFIX = "bench-lag"
RESULTS = Path(__file__).parent / "results"
GOAL_SPEEDUP, GOAL_SECONDS = 10.0, 5.0


def _topics() -> list[str]:
    return [f"{PREFIX}-{i:02d}" for i in range(TOPICS)]


def _group_topics() -> dict[str, list[str]]:
    topics = _topics()
    return {f"{PREFIX}-group-{g:02d}": [topics[(g + k) % TOPICS] for k in range(TOPICS_PER_GROUP)]
            for g in range(GROUPS)}


def _prepare(bootstrap: str) -> None:
    """Topics with known data and one commit per group and partition (idempotent)."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in _topics() if t not in existing]
    for future in (admin.create_topics(missing).values() if missing else ()):
        future.result(30)
    if missing:
        # One message per request: Tansu miscounts the high watermark of batched produces.
        producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
        for topic in _topics():
            for partition in range(PARTITIONS):
                for i in range(MESSAGES_PER_PARTITION):
                    producer.produce(topic, value=b"%d" % i, partition=partition)
                    producer.poll(0)
        producer.flush(120)
    for n, (group, topics) in enumerate(_group_topics().items()):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            consumer.commit(offsets=[TopicPartition(t, p, (n + p) % MESSAGES_PER_PARTITION)
                                     for t in topics for p in range(PARTITIONS)], asynchronous=False)
        finally:
            consumer.close()


def _naive(bootstrap: str) -> dict[str, int]:
    """The loop people write first: a consumer per group, two round trips per partition."""
    from confluent_kafka import Consumer, TopicPartition

    totals = {}
    for group, topics in _group_topics().items():
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            total = 0
            for topic in topics:
                for partition in range(PARTITIONS):
                    tp = TopicPartition(topic, partition)
                    [committed] = consumer.committed([tp], timeout=10)
                    _, high = consumer.get_watermark_offsets(tp, timeout=10)
                    total += max(0, high - committed.offset) if committed.offset >= 0 else 0
            totals[group] = total
        finally:
            consumer.close()
    return totals


def main() -> dict:
    from sandbox import connections, kafka
    from sandbox.proc import Layout

    layout = Layout.from_env()
    was_running = kafka.status(layout).split(":", 1)[1].strip().startswith("running")
    kafka.start(layout)
    try:
        bootstrap = kafka.bootstrap(layout)
        os.environ["AIRFLOW_CONN_STREAMFLOW_KAFKA"] = connections.airflow_env(layout)["AIRFLOW_CONN_STREAMFLOW_KAFKA"]
        from streamflow_ops.kafka.probes import admin_client, read_group_offsets

        started = time.perf_counter()
        _prepare(bootstrap)
        prepare_s = time.perf_counter() - started
        admin = admin_client("streamflow_kafka")
        groups = list(_group_topics())
        read_group_offsets(admin, groups, 10)  # warm-up: connections and metadata cache
        batched_runs, reads = [], {}
        for _ in range(5):
            started = time.perf_counter()
            reads = read_group_offsets(admin, groups, 10)
            batched_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        naive_totals = _naive(bootstrap)
        naive_s = time.perf_counter() - started
    finally:
        if not was_running:
            kafka.stop(layout)

    batched_totals = {g: r.total_lag for g, r in reads.items()}
    batched_s = statistics.median(batched_runs)
    pairs = sum(len(r.samples) for r in reads.values())
    report = {
        "broker": "Tansu 0.6.0 (memory storage), loopback", "groups": GROUPS, "partitions": TOPICS * PARTITIONS,
        "topics": TOPICS, "group_partitions": pairs, "prepare_s": round(prepare_s, 1),
        "batched_median_s": round(batched_s, 4), "batched_runs_s": [round(r, 4) for r in batched_runs],
        "naive_s": round(naive_s, 2), "speedup": round(naive_s / batched_s, 1),
        "same_answer": batched_totals == naive_totals, "total_lag": sum(batched_totals.values()),
        "goal": f">= {GOAL_SPEEDUP:.0f}x faster than naive and < {GOAL_SECONDS:.0f} s",
        "goal_met": naive_s / batched_s >= GOAL_SPEEDUP and batched_s < GOAL_SECONDS,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kafka_lag.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "kafka_lag.md").write_text(f"""# Kafka consumer lag: batched reader vs naive loop

{report['groups']} consumer groups, {report['partitions']} partitions ({TOPICS} topics x {PARTITIONS}); each group
has committed offsets on {TOPICS_PER_GROUP} topics, so {pairs:,} group-partitions are measured.
Broker: {report['broker']}. Machine: {report['machine']}.

| approach | calls | time |
|---|---|---|
| batched reader (`read_group_offsets`) | {GROUPS} offset fetches in flight together + 1 metadata + 1 `list_offsets` | {batched_s:.3f} s (median of 5: {', '.join(f'{r:.3f}' for r in batched_runs)}) |
| naive loop (`Consumer.committed` + `get_watermark_offsets` per partition) | {2 * pairs:,} round trips | {naive_s:.2f} s |

Speed-up: **{report['speedup']}x**; both give the same lag per group: {report['same_answer']}
(total lag {report['total_lag']:,}). Goal {report['goal']}: **{'met' if report['goal_met'] else 'NOT met'}**.
Tansu held all 600 partitions. Preparing the data (topics, {TOPICS * PARTITIONS * MESSAGES_PER_PARTITION:,} messages,
commits) took {report['prepare_s']} s and is not part of either time.
""")
    print((RESULTS / "kafka_lag.md").read_text())
    return report


if __name__ == "__main__":
    main()
