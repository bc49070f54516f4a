"""kafka.* checks and the lag reader against Tansu, a real Kafka-protocol broker, with samples in PostgreSQL.

Every test makes its own topics and groups; only the broker (and its seeded sandbox topics) is shared.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from streamflow_ops import registry
from streamflow_ops.config import load_config
from streamflow_ops.kafka import checks
from streamflow_ops.kafka.probes import LagReadError, admin_client, read_group_offsets
from streamflow_ops.results import Status

from sandbox import kafka as sandbox_kafka
from sandbox.proc import Layout
from tests.kafka.broker import commit, create_topic, kafka_conn_env, produce, unique

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
# Every kafka.* check the registry declares: a check added to the family is expected here too.
KAFKA_CHECKS = {spec.name for spec in registry.family_specs("kafka")}


@pytest.fixture
def bootstrap(kafka_service, warehouse_db, monkeypatch) -> str:
    address = sandbox_kafka.bootstrap(kafka_service)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", kafka_conn_env(address))
    return address


def lag_results(results) -> dict:
    return {r.subject: r for r in results if r.check_name == "kafka.consumer_lag"}


def test_known_lags_land_in_the_runbook_bands(bootstrap, warehouse_db):
    topic = create_topic(bootstrap, prefix="bands")
    ends = {0: 6_700, 1: 6_700, 2: 6_700}
    produce(bootstrap, topic, ends)
    expected = {0: Status.OK, 500: Status.OK, 5_000: Status.WARNING, 20_000: Status.CRITICAL}
    groups = {lag: unique(f"bands-{lag}") for lag in expected}
    for lag, group in groups.items():
        share = [lag // 3, lag // 3, lag - 2 * (lag // 3)]
        commit(bootstrap, group, topic, {p: ends[p] - share[p] for p in ends})

    results = checks.run_checks(load_config({"kafka": {"consumer_groups": list(groups.values())}}))

    others = [r for r in results if r.check_name != registry.KAFKA_CONSUMER_LAG.name]
    assert {r.check_name for r in others} == KAFKA_CHECKS - {registry.KAFKA_CONSUMER_LAG.name}
    assert {(r.check_name, r.subject): r.message for r in others if r.status is not Status.OK} == {}
    lags = lag_results(results)
    for lag, group in groups.items():
        assert (lags[group].status, lags[group].value) == (expected[lag], lag), lags[group].message
        assert lags[group].details["per_topic_lag"] == {topic: lag}
    with psycopg.connect(warehouse_db) as conn:
        stored = conn.execute("select count(*) from ops.kafka_offset_samples where topic = %s", [topic]).fetchone()[0]
    assert stored == 4 * 3


# (produce per step, commit per step) on a one-partition topic; samples 10 minutes apart.
SCENARIOS = {
    "stalled": ([{0: 1_500}, {0: 300}, {0: 300}], [{0: 100}, {}, {}], Status.CRITICAL),
    "growing": ([{0: 300}, {0: 300}, {0: 300}], [{0: 100}, {0: 300}, {0: 500}], Status.WARNING),
    "idle": ([{0: 600}, {}, {}], [{0: 100}, {}, {}], Status.OK),
    "rewind": ([{0: 1_000}, {}, {}], [{0: 800}, {0: 900}, {0: 400}], Status.WARNING),
}


@pytest.mark.parametrize("rule", SCENARIOS)
def test_window_rules_over_stored_samples(bootstrap, rule):
    topic, group = create_topic(bootstrap, partitions=1, prefix=rule), unique(rule)
    config = load_config({"kafka": {"consumer_groups": [group]}})
    start = datetime.now(timezone.utc) - timedelta(minutes=30)
    produced, commits, status = SCENARIOS[rule]
    for step, (to_produce, to_commit) in enumerate(zip(produced, commits, strict=True)):
        produce(bootstrap, topic, to_produce)
        if to_commit:
            commit(bootstrap, group, topic, to_commit)
        result = lag_results(checks.run_checks(config, now=start + timedelta(minutes=10 * step)))[group]
    assert result.status is status, result.message
    assert rule in result.details["rules"] and result.details["window_samples"] == 3
    assert f"{rule}:" in result.message


def test_uncommitted_partitions_deleted_topics_and_empty_groups(bootstrap):
    kept, dropped = create_topic(bootstrap, prefix="kept"), create_topic(bootstrap, prefix="dropped")
    produce(bootstrap, kept, {0: 10, 1: 10, 2: 10})
    produce(bootstrap, dropped, {0: 10})
    group, empty = unique("partial"), unique("never-committed")
    commit(bootstrap, group, kept, {0: 5})
    commit(bootstrap, group, dropped, {0: 1})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([dropped])[dropped].result(10)

    lags = lag_results(checks.run_checks(load_config({"kafka": {"consumer_groups": [group, empty]}})))

    # Real Kafka keeps a deleted topic's commits (reported, not counted); Tansu drops them. Which one this
    # broker does is asked here, straight from the broker: the report must say exactly that.
    [listing] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    still_committed = {tp.topic for tp in listing.result(10).topic_partitions if tp.offset >= 0} - {kept}
    assert still_committed <= {dropped}
    assert lags[group].value == 5 and lags[group].details["per_topic_lag"] == {kept: 5}
    assert lags[group].details["uncommitted_partitions"] == [f"{kept}[1]", f"{kept}[2]"]
    assert lags[group].details["deleted_topics"] == sorted(still_committed)
    assert lags[empty].status is Status.WARNING and "no committed offsets" in lags[empty].message


def test_missing_connection_skips_every_check(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", raising=False)
    results = checks.run_checks(load_config())
    assert {r.status for r in results} == {Status.SKIPPED} and len(results) == len(checks.FAMILY.specs)


@pytest.fixture
def private_broker(tmp_path, monkeypatch, sandbox_layout):
    """A Tansu of this test's own (the shared one must keep running for the others)."""
    layout = Layout(root=tmp_path, port_base=sandbox_layout.port_base + 5)
    sandbox_kafka.start(layout)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", kafka_conn_env(sandbox_kafka.bootstrap(layout), 2000))
    yield layout
    sandbox_kafka.stop(layout)


def test_broker_stopped_mid_read_is_unknown_or_critical_never_an_exception(private_broker, warehouse_db):
    config = load_config({"kafka": {"consumer_groups": [sandbox_kafka.GROUP], "request_timeout_s": 2}})
    admin = admin_client(config.kafka.conn_id)
    before = read_group_offsets(admin, [sandbox_kafka.GROUP], 2)[sandbox_kafka.GROUP]
    assert before.total_lag == sandbox_kafka.KNOWN_LAG

    sandbox_kafka.stop(private_broker)

    with pytest.raises(LagReadError, match="cannot read"):
        read_group_offsets(admin, [sandbox_kafka.GROUP], 2)
    [mid_read] = checks.consumer_lag(config, admin, datetime.now(timezone.utc))
    assert mid_read.status is Status.UNKNOWN and "lag unknown" in mid_read.message
    results = checks.run_checks(config)
    down = registry.KAFKA_BROKER_REACHABLE.name
    assert {(r.check_name, r.status) for r in results} == {
        (name, Status.CRITICAL if name == down else Status.UNKNOWN) for name in KAFKA_CHECKS}
    assert "KafkaBrokerDown" in results[0].message
    assert checks.broker_reachable(config).status is Status.CRITICAL
