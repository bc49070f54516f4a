"""Test DAG of tests/distributed: the package's two deferrable sensors, waiting in the triggerer.

Not a product DAG: the distributed tests add it to the Celery cluster's DAGs folder, next to dags/.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, dag

from streamflow_ops.flink.sensors import FlinkCheckpointAgeSensor
from streamflow_ops.kafka.sensors import KafkaConsumerLagSensor


@dag(dag_id="distributed_sensor_handoff", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
     catchup=False, tags=["test"], doc_md="Kafka-lag and Flink-checkpoint sensors handing off to the triggerer.",
     params={"group": Param("", type="string"), "topic": Param("", type="string")})
def distributed_sensor_handoff():
    KafkaConsumerLagSensor(task_id="kafka_lag", group_id="{{ params.group }}", topics=["{{ params.topic }}"],
                           max_lag=0, poke_interval=1, timeout=240, retries=0)
    FlinkCheckpointAgeSensor(task_id="flink_checkpoint", new_checkpoint=True, max_age_s=None, poke_interval=1,
                             timeout=240, retries=0)


distributed_sensor_handoff()
