"""flink.* evaluators on REST payloads captured from the sandbox's Flink 2.3 (tests/flink/capture_payloads.py).

Where a band needs a payload the cluster cannot produce in a test's time (a 31-minute-old checkpoint,
high backpressure, a RESTARTING job), the test shifts `now` or edits one field of a real payload here.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streamflow_ops.config import FlinkConfig
from streamflow_ops.flink import evaluators as ev
from streamflow_ops.results import Status
from tests.fakes.payloads import load

CFG = FlinkConfig()
NAMES = load("flink", "capture_names")
HEALTHY = "FraudDetectionJob"


def fl(name):
    return load("flink", name)


def overview_job(name: str) -> dict:
    return ev.select_job(fl("jobs_overview")["jobs"], name)


def at_ms(ms: float, plus_s: float = 0) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc) + timedelta(seconds=plus_s)


# --- flink.job_running ------------------------------------------------------------------------------

def test_running_job_is_ok():
    result = ev.evaluate_job_running(fl("jobs_overview")["jobs"], HEALTHY)
    assert result.status is Status.OK and result.details["job_id"] == NAMES["healthy_id"]
    assert result.subject == HEALTHY and result.runbook == "Alert Response Procedures > Alert: FlinkJobNotRunning"


def test_several_jobs_with_the_name_the_newest_live_one_is_judged():
    result = ev.evaluate_job_running(fl("jobs_overview")["jobs"], NAMES["twice"])
    assert result.status is Status.OK
    assert result.details["job_id"] == NAMES["second_id"]  # not the older CANCELED run
    assert "2 jobs with this name" in result.message


def test_only_ended_runs_left_the_newest_is_reported_critical():
    jobs = [j for j in fl("jobs_overview")["jobs"] if j["jid"] != NAMES["second_id"]]
    result = ev.evaluate_job_running(jobs, NAMES["twice"])
    assert (result.status, result.details["state"]) == (Status.CRITICAL, "CANCELED")
    assert "FlinkJobNotRunning" in result.message and f"/jobs/{NAMES['first_id']}/exceptions" in result.message


def test_absent_job_is_critical_and_lists_what_runs():
    result = ev.evaluate_job_running(fl("jobs_overview")["jobs"], "NoSuchJob")
    assert result.status is Status.CRITICAL
    assert "no job named NoSuchJob" in result.message and HEALTHY in result.message


@pytest.mark.parametrize("state, expected", [("RESTARTING", Status.WARNING), ("INITIALIZING", Status.WARNING),
                                             ("FAILING", Status.CRITICAL), ("FAILED", Status.CRITICAL)])
def test_other_states(state, expected):
    jobs = fl("jobs_overview")["jobs"]
    next(j for j in jobs if j["name"] == HEALTHY)["state"] = state
    assert ev.evaluate_job_running(jobs, HEALTHY).status is expected


# --- flink.checkpoint_age -----------------------------------------------------------------------------

@pytest.mark.parametrize("age_s, expected", [(2, Status.OK), (599, Status.OK), (600, Status.WARNING),
                                             (1799, Status.WARNING), (1800, Status.CRITICAL),
                                             (7200, Status.CRITICAL)])
def test_checkpoint_age_bands_on_the_healthy_jobs_payload(age_s, expected):
    checkpoints = fl("checkpoints_healthy")
    acked = checkpoints["latest"]["completed"]["latest_ack_timestamp"]
    result = ev.evaluate_checkpoint_age(overview_job(HEALTHY), checkpoints, HEALTHY, CFG, at_ms(acked, age_s))
    assert result.status is expected
    assert result.value == pytest.approx(age_s, abs=0.1)
    assert f"last completed checkpoint {checkpoints['latest']['completed']['id']} was" in result.message


def test_stale_checkpoint_message_points_at_the_checkpoint_page():
    checkpoints = fl("checkpoints_healthy")
    acked = checkpoints["latest"]["completed"]["latest_ack_timestamp"]
    result = ev.evaluate_checkpoint_age(overview_job(HEALTHY), checkpoints, HEALTHY, CFG, at_ms(acked, 1900))
    assert result.message.startswith("FlinkCheckpointFailing: last completed checkpoint")
    assert "32 min ago" in result.message and f"/jobs/{NAMES['healthy_id']}/checkpoints" in result.message


@pytest.mark.parametrize("running_s, expected, fragment", [
    (30, Status.OK, "its first checkpoint is still due"),
    (11 * 60, Status.WARNING, "the job started 11 min ago"),
    (31 * 60, Status.CRITICAL, "the job started 31 min ago"),
])
def test_job_that_never_completed_a_checkpoint_escalates_with_its_run_time(running_s, expected, fragment):
    job = overview_job(NAMES["expiring"])
    result = ev.evaluate_checkpoint_age(job, fl("checkpoints_expiring"), NAMES["expiring"], CFG,
                                        at_ms(job["start-time"], running_s))
    assert result.status is expected and fragment in result.message
    assert "no completed checkpoint ever" in result.message and result.value is None
    if expected is not Status.OK:
        assert "latest failure: checkpoint 3: Checkpoint expired before completing." in result.message


def test_no_job_means_nothing_is_checkpointed():
    result = ev.evaluate_checkpoint_age(None, None, "NoSuchJob", CFG, datetime.now(timezone.utc))
    assert result.status is Status.CRITICAL and "no job named NoSuchJob" in result.message


# --- flink.checkpoint_failures --------------------------------------------------------------------------

def test_start_up_failure_of_a_healthy_job_is_ignored():
    checkpoints = fl("checkpoints_healthy")
    assert checkpoints["counts"]["failed"] == 1 and checkpoints["latest"]["failed"] is None  # as Flink reports it
    result = ev.evaluate_checkpoint_failures(overview_job(HEALTHY), checkpoints, fl("checkpoints_config_healthy"),
                                             HEALTHY)
    assert result.status is Status.OK
    assert "no failed checkpoint since checkpoint" in result.message and "1 failed in total" in result.message


def test_expiring_checkpoints_warn_and_quote_flinks_message():
    result = ev.evaluate_checkpoint_failures(overview_job(NAMES["expiring"]), fl("checkpoints_expiring"),
                                             fl("checkpoints_config_expiring"), NAMES["expiring"])
    assert result.status is Status.WARNING
    assert result.value == 3  # the three FAILED entries of the history; the start-up one has none
    assert '"Checkpoint expired before completing."' in result.message
    assert "(checkpoint timeout 3 s)" in result.message and "none ever completed" in result.message
    assert f"/jobs/{NAMES['expiring_id']}/checkpoints/details/3" in result.message
    assert result.details["failure_message"] == "Checkpoint expired before completing."


def test_failure_older_than_the_last_completed_checkpoint_is_history():
    checkpoints = fl("checkpoints_healthy")
    checkpoints["latest"]["failed"] = fl("checkpoints_expiring")["latest"]["failed"]  # id 3 < completed id
    result = ev.evaluate_checkpoint_failures(overview_job(HEALTHY), checkpoints, None, HEALTHY)
    assert result.status is Status.OK


def test_failure_after_the_last_completed_checkpoint_warns():
    checkpoints = fl("checkpoints_healthy")
    failed = fl("checkpoints_expiring")["latest"]["failed"]
    failed["id"] = checkpoints["latest"]["completed"]["id"] + 1
    checkpoints["latest"]["failed"] = failed
    result = ev.evaluate_checkpoint_failures(overview_job(HEALTHY), checkpoints, None, HEALTHY)
    assert result.status is Status.WARNING and "since the last completed checkpoint" in result.message


def test_failures_of_an_absent_job_are_unknown():
    assert ev.evaluate_checkpoint_failures(None, None, None, "NoSuchJob").status is Status.UNKNOWN


# --- flink.backpressure ----------------------------------------------------------------------------

def vertices() -> list[dict]:
    return fl("job_healthy")["vertices"]


def test_sampled_vertices_without_backpressure_are_ok():
    samples = {v["id"]: fl("backpressure_ok") for v in vertices()}
    result = ev.evaluate_backpressure(overview_job(HEALTHY), vertices(), samples, HEALTHY, 0.8)
    assert result.status is Status.OK and result.value == 0.0


def test_high_backpressure_names_the_slowest_vertex():
    source, operator = vertices()
    pressed, slow = fl("backpressure_ok"), fl("backpressure_ok")
    pressed["subtasks"][0].update(ratio=0.93, busyRatio=0.05, idleRatio=0.02)
    slow["subtasks"][0].update(ratio=0.0, busyRatio=0.97, idleRatio=0.03)
    result = ev.evaluate_backpressure(overview_job(HEALTHY), vertices(),
                                      {source["id"]: pressed, operator["id"]: slow}, HEALTHY, 0.8)
    assert result.status is Status.WARNING and result.value == 0.93
    assert f"vertex '{source['name']}' is backpressured 93%" in result.message
    assert f"slowest vertex: '{operator['name']}' (busy 97%)" in result.message


def test_exactly_at_the_threshold_is_not_a_warning():
    samples = {v["id"]: fl("backpressure_ok") for v in vertices()}
    next(iter(samples.values()))["subtasks"][0]["ratio"] = 0.8
    assert ev.evaluate_backpressure(overview_job(HEALTHY), vertices(), samples, HEALTHY, 0.8).status is Status.OK


def test_vertex_still_not_sampled_is_unknown():
    source, operator = vertices()
    samples = {source["id"]: fl("backpressure_ok"), operator["id"]: fl("backpressure_not_sampled")["body"]}
    result = ev.evaluate_backpressure(overview_job(HEALTHY), vertices(), samples, HEALTHY, 0.8)
    assert result.status is Status.UNKNOWN and operator["name"] in result.message


def test_backpressure_of_a_job_not_running_is_unknown():
    jobs = [j for j in fl("jobs_overview")["jobs"] if j["jid"] != NAMES["second_id"]]
    job = ev.select_job(jobs, NAMES["twice"])
    result = ev.evaluate_backpressure(job, [], {}, NAMES["twice"], 0.8)
    assert result.status is Status.UNKNOWN and "CANCELED" in result.message


# --- flink.taskmanagers ------------------------------------------------------------------------------

@pytest.mark.parametrize("registered, expected", [(None, Status.OK), (3, Status.OK), (0, Status.CRITICAL)])
def test_taskmanagers_against_one_expected(registered, expected):
    overview = fl("overview")
    if registered is not None:
        overview["taskmanagers"] = registered
    assert ev.evaluate_taskmanagers(overview, 1).status is expected


def test_fewer_taskmanagers_than_expected_warn():
    result = ev.evaluate_taskmanagers(fl("overview"), 2)
    assert result.status is Status.WARNING
    assert result.message.startswith("1 of 2 TaskManagers registered") and "kubectl get pods" in result.message


# --- the sensor's judgement ---------------------------------------------------------------------------

def test_freshness_by_age_and_by_trigger_time():
    checkpoints = fl("checkpoints_healthy")
    completed = checkpoints["latest"]["completed"]
    now = at_ms(completed["latest_ack_timestamp"], 5)
    assert ev.checkpoint_freshness(checkpoints, now, max_age_s=60).satisfied
    assert not ev.checkpoint_freshness(checkpoints, now, max_age_s=4).satisfied
    assert ev.checkpoint_freshness(checkpoints, now, triggered_after_ms=completed["trigger_timestamp"]).satisfied
    later = ev.checkpoint_freshness(checkpoints, now, max_age_s=60, triggered_after_ms=completed["trigger_timestamp"] + 1)
    assert (later.satisfied, later.checkpoint_id, later.age_s) == (False, completed["id"], 5.0)


def test_sensor_timeout_message_gives_age_and_failure():
    job = overview_job(NAMES["expiring"])
    never = ev.checkpoint_freshness(fl("checkpoints_expiring"), at_ms(job["start-time"], 60), max_age_s=60)
    assert not never.satisfied and never.failure_message == "Checkpoint expired before completing."
    message = ev.sensor_timeout_message(NAMES["expiring"], never, ev.describe_wanted(60, None), 125)
    assert message.startswith(f"no completed checkpoint of {NAMES['expiring']} younger than 60 s after 2 min: "
                              f"no completed checkpoint at all; latest failure: Checkpoint expired before completing.")
    checkpoints = fl("checkpoints_healthy")
    stale = ev.checkpoint_freshness(checkpoints, at_ms(checkpoints["latest"]["completed"]["latest_ack_timestamp"], 900),
                                    max_age_s=600)
    assert f"last completed checkpoint {stale.checkpoint_id} is 15 min old" in ev.sensor_timeout_message(
        HEALTHY, stale, "younger than 10 min", 60)
