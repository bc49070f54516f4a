"""Test data on a real Kafka-protocol broker: private topics and groups per test, exact offsets."""
from __future__ import annotations

import json
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kafka_conn_env(bootstrap: str, timeout_ms: int = 5000) -> str:
    return json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap,
                                                       "socket.timeout.ms": timeout_ms}})


def create_topic(bootstrap: str, partitions: int = 3, prefix: str = "t") -> str:
    name = unique(prefix)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep it alive until the future resolves
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(10)
    return name


def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    """Append messages; one message per request, because Tansu miscounts batched produces."""
    producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    for partition, count in per_partition.items():
        for i in range(count):
            producer.produce(topic, value=b'{"n": %d}' % i, partition=partition)
            producer.poll(0)
    assert producer.flush(60) == 0


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets for a group without joining it (assign-style, like Flink's source)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()
