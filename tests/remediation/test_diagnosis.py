"""Diagnosis bundles: pure findings on real-shaped payloads; the gatherers on the real sandbox
PostgreSQL and Flink; the 10 s budget and "not gathered" degradation; the sweep's one call."""
from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest

from sandbox import flink
from streamflow_ops.config import load_config
from streamflow_ops.diagnosis import findings as fd
from streamflow_ops.diagnosis.gather import diagnose, gather
from streamflow_ops.results import CheckResult, Status
from tests.fakes.http_api import FakeApi, http_connection, unused_port
from tests.fakes.payloads import load

CONFIG = load_config({"remediation": {"airflow_ui_url": "https://airflow.example/"}})


def result(check: str, status=Status.CRITICAL, subject: str = "", **details) -> CheckResult:
    return CheckResult(check, status, "bad", subject=subject, details=details)


# --- pure findings ---------------------------------------------------------------------------------

def test_connection_findings_count_by_state_application_user_and_name_the_oldest_idle_transaction():
    sessions = [
        {"pid": 1, "usename": "app", "application_name": "grafana", "state": "idle", "backend_type": "client backend", "idle_s": 50},
        {"pid": 2, "usename": "app", "application_name": "grafana", "state": "idle in transaction", "backend_type": "client backend", "idle_s": 4000},
        {"pid": 3, "usename": "etl", "application_name": "loader", "state": "idle in transaction", "backend_type": "client backend", "idle_s": 90},
        {"pid": 4, "usename": "etl", "application_name": "loader", "state": "active", "backend_type": "client backend", "idle_s": 0},
        {"pid": 5, "usename": None, "application_name": "", "state": None, "backend_type": "autovacuum launcher", "idle_s": None},
    ]
    assert fd.connection_findings(sessions, 100) == [
        "4 client connections of max_connections 100: idle in transaction 2, idle 1, active 1",
        "by application: grafana 2, loader 2",
        "by user: app 2, etl 2",
        "2 idle in transaction; oldest pid 2 (user app, application grafana) for 1h06m",
    ]


def test_flink_findings_on_flink_payloads():
    exceptions = {"exceptionHistory": {"entries": [{
        "exceptionName": "java.lang.IllegalStateException", "timestamp": 1779364800000, "taskName": "Sink: alerts",
        "stacktrace": "java.lang.IllegalStateException: boom\n\tat x.y"}]}}
    assert fd.root_exception_findings(exceptions) == [
        "root exception at 2026-05-21 12:00:00 UTC in Sink: alerts: java.lang.IllegalStateException: "
        "java.lang.IllegalStateException: boom"]
    assert fd.root_exception_findings({"exceptionHistory": {"entries": []}}) == ["no exception recorded for the job"]
    checkpoints = {"counts": {"completed": 10, "failed": 2, "in_progress": 0}, "latest": {
        "completed": {"id": 12, "latest_ack_timestamp": 1779364800000, "end_to_end_duration": 1500, "state_size": 2048},
        "failed": {"id": 13, "failure_timestamp": 1779364860000, "failure_message": "Checkpoint expired before completing."}}}
    assert fd.checkpoint_findings(checkpoints) == [
        "checkpoints: 10 completed, 2 failed, 0 in progress",
        "last completed: #12 at 2026-05-21 12:00:00 UTC, 1.5 s, state 2,048 bytes",
        "last failed: #13 at 2026-05-21 12:01:00 UTC: Checkpoint expired before completing."]
    jobs = [{"jid": "aaaaaaaa1", "name": "J", "state": "FAILED", "start-time": 1779364800000},
            {"jid": "bbbbbbbb2", "name": "J", "state": "CANCELED", "start-time": 1779361200000}]
    assert fd.job_history_findings(jobs, "J") == [
        "J runs, newest first: aaaaaaaa FAILED (started 2026-05-21 12:00:00 UTC), "
        "bbbbbbbb CANCELED (started 2026-05-21 11:00:00 UTC)"]


