"""kafka.topic_layout: the evaluator on metadata, and the family against Tansu with topics of known layout."""
from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from sandbox import kafka as sandbox_kafka
from streamflow_ops.config import load_config
from streamflow_ops.kafka import checks, evaluators
from streamflow_ops.kafka.model import ClusterView, PartitionInfo
from streamflow_ops.results import Status
from tests.kafka.broker import create_topic, kafka_conn_env, unique


def view(**topics: tuple[int, int]) -> ClusterView:
    """topic -> (partitions, replication factor), as a broker's metadata would describe it."""
    return ClusterView(brokers=3, topics={
        name: tuple(PartitionInfo(name, p, 0, tuple(range(rf)), tuple(range(rf))) for p in range(parts))
        for name, (parts, rf) in topics.items()})


@pytest.mark.parametrize("layout, expected", [((3, 1), Status.OK), ((2, 1), Status.WARNING),
                                              ((6, 1), Status.WARNING), ((3, 3), Status.WARNING)])
def test_layout_against_the_runbooks_three_partitions_replication_one(layout, expected):
    [result] = evaluators.topic_layout(view(**{"transactions.raw": layout}), ["transactions.raw"], 3, 1)
    assert result.status is expected and result.subject == "transactions.raw"
    assert result.value == layout[0] and f"{layout[0]} partitions, replication factor {layout[1]}" in result.message
    if expected is Status.WARNING:
        assert "(expected 3 partitions, replication factor 1)" in result.message
        assert "kafka-topics.sh --describe" in result.message  # the runbook's first step


def test_layout_is_configurable_and_a_missing_topic_is_left_to_topics_present():
    results = {r.subject: r for r in evaluators.topic_layout(view(a=(6, 3)), ["a", "b"], 6, 3)}
    assert results["a"].status is Status.OK
    assert results["b"].status is Status.UNKNOWN and "kafka.topics_present" in results["b"].message


@pytest.mark.kafka
def test_topic_layout_on_tansu(kafka_service, monkeypatch):
    bootstrap = sandbox_kafka.bootstrap(kafka_service)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", kafka_conn_env(bootstrap))
    three, two, missing = create_topic(bootstrap, 3, "layout"), create_topic(bootstrap, 2, "layout"), unique("gone")
    config = load_config({"kafka": {"topics": [three, two, missing], "consumer_groups": []}})
    results = {r.subject: r for r in checks.run_checks(config) if r.check_name == "kafka.topic_layout"}

    # What the broker itself says, read with a plain AdminClient.
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    for topic in (three, two):
        partitions = metadata[topic].partitions
        factors = {len(p.replicas) for p in partitions.values()}
        want = Status.OK if (len(partitions), factors) == (3, {1}) else Status.WARNING
        assert results[topic].status is want and results[topic].value == len(partitions)
    assert results[three].status is Status.OK and results[two].status is Status.WARNING
    assert results[missing].status is Status.UNKNOWN
    assert results[two].runbook == "Service Health Checks > 1. Kafka Cluster (streamflow-kafka namespace)"
