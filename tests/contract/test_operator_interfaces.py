"""The operators and sensors as a DAG author meets them: templated arguments render and are judged like
params, caller arguments are kept, every constructor argument is documented. No services needed."""
from __future__ import annotations

import inspect
import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.config import load_config
from streamflow_ops.flink.sensors import FlinkCheckpointAgeSensor
from streamflow_ops.housekeeping.metadata import MetadataCleanupOperator
from streamflow_ops.kafka.sensors import KafkaConsumerLagSensor
from streamflow_ops.maintenance.operators import BronzeRetentionOperator, GoldRefreshOperator, VacuumOperator
from streamflow_ops.params import ParamError
from tests.housekeeping.test_metadata_cleanup import IMAGE

PARAMS = {"days": 9, "size": 250, "dry": False, "tables": ["silver.fraud_alerts"], "full": True, "group": "audit",
          "lag": 500, "job": "FraudDetectionJob", "age": 120, "conn": "other_kafka"}
CONTEXT = {"params": PARAMS, "ds": "2026-03-10"}


REFERENCE = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)


def run(params: dict) -> dict:
    """A run's context as validate() reads it: params, and a logical date equal to run_after."""
    return {"params": params, "logical_date": REFERENCE, "dag_run": SimpleNamespace(run_after=REFERENCE)}


def render(op):
    op.render_template_fields(CONTEXT)
    return op


def test_maintenance_arguments_render_and_are_validated_like_params():
    config = load_config()
    op = render(BronzeRetentionOperator(task_id="r", retention_days="{{ params.days }}",
                                        batch_size="{{ params.size * 2 }}", dry_run="{{ params.dry }}"))
    run_params = {"retention_days": 7, "batch_size": 10_000, "dry_run": True}  # arguments win over these
    assert op.validate(run(run_params), config) == {"reference": REFERENCE, "retention_days": 9, "batch_size": 500}
    assert op.arg({"params": run_params}, "dry_run") is False

    op = render(VacuumOperator(task_id="v", tables="{{ params.tables }}", full="{{ params.full }}"))
    assert op.validate({"params": {}}, config) == {"tables": [("silver", "fraud_alerts")], "full": True}
    op = render(VacuumOperator(task_id="v", tables=["{{ params.tables[0] }}"]))
    assert op.validate({"params": {}}, config)["tables"] == [("silver", "fraud_alerts")]

    with pytest.raises(ParamError, match="^param 'retention_days': must be between 1 and 365, got 400$"):
        render(BronzeRetentionOperator(task_id="r", retention_days="{{ 400 }}")).validate(run({}), config)
    with pytest.raises(ParamError, match="^param 'retention_days': must be an integer, got 'seven'$"):
        render(BronzeRetentionOperator(task_id="r", retention_days="seven")).validate(run({}), config)


def test_run_params_stay_strict_where_operator_arguments_are_rendered():
    """The string "7" in a run's conf is refused (the Param schema refuses it at trigger time too)."""
    with pytest.raises(ParamError, match="^param 'retention_days': must be an integer, got '7'$"):
        BronzeRetentionOperator(task_id="r").validate(run({"retention_days": "7"}), load_config())


def test_metadata_cleanup_arguments_render_into_the_pod(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", '{"conn_type": "kubernetes"}')
    op = render(MetadataCleanupOperator(task_id="m", metadata_retention_days="{{ params.days }}",
                                        dry_run="{{ params.dry }}", namespace="ops-{{ ds }}", image=IMAGE))
    reference = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)
    settings = op.pod_settings(load_config(), {"dry_run": True}, reference)
    assert settings["namespace"] == "ops-2026-03-10" and settings["image"] == IMAGE
    assert settings["arguments"] == ["db", "clean", "--clean-before-timestamp", "2026-03-01T03:00:00+00:00",
                                     "--skip-archive", "--yes"]  # 9 days, and the argument's dry_run=False wins
    with pytest.raises(AirflowFailException, match="^kubernetes.conn_id: the Kubernetes connection 'nope'"):
        MetadataCleanupOperator(task_id="m", kubernetes_conn_id="nope", image=IMAGE).pod_settings(
            load_config(), {}, reference)


def test_sensor_arguments_render_and_callers_timeouts_are_kept():
    kafka = render(KafkaConsumerLagSensor(task_id="k", group_id="{{ params.group }}", max_lag="{{ params.lag }}",
                                          topics=["{{ params.group }}.in"], kafka_config_id="{{ params.conn }}",
                                          timeout=77, poke_interval=3, mode="reschedule"))
    kafka._validate()
    assert (kafka.group_id, kafka.max_lag, kafka.topics, kafka.kafka_config_id) == ("audit", 500, ["audit.in"],
                                                                                    "other_kafka")
    assert (kafka.timeout, kafka.poke_interval, kafka.mode) == (77, 3, "reschedule")

    flink = render(FlinkCheckpointAgeSensor(task_id="f", job_name="{{ params.job }}", max_age_s="{{ params.age }}",
                                            timeout=45, poke_interval=4))
    flink._validate()
    assert (flink.job_name, flink.max_age_s, flink.timeout, flink.poke_interval) == ("FraudDetectionJob", 120.0,
                                                                                     45, 4)
    defaults = KafkaConsumerLagSensor(task_id="d", group_id="g")
    assert defaults.poke_interval == 30  # our default only where the caller gave none


@pytest.mark.parametrize("cls", [BronzeRetentionOperator, VacuumOperator, GoldRefreshOperator, MetadataCleanupOperator,
                                 KafkaConsumerLagSensor, FlinkCheckpointAgeSensor], ids=lambda c: c.__name__)
def test_every_argument_is_documented_and_the_templated_ones_are_declared(cls):
    documented = set()
    for klass in cls.__mro__:
        documented |= set(re.findall(r":param (\w+):", klass.__doc__ or ""))
    arguments = {name for klass in cls.__mro__ if klass.__module__.startswith("streamflow_ops")
                 for name, p in inspect.signature(klass.__init__).parameters.items()
                 if p.kind == p.KEYWORD_ONLY}
    assert arguments and arguments <= documented, arguments - documented
    assert set(cls.template_fields) <= arguments


def test_window_deadline_callback_posts_to_slack(monkeypatch):
    """The window's Deadline Alert names a function the triggerer imports (not the Slack notifier, which
    would cost every parse of the DAG file ~0.25 s); awaited like the triggerer does, it posts once."""
    import asyncio
    import json

    from streamflow_ops.maintenance.deadline import notify_slack_overdue
    from tests.dagfiles import load_repo_dag_module
    from tests.fakes.http_api import FakeApi

    deadline = load_repo_dag_module("maintenance_tasks").WINDOW_DEADLINE
    assert deadline.callback.path == "streamflow_ops.maintenance.deadline.notify_slack_overdue"
    with FakeApi() as slack:
        slack.route("POST", r"/.*", (200, b"ok"))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": slack.url, "password": "T000/B000/XXXX"}))
        asyncio.run(notify_slack_overdue(**deadline.callback.kwargs, context={}))
    [post] = slack.calls("POST")
    assert post.json()["text"] == deadline.callback.kwargs["text"]
