"""flink.* checks, the REST probe and FlinkCheckpointAgeSensor against the sandbox's real Flink 2.3 cluster.

The shared FraudDetectionJob stays healthy: destructive scenarios run a job of their own (tests/flink/jobs.py)
and point the checks at it through the config's job_name.
"""
from __future__ import annotations

import asyncio
import importlib
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from streamflow_ops.config import load_config
from streamflow_ops.flink.checks import FAMILY, job_running, run_checks
from streamflow_ops.flink.sensors import FlinkCheckpointAgeSensor
from streamflow_ops.flink.triggers import FlinkCheckpointTrigger
from streamflow_ops.results import Status
from tests.fakes.http_api import FakeApi, http_connection, unused_port
from tests.fakes.payloads import load
from tests.flink.jobs import EXPIRING, failed_checkpoints, own_job

SANDBOX = {"expected_taskmanagers": 1}

CHECKS = [spec.name for spec in FAMILY.specs]


def config(**flink):
    return load_config({"flink": {**SANDBOX, **flink}})


def by_name(results) -> dict:
    return {r.check_name: r for r in results}


def first_event(trigger: FlinkCheckpointTrigger) -> dict:
    async def wait() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")
    return asyncio.run(wait())


# --- no cluster needed --------------------------------------------------------------------------------

def test_undefined_connection_skips_every_check(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_FLINK", raising=False)
    results = run_checks(config())
    assert [r.check_name for r in results] == list(CHECKS)
    assert {r.status for r in results} == {Status.SKIPPED}
    assert "'streamflow_flink' is not defined" in results[0].message


def test_unreachable_rest_api_is_unknown_with_the_url(monkeypatch):
    port = unused_port()
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(f"http://127.0.0.1:{port}"))
    results = run_checks(config())
    assert {r.status for r in results} == {Status.UNKNOWN}
    for result in results:
        assert f"127.0.0.1:{port}/" in result.message and "no answer" in result.message, result.message
    assert job_running(config()).status is Status.UNKNOWN


def test_http_errors_and_non_json_are_unknown_with_url_and_status(monkeypatch):
    with FakeApi() as api:
        api.route("GET", "/jobs/overview", b"<html>502 Bad Gateway</html>")
        api.route("GET", "/overview", (503, {"errors": ["Service temporarily unavailable due to an ongoing "
                                                        "leader election. Please refresh."]}))
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(api.url))
        results = by_name(run_checks(config()))
        assert len(api.calls("GET", "/overview")) == 2  # one retry after a 5xx
    assert {r.status for r in results.values()} == {Status.UNKNOWN}
    assert f"GET {api.url}/jobs/overview -> HTTP 200 but not JSON" in results["flink.job_running"].message
    assert f"GET {api.url}/overview -> HTTP 503" in results["flink.taskmanagers"].message
    assert "leader election" in results["flink.taskmanagers"].message


def test_backpressure_not_sampled_is_polled_once_more_then_unknown(monkeypatch):
    """Flink 2.3 answers 500 NoSuchElementException (or status "deprecated") before the first sample."""
    job = load("flink", "job_healthy")
    running = [{**j, "jid": job["jid"]} for j in load("flink", "jobs_overview")["jobs"] if j["jid"] == job["jid"]]
    not_sampled = load("flink", "backpressure_no_value_500")
    sampled_later = {"n": 0}

    def source(_request):
        sampled_later["n"] += 1
        return (200, load("flink", "backpressure_ok")) if sampled_later["n"] > 1 else (500, not_sampled["body"])

    source_id, operator_id = (v["id"] for v in job["vertices"])
    with FakeApi() as api:
        api.route("GET", "/jobs/overview", {"jobs": running})
        api.route("GET", f"/jobs/{job['jid']}", job)
        api.route("GET", f"/jobs/{job['jid']}/vertices/{source_id}/backpressure", source)
        api.route("GET", f"/jobs/{job['jid']}/vertices/{operator_id}/backpressure",
                  load("flink", "backpressure_not_sampled")["body"])
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(api.url))
        result = by_name(run_checks(config(backpressure_resample_wait_s=0.1)))["flink.backpressure"]
        assert len(api.calls("GET", f".*/{source_id}/backpressure")) == 2
        assert len(api.calls("GET", f".*/{operator_id}/backpressure")) == 2
    assert result.status is Status.UNKNOWN
    assert result.message.startswith("backpressure not sampled for card-totals -> discard: Writer after a second poll")
    assert result.details["backpressure"] == {"Source: transactions": 0.0}


