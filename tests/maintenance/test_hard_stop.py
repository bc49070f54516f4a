"""The window's hard stop: whatever hangs, maintenance_tasks ends by maintenance.hard_stop_minutes, and
Slack hears about it (SPEC "The window's hard stop")."""
from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from streamflow_ops.maintenance.hardstop import notify_window_failed, task_budget, window_failed_text
from tests.dagfiles import load_repo_dag_module
from tests.fakes.http_api import FakeApi

from .conftest import audit_rows, snapshot
from .test_dags import states

HARD_STOP_MIN = 0.2  # 12 s: each attempt 3 s, two 0.6 s waits


@pytest.mark.parametrize("minutes", [120, 45, HARD_STOP_MIN])
def test_every_task_fits_its_retries_inside_the_hard_stop(minutes, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"maintenance": {"hard_stop_minutes": minutes}}))
    dag = load_repo_dag_module("maintenance_tasks").build(deadline=None)
    hard_stop = timedelta(minutes=minutes)
    assert dag.dagrun_timeout == hard_stop and dag.on_failure_callback is notify_window_failed
    assert len(dag.tasks) >= 7  # preflight, three operators, the backup and housekeeping groups, report
    for task in dag.tasks:
        assert task.execution_timeout is not None and task.execution_timeout.total_seconds() >= 1, task.task_id
        # Airflow's backoff waits at most max_retry_delay: every wait is bounded, not only the first.
        assert task.max_retry_delay is not None and task.max_retry_delay <= task.retry_delay, task.task_id
        attempts = task.retries + 1
        worst = attempts * task.execution_timeout + task.retries * task.max_retry_delay
        assert worst <= hard_stop, (task.task_id, worst, hard_stop)
    if minutes == 120:  # the production figures, by hand: (120 min - 2 x 2 min) / 3 attempts
        retention = dag.get_task("bronze_retention")
        assert (retention.retries, retention.retry_delay) == (2, timedelta(minutes=2))
        assert retention.execution_timeout == timedelta(minutes=38, seconds=40)


def test_budget_keeps_a_smaller_own_timeout_and_never_goes_negative():
    assert task_budget(timedelta(minutes=120), 0, timedelta(minutes=2)).execution_timeout == timedelta(minutes=120)
    tiny = task_budget(timedelta(seconds=2), 5, timedelta(minutes=2))
    assert tiny.execution_timeout >= timedelta(seconds=1) and tiny.retry_delay == timedelta(seconds=0.04)


def test_cut_message_says_the_run_was_cut_and_where_to_look():
    text = window_failed_text("maintenance_tasks", "scheduled__x", "timed_out", timedelta(minutes=120))
    assert "scheduled__x was CUT at its hard stop (2.0 h after it started)" in text
    assert "report was not sent" in text and "'in progress'" in text
    assert text.endswith("Runbook: Maintenance Windows > Daily Maintenance (03:00 UTC)")
    assert "failed (task_failure;" in window_failed_text("maintenance_tasks", "r", "task_failure", None)


def attempts_of(ti) -> list[tuple]:
    """(try_number, start, end) of every attempt of a task instance: earlier tries, then the last one."""
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        earlier = session.execute(select(TaskInstanceHistory.try_number, TaskInstanceHistory.start_date,
                                         TaskInstanceHistory.end_date)
                                  .where(TaskInstanceHistory.dag_id == ti.dag_id,
                                         TaskInstanceHistory.run_id == ti.run_id,
                                         TaskInstanceHistory.task_id == ti.task_id)).all()
    return sorted([tuple(row) for row in earlier] + [(ti.try_number, ti.start_date, ti.end_date)])


@pytest.mark.postgres
@pytest.mark.airflow
def test_a_hung_step_is_cut_at_the_hard_stop_and_slack_is_told(warehouse_db, airflow_db, monkeypatch, tmp_path):
    """Retention hangs for real on a lock another session holds (its own lock_timeout is 10 min): each
    attempt is cut by its execution_timeout, the three attempts end inside the hard stop, nothing was
    deleted, the waiting backend is gone, and Slack hears from the failure callback."""
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({
        "maintenance": {"hard_stop_minutes": HARD_STOP_MIN},
        "retention": {"lock_timeout_s": 600, "statement_timeout_s": 600}}))
    with psycopg.connect(warehouse_db, autocommit=True) as wh, FakeApi() as slack:
        slack.route("POST", r"/.*", (200, b"ok"))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": slack.url, "password": "T000/B000/XXXX"}))
        before = snapshot(wh)
        dag = load_repo_dag_module("maintenance_tasks").build(deadline=None)
        with psycopg.connect(warehouse_db) as holder:
            holder.execute("lock table bronze.transactions in access exclusive mode")  # held until the end
            # Only the hung step and the window's own steps run; the others are not what this is about.
            dr = dag.test(run_conf={"dry_run": False},
                          mark_success_pattern=r"^(vacuum|gold_refresh|backup\..*|housekeeping\..*)$")
            waiting = wh.execute("select count(*) from pg_locks where relation = 'bronze.transactions'::regclass "
                                 "and not granted").fetchone()[0]
        ran = states(dr)
        assert dr.state == "failed" and ran["bronze_retention"] == "failed", ran
        [retention] = [ti for ti in dr.get_task_instances() if ti.task_id == "bronze_retention"]
        assert retention.try_number == 3  # every attempt cut, then no more
        budget = dag.get_task("bronze_retention").execution_timeout
        tries = attempts_of(retention)
        assert [t[0] for t in tries] == [1, 2, 3]
        # Each attempt was cut at its execution_timeout (the lock is held far longer). Their sum and the waits
        # fit the hard stop by the arithmetic above; dag.test()'s own scheduling gaps on a busy machine do not
        # count here (under the scheduler, dagrun_timeout bounds the whole run).
        assert all(budget <= end - start < budget + timedelta(seconds=5) for _, start, end in tries), tries
        assert waiting == 0  # the cut attempt's query is not left waiting on the lock
        attempts = [a for a in audit_rows(wh, "bronze_retention.delete")]
        assert [a["outcome"] for a in attempts] == ["failed"] * 3
        assert all("Timeout" in a["details"]["error"] for a in attempts)
        assert snapshot(wh) == before
    # The run went on to its report, which told Slack; the failure callback does not post it twice.
    [report] = [c.json()["text"] for c in slack.calls("POST")]
    assert "StreamFlow maintenance window" in report
    assert "maintenance.bronze_retention - step bronze_retention produced no result" in report


@pytest.mark.airflow
def test_a_cut_run_is_told_to_slack_by_the_failure_callback(airflow_db, monkeypatch):
    """Under the scheduler, dagrun_timeout ends the run with reason `timed_out` and the report never runs:
    the callback (as the scheduler calls it) posts through the real Slack hook to the stand-in."""
    dag = load_repo_dag_module("maintenance_tasks").build(deadline=None)
    with FakeApi() as slack:
        slack.route("POST", r"/.*", (200, b"ok"))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": slack.url, "password": "T000/B000/XXXX"}))
        dag.on_failure_callback({"dag": dag, "run_id": "scheduled__cut", "reason": "timed_out"})
        dag.on_failure_callback({"dag": dag, "run_id": "scheduled__red", "reason": "task_failure"})
    [told] = [c.json()["text"] for c in slack.calls("POST")]  # the task failure was the report's to tell
    assert "maintenance_tasks run scheduled__cut was CUT at its hard stop (2.0 h after it started)" in told