def test_lag_findings_compare_producer_and_consumer():
    spike = {"rules": ["growing"], "window_minutes": 180, "production_per_s": 90.0, "consumption_per_s": 40.0}
    assert fd.lag_findings(spike) == ["lag pattern over 180 min: growing",
                                      "producing 90.0/s, consuming 40.0/s: falling behind by 50.0/s"]
    assert fd.lag_findings({"production_per_s": 10.0, "consumption_per_s": 30.0, "catch_up_s": 3900}) == [
        "producing 10.0/s, consuming 30.0/s: catching up by 20.0/s", "time to catch up at the current rate: 1h05m"]


def test_broker_pod_findings_quote_the_last_termination():
    pod = load("kubernetes", "pod_restarting")
    pod["metadata"]["name"] = "streamflow-kafka-kafka-0"
    [line] = fd.broker_pod_findings([pod, load("kubernetes", "pod_running_ready")], "streamflow-kafka")
    assert line.startswith("streamflow-kafka-kafka-0: Running, 4 restart(s); last terminated OOMKilled (exit 137)")
    assert fd.broker_pod_findings([], "streamflow-kafka") == ["no broker pod of streamflow-kafka in the namespace"]


# --- gatherers on real services --------------------------------------------------------------------

@pytest.mark.postgres
def test_connections_bundle_on_real_postgres(warehouse_db):
    with psycopg.connect(warehouse_db, application_name="etl-loader") as in_tx:
        in_tx.execute("select 1")  # left idle in transaction
        in_tx_pid = in_tx.info.backend_pid
        time.sleep(0.2)
        [diagnosed] = [result("postgres.connections", Status.WARNING)]
        assert diagnose(CONFIG, [diagnosed]) == 1
        with psycopg.connect(warehouse_db) as conn:
            clients, max_conn = conn.execute(
                "select count(*) filter (where backend_type = 'client backend'), current_setting('max_connections') "
                "from pg_stat_activity where datname = current_database()").fetchone()
    diagnosis = diagnosed.details["diagnosis"]
    assert diagnosis["alert"] == "PostgresHighConnections" and diagnosis["not_gathered"] == []
    # The diagnosing session was the active one then, as the counting session is now.
    assert diagnosis["findings"][0] == (f"{clients} client connections of max_connections {max_conn}: "
                                        f"idle in transaction 1, active 1")
    assert diagnosis["findings"][3].startswith(f"1 idle in transaction; oldest pid {in_tx_pid} "
                                               f"(user streamflow, application etl-loader)")
    assert diagnosis["remediation"] == {"dag_id": "remediate_postgres_connections",
                                        "url": "https://airflow.example/dags/remediate_postgres_connections",
                                        "conf": {"dry_run": True, "idle_minutes": 30}}


@pytest.mark.flink
def test_flink_bundle_on_the_real_sandbox_flink(flink_service, sandbox_connections):
    diagnosed = result("flink.checkpoint_failures", Status.WARNING, subject=flink.JOB_NAME)
    diagnose(CONFIG, [diagnosed])
    diagnosis = diagnosed.details["diagnosis"]
    base = flink.rest_url(flink_service)
    [job] = [j for j in httpx.get(f"{base}/jobs/overview").json()["jobs"]
             if j["name"] == flink.JOB_NAME and j["state"] == "RUNNING"]
    counts = httpx.get(f"{base}/jobs/{job['jid']}/checkpoints").json()["counts"]
    assert diagnosis["alert"] == "FlinkCheckpointFailing" and diagnosis["not_gathered"] == []
    assert f"{job['jid'][:8]} RUNNING" in diagnosis["findings"][0]
    assert diagnosis["findings"][1] in ("no exception recorded for the job",) or \
        diagnosis["findings"][1].startswith("root exception at")
    # Counts move every 2 s: the completed count read after the diagnosis is at least the diagnosed one.
    diagnosed_completed = int(diagnosis["findings"][2].split(" ")[1])
    assert 0 < diagnosed_completed <= counts["completed"]
    assert diagnosis["findings"][3].startswith("last completed: #")
    assert diagnosis["remediation"]["dag_id"] == "remediate_flink_restart"


