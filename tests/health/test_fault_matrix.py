"""The fault matrix: break one thing in real local services, run every check family, and assert the
status of every check. Unbroken checks must read as in the healthy sandbox (no collateral noise).

Kafka faults use a private Tansu and the connection-count faults a private PostgreSQL with a small
max_connections (own Layouts, so the shared sandbox services are never disturbed). Kubernetes, the
Airflow API and monitoring have no connection here and must read `skipped`; their faults are covered
against local HTTP servers in their own test files.

The last test runs bench/fault_matrix.py's rows (one per runbook alert) through the whole sweep: live
pipeline, Flink, the monitoring stack, an airflow standalone, alert state and a PagerDuty stand-in.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack

import psycopg
import pytest

from sandbox import connections as sandbox_connections_env
from sandbox import flink as sandbox_flink
from sandbox import kafka as sandbox_kafka
from sandbox import postgres as sandbox_postgres
from sandbox import seed
from sandbox.proc import Layout
from streamflow_ops import sweep
from streamflow_ops.config import load_config
from streamflow_ops.results import Status
from tests.health import warehouse_state as wh

NOT_CONFIGURED = {"kubernetes", "airflow", "monitoring"}


def private_layout(sandbox_layout: Layout, name: str, offset: int) -> Layout:
    """A second service of the same kind: own folder, ports offset from the session's (no overlap)."""
    return Layout(root=sandbox_layout.root / name, port_base=sandbox_layout.port_base + offset)


def run_all(overrides: dict | None = None) -> list:
    """Every family, one after the other (the DAG runs them in parallel; the statuses are the same)."""
    config = load_config({**sandbox_connections_env.SANDBOX_CONFIG, **(overrides or {})})
    return [r for family in sweep.FAMILIES for r in sweep.run_family(family, config)]


def assert_statuses(results, faults: dict[tuple[str, str | None], Status]) -> None:
    """faults: (check_name, subject or None for every subject) -> expected; every other check is healthy."""
    def healthy(result) -> Status:
        return Status.SKIPPED if result.component in NOT_CONFIGURED else Status.OK

    wrong = []
    for r in results:
        expected = faults.get((r.check_name, r.subject), faults.get((r.check_name, None), healthy(r)))
        if r.status is not expected:
            wrong.append(f"{r.check_name}[{r.subject}]: {r.status.value}, expected {expected.value}: {r.message}")
    seen = {(r.check_name, r.subject) for r in results} | {(r.check_name, None) for r in results}
    missing = [key for key in faults if key not in seen]
    assert not wrong and not missing, "\n".join(wrong + [f"missing: {m}" for m in missing])


@pytest.fixture
def live(warehouse_db, postgres_service, kafka_service, flink_service, sandbox_connections, monkeypatch):
    """The whole sandbox, healthy: pipeline live, last night's window and backup recorded."""
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", warehouse_db)
    wh.make_live(warehouse_db)
    wh.record_window(warehouse_db, hours_ago=3)
    wh.record_backup(warehouse_db, hours_ago=3)
    return warehouse_db


def test_healthy_sandbox_has_no_warning_and_no_critical(live):
    results = run_all()
    assert_statuses(results, {})
    assert not [r for r in results if r.status in (Status.WARNING, Status.CRITICAL)]


# --- Kafka ------------------------------------------------------------------------------------------

@pytest.fixture
def private_kafka(sandbox_layout, monkeypatch):
    layout = private_layout(sandbox_layout, "private-kafka", 2)
    sandbox_kafka.start(layout)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", json.dumps({
        "conn_type": "kafka", "extra": {"bootstrap.servers": sandbox_kafka.bootstrap(layout), "socket.timeout.ms": 3000}}))
    yield layout
    sandbox_kafka.stop(layout)


def test_broker_down(live, private_kafka):
    sandbox_kafka.stop(private_kafka)
    results = run_all({"kafka": {"request_timeout_s": 3}})
    assert_statuses(results, {("kafka.broker_reachable", None): Status.CRITICAL,
                              ("kafka.topics_present", None): Status.UNKNOWN,
                              ("kafka.partition_leaders", None): Status.UNKNOWN,
                              ("kafka.under_replicated", None): Status.UNKNOWN,
                              ("kafka.topic_layout", None): Status.UNKNOWN,
                              ("kafka.consumer_lag", None): Status.UNKNOWN})


def produce(layout: Layout, per_partition: int) -> None:
    from confluent_kafka import Producer

    # One message per request: Tansu miscounts high watermarks of batched produces (Tansu 0.6.0).
    producer = Producer({"bootstrap.servers": sandbox_kafka.bootstrap(layout), "batch.num.messages": 1,
                         "linger.ms": 0})
    for partition in range(sandbox_kafka.PARTITIONS):
        for _ in range(per_partition):
            producer.produce(sandbox_kafka.GROUP_TOPIC, value=b"x", partition=partition)
            producer.poll(0)
    producer.flush(60)