def test_trigger_survives_a_serialise_round_trip():
    trigger = FlinkCheckpointTrigger(job_name="FraudDetectionJob", started=1_799_999_000.25,
                                     deadline=1_800_000_000.5, max_age_s=600,
                                     triggered_after_ms=1_799_999_000_000, flink_conn_id="flink_x", poll_interval=5,
                                     request_timeout_s=4, connect_timeout_s=2)
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert classpath == "streamflow_ops.flink.triggers.FlinkCheckpointTrigger"


@pytest.mark.parametrize("kwargs, param", [({"max_age_s": 0}, "max_age_s"), ({"max_age_s": "soon"}, "max_age_s"),
                                           ({"job_name": " "}, "job_name"), ({"max_age_s": None}, "new_checkpoint")])
def test_bad_sensor_parameters_fail_before_any_read(kwargs, param):
    with pytest.raises(AirflowFailException, match=param):
        FlinkCheckpointAgeSensor(task_id="fresh", flink_conn_id="nowhere", **kwargs).execute({})


# --- the real cluster ------------------------------------------------------------------------------

@pytest.fixture
def flink_rest(flink_service, sandbox_connections):
    return flink_service


@pytest.mark.flink
def test_healthy_job_is_ok_on_every_check(flink_rest):
    results = run_checks(config())
    assert [r.check_name for r in results] == list(CHECKS)
    assert {r.check_name: r.status for r in results} == dict.fromkeys(CHECKS, Status.OK), \
        "\n".join(r.message for r in results)
    checks = by_name(results)
    assert checks["flink.checkpoint_age"].value < 60
    assert checks["flink.taskmanagers"].value == 1
    assert set(checks["flink.backpressure"].details["backpressure"]) == {"Source: transactions",
                                                                        "card-totals -> discard: Writer"}


@pytest.mark.flink
def test_cancelled_job_is_critical(flink_rest):
    with own_job(flink_rest, "cancel") as (name, job_id):
        assert job_running(config(job_name=name)).status is Status.OK
    result = job_running(config(job_name=name))
    assert result.status is Status.CRITICAL
    assert result.message.startswith(f"FlinkJobNotRunning: {name} ({job_id}) is CANCELED")
    assert by_name(run_checks(config()))["flink.job_running"].status is Status.OK  # the shared job is untouched


@pytest.mark.flink
def test_job_whose_checkpoints_expire_warns_and_escalates_with_time(flink_rest):
    with own_job(flink_rest, "expiring", **EXPIRING) as (name, _job_id):
        failed_checkpoints(flink_rest, _job_id, at_least=2)
        now = datetime.now(timezone.utc)
        results = {shift: by_name(run_checks(config(job_name=name), now=now + timedelta(minutes=shift)))
                   for shift in (0, 11, 31)}
    assert results[0]["flink.job_running"].status is Status.OK  # RUNNING all along: the dangerous case
    failures = results[0]["flink.checkpoint_failures"]
    assert failures.status is Status.WARNING and failures.value >= 2
    assert '"Checkpoint expired before completing."' in failures.message and "checkpoint timeout 3 s" in failures.message
    age = {shift: r["flink.checkpoint_age"] for shift, r in results.items()}
    assert [age[s].status for s in (0, 11, 31)] == [Status.OK, Status.WARNING, Status.CRITICAL]
    assert "its first checkpoint is still due" in age[0].message
    assert "Checkpoint expired before completing." in age[31].message


@pytest.mark.flink
def test_trigger_is_satisfied_by_a_new_checkpoint(flink_rest):
    started_ms = time.time() * 1000
    event = first_event(FlinkCheckpointTrigger(job_name="FraudDetectionJob", started=time.time(),
                                               deadline=time.time() + 60,
                                               triggered_after_ms=started_ms, poll_interval=1))
    assert event["status"] == "success"
    fresh = event["freshness"]
    checkpoints = load_checkpoints(flink_rest, "FraudDetectionJob")
    triggered = next(h["trigger_timestamp"] for h in checkpoints["history"] if h["id"] == fresh["checkpoint_id"])
    assert triggered >= started_ms