def test_a_dead_far_end_is_not_gathered_with_the_reason(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(f"http://127.0.0.1:{unused_port()}"))
    diagnosis = gather(CONFIG, result("flink.job_running"), "FlinkJobNotRunning")
    assert diagnosis["findings"] == []
    assert diagnosis["not_gathered"][0].startswith("job state history: ProbeError: GET ")
    assert "no answer" in diagnosis["not_gathered"][0]
    assert diagnosis["not_gathered"][1] == "root exception and checkpoints: no job to ask"
    assert diagnosis["remediation"]["dag_id"] == "remediate_flink_restart"  # the fix is offered anyway


def test_a_hanging_far_end_costs_one_budget(monkeypatch):
    def slow(request):
        time.sleep(3)
        return 200, {"jobs": []}

    with FakeApi() as api:
        api.route("GET", "/jobs/overview", slow)
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(api.url))
        results = [result("flink.job_running"), result("flink.checkpoint_age", Status.WARNING),
                   result("flink.backpressure", Status.WARNING), result("flink.taskmanagers", Status.OK)]
        started = time.monotonic()
        assert diagnose(CONFIG, results, budget_s=1.0) == 2  # backpressure has no runbook alert; ok needs none
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0, elapsed  # one budget, never the far end's 3 s hang
    for diagnosed in results[:2]:
        assert diagnosed.details["diagnosis"]["not_gathered"][-1].endswith("not finished within 1 s")
        assert diagnosed.details["diagnosis"]["remediation"]["dag_id"] == "remediate_flink_restart"
    assert "diagnosis" not in results[2].details and "diagnosis" not in results[3].details


@pytest.mark.postgres
def test_the_sweep_stores_the_diagnosis_with_the_result(warehouse_db, monkeypatch):
    from datetime import datetime, timezone

    from streamflow_ops.sweep import ensure_ops_tables, summarize

    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(f"http://127.0.0.1:{unused_port()}"))
    ensure_ops_tables(CONFIG)  # the sweep DAG's first task: summarize runs no DDL
    results = [result("flink.job_running"), result("postgres.connections", Status.OK)]
    summary = summarize(CONFIG, "sweep-diag-1", results, datetime.now(timezone.utc))
    assert summary["diagnosed"] == 1
    with psycopg.connect(warehouse_db) as conn:
        stored = dict(conn.execute("select check_name, details from ops.health_check_results "
                                   "where sweep_id = 'sweep-diag-1'").fetchall())
    assert stored["flink.job_running"]["diagnosis"] == json.loads(json.dumps(results[0].details["diagnosis"]))
    assert stored["flink.job_running"]["diagnosis"]["alert"] == "FlinkJobNotRunning"
    assert "diagnosis" not in stored["postgres.connections"]


@pytest.mark.postgres
def test_business_bundle_on_the_seeded_warehouse(warehouse_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(f"http://127.0.0.1:{unused_port()}"))
    diagnosed = result("business.pipeline_latency", Status.WARNING)
    diagnose(CONFIG, [diagnosed])
    diagnosis = diagnosed.details["diagnosis"]
    with psycopg.connect(warehouse_db) as conn:
        rules = conn.execute(
            "select rule_id, count(*) filter (where created_at >= now() - interval '1 hour'), "
            "count(*) filter (where created_at >= now() - interval '25 hours' and created_at < now() - interval "
            "'24 hours') from silver.fraud_alerts where created_at >= now() - interval '25 hours' "
            "group by rule_id order by 2 desc, rule_id").fetchall()
    assert rules, "the seeded warehouse has recent fraud alerts"
    assert diagnosis["alert"] == "PipelineLatencyHigh"
    assert diagnosis["findings"][0].startswith("newest bronze row ") and " old, newest silver row " in diagnosis["findings"][0]
    assert diagnosis["findings"][2] == "fraud alerts by rule, last hour vs the same hour yesterday: " + ", ".join(
        f"{rule} {last} (yesterday {before})" for rule, last, before in rules[:8])
    assert diagnosis["not_gathered"] == [diagnosis["not_gathered"][0]]
    assert diagnosis["not_gathered"][0].startswith("Flink job: ProbeError")
    assert diagnosis["remediation"] is None