@pytest.mark.parametrize("per_partition, expected", [(500, Status.WARNING), (3_500, Status.CRITICAL)])
def test_commit_lag(live, private_kafka, per_partition, expected):
    produce(private_kafka, per_partition)  # the group's committed offsets stay put: lag grows
    results = run_all()
    assert_statuses(results, {("kafka.consumer_lag", sandbox_kafka.GROUP): expected})
    lag = next(r for r in results if r.check_name == "kafka.consumer_lag")
    assert lag.value == sandbox_kafka.KNOWN_LAG + per_partition * sandbox_kafka.PARTITIONS


# --- Flink ------------------------------------------------------------------------------------------

def wait_for_checkpoint(layout: Layout, job_id: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = requests.get(f"{sandbox_flink.rest_url(layout)}/jobs/{job_id}/checkpoints", timeout=5).json()
        if counts.get("counts", {}).get("completed", 0) >= 1:
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} completed no checkpoint within {timeout:.0f} s")


def test_flink_job_cancelled(live, sandbox_layout):
    """A private job (the session's FraudDetectionJob keeps running), checkpointed, then cancelled."""
    name = "FraudDetectionJob-matrix"
    job_id = sandbox_flink.submit_job(sandbox_layout, name=name)
    wait_for_checkpoint(sandbox_layout, job_id)
    sandbox_flink.cancel_job(sandbox_layout, job_id)
    results = run_all({"flink": {"job_name": name, "expected_taskmanagers": 1}})
    assert_statuses(results, {("flink.job_running", name): Status.CRITICAL,
                              # a cancelled job has nothing to sample: unknown, and job_running says why
                              ("flink.backpressure", name): Status.UNKNOWN,
                              # its last checkpoint is seconds old and nothing failed since: still ok
                              ("flink.checkpoint_age", name): Status.OK,
                              ("flink.checkpoint_failures", name): Status.OK})


# --- PostgreSQL -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_postgres(sandbox_layout):
    """A private server with max_connections=20, seeded with a live day of data."""
    layout = private_layout(sandbox_layout, "private-pg", 1)
    sandbox_postgres.start(layout, settings={"max_connections": "20"})
    with psycopg.connect(sandbox_postgres.dsn(layout), autocommit=True) as conn:
        conn.execute("drop schema if exists bronze, silver, gold, ops cascade")
        seed.seed_warehouse(conn, days=1)
    yield sandbox_postgres.dsn(layout)
    sandbox_postgres.stop(layout)


@pytest.mark.parametrize("in_use, expected", [(16, Status.WARNING), (19, Status.CRITICAL)])
def test_connections_near_the_limit(live, small_postgres, monkeypatch, in_use, expected):
    """16 and 19 of 20 client connections (80 %, 95 %), counting the check's own."""
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", small_postgres)
    wh.make_live(small_postgres)
    wh.record_window(small_postgres, hours_ago=3)
    wh.record_backup(small_postgres, hours_ago=3)
    with psycopg.connect(small_postgres) as conn:
        assert conn.execute("show max_connections").fetchone()[0] == "20"
    with ExitStack() as held:
        for _ in range(in_use - 1):
            held.enter_context(psycopg.connect(small_postgres, autocommit=True))
        results = run_all()
    assert_statuses(results, {("postgres.connections", None): expected})
    assert next(r for r in results if r.check_name == "postgres.connections").value == in_use * 5


def test_dead_tuples(live):
    wh.bloat(live, "silver.bloated", 120_000)
    assert_statuses(run_all(), {("postgres.dead_tuples", "silver.bloated"): Status.WARNING})


@pytest.mark.parametrize("hours, expected, step", [(30, Status.WARNING, Status.WARNING),
                                                    (60, Status.CRITICAL, Status.CRITICAL),
                                                    (None, Status.CRITICAL, Status.WARNING)])  # step: never ran
def test_old_backup(live, hours, expected, step):
    """An old backup is also the window's backup step not succeeding (maintenance.last_success[backup])."""
    wh.forget_backups(live)
    if hours is not None:
        wh.record_backup(live, hours_ago=hours)
    assert_statuses(run_all(), {("postgres.backup_age", None): expected, ("maintenance.last_success", "backup"): step})


# --- business ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("minutes, expected", [(10, Status.WARNING), (20, Status.CRITICAL)])
def test_stale_silver(live, minutes, expected):
    wh.stale_silver(live, minutes)
    assert_statuses(run_all(), {("business.pipeline_latency", None): expected})


@pytest.mark.parametrize("percent, expected", [(12, Status.WARNING), (30, Status.CRITICAL)])
def test_fraud_rate_spike(live, percent, expected):
    wh.fraud_spike(live, percent)
    assert_statuses(run_all(), {("business.fraud_rate", None): expected})