def load_checkpoints(layout, job_name: str) -> dict:
    from tests.flink.jobs import rest

    jid = next(j["jid"] for j in rest(layout, "/jobs/overview")["jobs"]
               if j["name"] == job_name and j["state"] == "RUNNING")
    return rest(layout, f"/jobs/{jid}/checkpoints")


@pytest.mark.flink
def test_poke_mode_sensor_waits_for_a_checkpoint_from_now_on(flink_rest):
    sensor = FlinkCheckpointAgeSensor(task_id="fresh", new_checkpoint=True, max_age_s=None, deferrable=False,
                                      poke_interval=1, timeout=60)
    started_ms = time.time() * 1000
    xcom = sensor.execute({})
    assert xcom["satisfied"] and xcom["checkpoint_id"] >= 1
    checkpoints = load_checkpoints(flink_rest, "FraudDetectionJob")
    assert next(h["trigger_timestamp"] for h in checkpoints["history"] if h["id"] == xcom["checkpoint_id"]) >= started_ms


@pytest.mark.flink
def test_sensor_times_out_with_age_and_failure_when_checkpoints_stop(flink_rest):
    with own_job(flink_rest, "stalled", **EXPIRING) as (name, job_id):
        failed_checkpoints(flink_rest, job_id, at_least=1)
        event = first_event(FlinkCheckpointTrigger(job_name=name, started=time.time(), deadline=time.time() + 3,
                                                   max_age_s=60, poll_interval=1))
        assert event["status"] == "timeout" and event["error"] is None
        sensor = FlinkCheckpointAgeSensor(task_id="fresh", job_name=name, max_age_s=60)
        with pytest.raises(AirflowSensorTimeout) as deferred:
            sensor.execute_complete({}, event)
        poking = FlinkCheckpointAgeSensor(task_id="fresh", job_name=name, max_age_s=60, deferrable=False,
                                          poke_interval=1, timeout=3)
        with pytest.raises(AirflowSensorTimeout) as poked:
            poking.execute({})
    for failure in (deferred, poked):
        waited = re.match(rf"no completed checkpoint of {re.escape(name)} younger than 60 s after (\d+) s: "
                          r"no completed checkpoint at all; latest failure: Checkpoint expired before completing\.",
                          str(failure.value))
        assert waited and 3 <= int(waited[1]) <= 60, str(failure.value)  # the 3 s timeout, not forever


DAG_FILE = """
from datetime import datetime, timezone

from airflow.sdk import dag

from streamflow_ops.flink.sensors import FlinkCheckpointAgeSensor


@dag(dag_id={dag_id!r}, schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False,
     doc_md="FlinkCheckpointAgeSensor under dag.test()", tags=["test"])
def fresh_checkpoint():
    FlinkCheckpointAgeSensor(task_id="checkpointed", job_name={job_name!r}, new_checkpoint=True,
                             max_age_s=None, poke_interval=1, timeout={timeout})


the_dag = fresh_checkpoint()
"""


def sensor_dag(folder, monkeypatch, job_name: str, timeout: float):
    import uuid

    from tests.dagfiles import load_dag_file

    dag_id = f"flink_sensor_test_{uuid.uuid4().hex[:8]}"
    return load_dag_file(folder, monkeypatch, dag_id, DAG_FILE.format(dag_id=dag_id, job_name=job_name, timeout=timeout))


@pytest.mark.flink
@pytest.mark.airflow
def test_deferrable_sensor_in_a_dag_run_succeeds_on_the_next_checkpoint(flink_rest, airflow_db, tmp_path, monkeypatch):
    run = sensor_dag(tmp_path, monkeypatch, "FraudDetectionJob", timeout=60).test()
    assert run.state == "success"


@pytest.mark.flink
@pytest.mark.airflow
def test_deferrable_sensor_in_a_dag_run_fails_when_checkpoints_expire(flink_rest, airflow_db, tmp_path, monkeypatch):
    with own_job(flink_rest, "dagrun", **EXPIRING) as (name, _job_id):
        run = sensor_dag(tmp_path, monkeypatch, name, timeout=3).test()
    assert run.state == "failed"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {"checkpointed": "failed"}