def test_dag_failure_bundle_through_the_airflow_api(monkeypatch):
    from tests.health.test_airflow_api_checks import FakeAirflow, af, use_connection

    with FakeApi() as api:
        fake = FakeAirflow(api)
        fake.runs["bronze_to_silver_pipeline"] = af("dag_runs_one_failed")["dag_runs"]
        api.route("GET", r"/api/v2/dags/bronze_to_silver_pipeline/dagRuns/[^/]+/taskInstances",
                  lambda req: (200, load("airflow", "task_instances_failed")) if fake.authorised(req) else (401, {}))
        use_connection(monkeypatch, api.url)
        diagnosed = result("airflow.failed_dag_runs", Status.WARNING, subject="bronze_to_silver_pipeline")
        diagnose(CONFIG, [diagnosed])
        [tis_call] = api.calls("GET", r"/api/v2/dags/bronze_to_silver_pipeline/dagRuns/.*/taskInstances")
    failed = next(r for r in af("dag_runs_one_failed")["dag_runs"] if r["state"] == "failed")
    diagnosis = diagnosed.details["diagnosis"]
    assert diagnosis["not_gathered"] == [] and tis_call.query == {"state": ["failed"]}
    assert tis_call.path == f"/api/v2/dags/bronze_to_silver_pipeline/dagRuns/{failed['dag_run_id']}/taskInstances"
    assert diagnosis["findings"] == [
        f"bronze_to_silver_pipeline run {failed['dag_run_id']} failed (ended {failed['end_date']})",
        f"failed task promote_to_silver, try 3; log: https://airflow.example/dags/bronze_to_silver_pipeline/runs/"
        f"{failed['dag_run_id']}/tasks/promote_to_silver"]


def test_broker_bundle_through_kubernetes(tmp_path, monkeypatch):
    from tests.health.test_kubernetes_checks import use_kubeconfig

    broker = load("kubernetes", "pod_crashloopbackoff")
    broker["metadata"]["name"] = "streamflow-kafka-kafka-0"
    with FakeApi() as api:
        api.route("GET", "/api/v1/namespaces/streamflow-kafka/pods",
                  {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [broker]})
        use_kubeconfig(tmp_path, monkeypatch, api.url)
        diagnosis = gather(CONFIG, result("kafka.broker_reachable"), "KafkaBrokerDown")
    assert diagnosis["findings"] == fd.broker_pod_findings([broker], "streamflow-kafka")
    assert diagnosis["findings"][0].startswith("streamflow-kafka-kafka-0: CrashLoopBackOff, 14 restart(s)")
    assert diagnosis["not_gathered"] == ["PVC usage: read it from kubernetes.pvc_usage in the same sweep"]


@pytest.mark.flink
def test_lag_bundle_reads_flink_capacity_on_the_sandbox(flink_service, sandbox_connections):
    diagnosed = result("kafka.consumer_lag", Status.WARNING, subject="flink-fraud-detector", rules=["growing"],
                       window_minutes=180, production_per_s=50.0, consumption_per_s=20.0)
    diagnose(CONFIG, [diagnosed])
    diagnosis = diagnosed.details["diagnosis"]
    overview = httpx.get(f"{flink.rest_url(flink_service)}/overview").json()
    assert diagnosis["alert"] == "KafkaConsumerLagHigh" and diagnosis["not_gathered"] == []
    assert diagnosis["findings"][:4] == [
        "lag pattern over 180 min: growing", "producing 50.0/s, consuming 20.0/s: falling behind by 30.0/s",
        f"{flink.JOB_NAME}: RUNNING",
        f"{overview['taskmanagers']} TaskManager(s), {overview['slots-available']} of {overview['slots-total']} "
        f"slots free"]
    assert diagnosis["findings"][4].startswith("backpressure per vertex: ")
    expected = min(10, max(overview["taskmanagers"], CONFIG.flink.expected_taskmanagers) + 1)
    assert diagnosis["remediation"]["conf"] == {"dry_run": True, "replicas": expected}