# --- the fault matrix through the whole sweep (alert state, PagerDuty), one row per runbook alert ----

@pytest.fixture(scope="module")
def matrix_standalone(postgres_service):
    """One airflow standalone for the AirflowDAGFailure row (module scope: stopped before tests/ui starts
    its own on the same profile ports)."""
    from sandbox.proc import running_group
    from scripts.ui import Standalone

    standalone = Standalone(postgres_service, sandbox_connections=False)
    if running_group(standalone.pid_file) is not None:
        pytest.fail(f"an airflow standalone of this test profile is already running (pid file "
                    f"{standalone.pid_file}); stop it: python -m scripts.ui stop")
    try:
        standalone.start(extra_env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                                    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}, timeout=420)
        yield standalone
    finally:
        standalone.stop()


@pytest.fixture
def matrix_env(live_pipeline, warehouse_db, postgres_service, flink_service, sandbox_connections,
               monitoring_connections, matrix_standalone, monkeypatch):
    """The live pipeline (its own broker) writing this test's warehouse, Flink, monitoring, the standalone,
    and the Slack and PagerDuty stand-ins: a fault_matrix.Env whose `prepare` made it healthy."""
    from bench import fault_matrix
    from sandbox import kafka as sandbox_kafka
    from tests.health.fake_alerts import alert_far_ends

    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", warehouse_db)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", json.dumps({"conn_type": "kafka", "extra": {
        "bootstrap.servers": sandbox_kafka.bootstrap(live_pipeline), "socket.timeout.ms": 3000}}))
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API", fault_matrix.standalone_connection(matrix_standalone))
    with alert_far_ends(monkeypatch) as (_, pd_api):
        env = fault_matrix.Env(postgres_service, live_pipeline, warehouse_db, pd_api, standalone=matrix_standalone)
        try:
            fault_matrix.prepare(env)
            yield env
        finally:
            fault_matrix.release_connections(env)
            if fault_matrix.flink_job(env) is None:  # the session's other Flink tests need the job
                fault_matrix.job_running_again(env)


# Diagnoses the sandbox cannot gather, and why (each row must otherwise have findings).
NOT_GATHERED = {"KafkaBrokerDown": "connection streamflow_kubernetes is not defined",  # its bundle reads pods
                "PostgresPVCNearlyFull": "no diagnosis bundle for this alert yet"}


def test_fault_matrix_every_runbook_alert_seen_paged_once_and_resolved(matrix_env):
    """bench/fault_matrix.py's rows on the live sandbox: the healthy pipeline pages nothing in 8 sweeps;
    each injected fault is seen by its check at its severity under its runbook heading, diagnosed, paged
    once if critical (trigger, then resolve) and never if not, and reads ok again after healing."""
    from bench import fault_matrix

    # 8 sweeps here (the bench runs a day's 24): a page from the healthy pipeline shows up in the first ones
    baseline = fault_matrix.healthy_baseline(matrix_env, sweeps=8)
    assert baseline["sweeps"] == 8 and baseline["pages"] == [], baseline

    rows = fault_matrix.run_matrix(matrix_env)["rows"]
    print(json.dumps(rows, indent=1, default=str))  # the whole matrix in the report when a row is wrong
    assert [r["alert"] for r in rows] == ["KafkaConsumerLagHigh", "KafkaBrokerDown", "FlinkJobNotRunning",
                                          "FlinkCheckpointFailing", "PostgresHighConnections", "PostgresPVCNearlyFull",
                                          "HighFraudRate", "PipelineLatencyHigh", "AirflowDAGFailure"]
    wrong = []
    for r in rows:
        # The runbook heading each alert's check must point at (RUNBOOK.md, Alert Response Procedures).
        heading = f"Alert Response Procedures > Alert: {r['alert']}"
        problems = [f"not injected: {r['not_injected']}"] if "not_injected" in r else [
            *([f"saw {r['seen']}"] if r["seen"] != r["expected"] else []),
            *([f"runbook {r['runbook']!r}"] if r["runbook"] != heading else []),
            *([f"diagnosis not gathered: {r['diagnosis_not_gathered']}"] if not r["diagnosis_gathered"] and not any(
                NOT_GATHERED.get(r["alert"], "-") in note for note in r["diagnosis_not_gathered"]) else []),
            *([f"pages {r['pages']}"] if r["pages"] != (["trigger", "resolve"] if r["expected"] == "critical"
                                                          else []) else []),
            *([f"other pages {r['other_pages']}"] if r["other_pages"] else []),
            *(["not resolved after healing"] if not r["resolved"] else []),
        ]
        if problems:
            wrong.append(f"{r['alert']} ({r['check']}[{r['subject']}]): {'; '.join(problems)}")
    assert not wrong, "\n".join(wrong)
