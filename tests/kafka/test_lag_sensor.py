"""KafkaConsumerLagSensor and its trigger against Tansu: a real consumer catching up, or not."""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import re
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout
from confluent_kafka import Consumer, TopicPartition
from streamflow_ops.kafka.sensors import KafkaConsumerLagSensor
from streamflow_ops.kafka.triggers import KafkaConsumerLagTrigger

from sandbox import kafka as sandbox_kafka
from tests.kafka.broker import commit, create_topic, kafka_conn_env, produce, unique

pytestmark = pytest.mark.kafka
BACKLOG = 600


@pytest.fixture
def lagging_group(kafka_service, monkeypatch) -> tuple[str, str, str]:
    """(bootstrap, topic, group): a group BACKLOG messages behind on its own one-partition topic."""
    bootstrap = sandbox_kafka.bootstrap(kafka_service)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", kafka_conn_env(bootstrap))
    topic, group = create_topic(bootstrap, partitions=1, prefix="drain"), unique("drain")
    produce(bootstrap, topic, {0: BACKLOG})
    commit(bootstrap, group, topic, {0: 0})
    return bootstrap, topic, group


class CatchingUpConsumer(threading.Thread):
    """A real consumer that starts after `delay` s and commits every `step` messages until drained."""

    def __init__(self, bootstrap: str, topic: str, group: str, delay: float = 1.0, step: int = 100,
                 start_when=None) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.group, self.delay, self.step = bootstrap, topic, group, delay, step
        self.start_when = start_when or (lambda: True)

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while not self.start_when() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(self.delay)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            consumer.assign([TopicPartition(self.topic, 0, 0)])
            while consumer.consume(num_messages=self.step, timeout=2):
                consumer.commit(asynchronous=False)
                time.sleep(0.2)
        finally:
            consumer.close()


def first_event(trigger: KafkaConsumerLagTrigger) -> dict:
    async def wait() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")
    return asyncio.run(wait())


def trigger_for(group: str, seconds: float, **kwargs) -> KafkaConsumerLagTrigger:
    return KafkaConsumerLagTrigger(group_id=group, max_lag=0, deadline=time.time() + seconds, poll_interval=0.3,
                                   request_timeout_s=5, **kwargs)


def test_trigger_succeeds_when_a_background_consumer_catches_up(lagging_group):
    bootstrap, topic, group = lagging_group
    consumer = CatchingUpConsumer(bootstrap, topic, group)
    consumer.start()
    event = first_event(trigger_for(group, 60))
    consumer.join(10)
    assert event["status"] == "success" and event["lag"] == 0
    assert event["history"][0][1] == BACKLOG  # it saw the backlog before the drain


def test_trigger_times_out_and_the_sensor_says_last_lag_and_trend(lagging_group):
    _, topic, group = lagging_group
    event = first_event(trigger_for(group, 1.5, topics=[topic]))
    assert event["status"] == "timeout" and event["history"][-1][1] == BACKLOG and len(event["history"]) >= 2
    sensor = KafkaConsumerLagSensor(task_id="drain", group_id=group, topics=[topic], timeout=1.5)
    with pytest.raises(AirflowSensorTimeout) as failure:
        sensor.execute_complete({}, event)
    waited = re.search(rf"consumer group {re.escape(group)} on {re.escape(topic)} still 600 behind "
                       rf"after (\d+) s \(threshold 0\)", str(failure.value))
    assert waited and 2 <= int(waited[1]) <= 30, str(failure.value)  # the 1.5 s timeout (rounded), not forever
    assert "trend: flat" in str(failure.value)


def test_trigger_survives_a_serialise_round_trip():
    trigger = KafkaConsumerLagTrigger(group_id="g", max_lag=10, deadline=1_700_000_000.5, topics=["a", "b"],
                                      poll_interval=5, request_timeout_s=3, history=[[1.0, 20]])
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert classpath == "streamflow_ops.kafka.triggers.KafkaConsumerLagTrigger"


def test_poke_mode_fallback_times_out_with_the_same_message(lagging_group):
    _, _, group = lagging_group
    sensor = KafkaConsumerLagSensor(task_id="drain", group_id=group, deferrable=False, timeout=1, poke_interval=0.3)
    with pytest.raises(AirflowSensorTimeout, match=f"consumer group {group} still 600 behind .* trend: flat"):
        sensor.execute({})
    relaxed = KafkaConsumerLagSensor(task_id="drain", group_id=group, deferrable=False, max_lag=BACKLOG, timeout=5)
    assert relaxed.execute({}) == BACKLOG


def test_bad_threshold_fails_before_any_read():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="max_lag"):
        KafkaConsumerLagSensor(task_id="drain", group_id="g", max_lag=-1).execute({})


DAG_FILE = """
from datetime import datetime, timezone

from airflow.sdk import dag

from streamflow_ops.kafka.sensors import KafkaConsumerLagSensor


@dag(dag_id={dag_id!r}, schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False,
     doc_md="KafkaConsumerLagSensor under dag.test()", tags=["test"])
def drain():
    KafkaConsumerLagSensor(task_id="drained", group_id={group!r}, poke_interval=0.3, timeout={timeout})


the_dag = drain()
"""


def sensor_dag(folder, monkeypatch, group: str, timeout: float):
    from tests.dagfiles import load_dag_file

    dag_id = unique("lag_sensor_test").replace("-", "_")
    return load_dag_file(folder, monkeypatch, dag_id, DAG_FILE.format(dag_id=dag_id, group=group, timeout=timeout))


@pytest.mark.airflow
def test_deferrable_sensor_in_a_dag_run_succeeds_when_the_consumer_catches_up(lagging_group, airflow_db, tmp_path, monkeypatch):
    bootstrap, topic, group = lagging_group
    the_dag = sensor_dag(tmp_path, monkeypatch, group, timeout=60)
    consumer = CatchingUpConsumer(bootstrap, topic, group, start_when=lambda: deferred(the_dag.dag_id))
    consumer.start()
    run = the_dag.test()
    consumer.join(10)
    assert run.state == "success" and not consumer.is_alive()
    assert xcom(run, "drained") == 0


def deferred(dag_id: str) -> bool:
    """Has the sensor handed its wait to the trigger? (The consumer only starts draining then.)
    Read with sqlite3 from the consumer's thread: the ORM session belongs to dag.test()."""
    import sqlite3

    from airflow.configuration import conf

    path = conf.get("database", "sql_alchemy_conn").removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return db.execute("select count(*) from task_instance where dag_id = ? and next_method is not null",
                          [dag_id]).fetchone()[0] > 0


def xcom(run, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run.run_id, key="return_value", task_ids=task_id,
                                                 dag_ids=run.dag_id)).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.mark.airflow
def test_deferrable_sensor_in_a_dag_run_fails_when_nobody_consumes(lagging_group, airflow_db, tmp_path, monkeypatch):
    _, _, group = lagging_group
    run = sensor_dag(tmp_path, monkeypatch, group, timeout=2).test()
    assert run.state == "failed"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {"drained": "failed"}
