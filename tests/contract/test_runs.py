"""The contract's run semantics (docs/contract.md), end to end through dag.test() against the sandbox PostgreSQL:

- every DAG's dry_run=true run changes nothing (warehouse rows, files, alert state, no write to the
  Kubernetes or Flink far ends, an idle session survives), and its audit rows say dry;
- the window's failure path: a failed step still gets the report sent and fails the run; PostgreSQL
  unreachable skips the destructive steps with the reason and does not end green;
- airflow_housekeeping whose metadata cleanup fails ends red;
- bronze retention's cutoff, computed here from the logical date (or run_after), against the rows
  that really went.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from streamflow_ops.config import VacuumConfig
from streamflow_ops.remediation import runner

from tests.backup.conftest import connect_kubernetes
from tests.contract.conftest import fresh_dag, states, xcom
from tests.fakes.http_api import FakeApi, http_connection, unused_port
from tests.fakes.payloads import load
from tests.health.fake_alerts import alert_far_ends
from tests.housekeeping.test_metadata_cleanup import IMAGE, PODS, serve_pods
from tests.maintenance.conftest import snapshot
from tests.remediation.test_postgres_sessions import IDLE_S, connect, roles, wait_idle  # noqa: F401 (roles: fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]
OLD_LOG = "dag_id=x/run_id=r1/task_id=t/attempt=1.log"


def files(folder: Path) -> dict[str, tuple[int, float]]:
    """Every file under folder with its size and mtime: 'no file changed' made exact."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def audit(conn, run_id: str) -> list[tuple[str, bool, str]]:
    if conn.execute("select to_regclass('ops.maintenance_audit')").fetchone()[0] is None:
        return []
    return conn.execute("select action, dry_run, outcome from ops.maintenance_audit where run_id = %s order by id",
                        (run_id,)).fetchall()


def alert_state(conn) -> list[tuple]:
    exists = conn.execute("select to_regclass('ops.alert_state')").fetchone()[0]
    return conn.execute("select * from ops.alert_state order by 1, 2").fetchall() if exists else []


@pytest.fixture
def world(warehouse_db, airflow_db, tmp_path, monkeypatch):
    """The warehouse, a log folder with an old task log, an empty backup folder, Slack and PagerDuty far
    ends; the config points at all of them. A Kubernetes API that runs pods is served, and reached only
    once a test calls world["connect_kubernetes"](): with streamflow_kubernetes defined, backups are CNPG
    backups and the gate asks the API for running backups."""
    logs, backups = tmp_path / "logs", tmp_path / "backups"
    (logs / OLD_LOG).parent.mkdir(parents=True)
    (logs / OLD_LOG).write_text("old")
    old = (datetime.now(timezone.utc) - timedelta(days=400)).timestamp()
    os.utime(logs / OLD_LOG, (old, old))
    backups.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({
        "housekeeping": {"log_folder": str(logs), "scheduler_image": IMAGE},
        "backup": {"folder": str(backups)}, "gold_refresh": {"lock_timeout_s": 1}}))
    with FakeApi() as kube, alert_far_ends(monkeypatch) as (slack, pagerduty), \
            psycopg.connect(warehouse_db, autocommit=True) as conn:
        serve_pods(kube)
        yield {"conn": conn, "dsn": warehouse_db, "logs": logs, "backups": backups, "kube": kube,
               "slack": slack, "pagerduty": pagerduty, "monkeypatch": monkeypatch,
               "connect_kubernetes": lambda: connect_kubernetes(kube, tmp_path, monkeypatch)}


# dag_id -> audit actions a dry run must leave (each marked dry_run); the contract: every maintenance action
# audits. The sweep audits nothing (checked as such). Vacuum has work to list: DEAD_TABLE is made dead-heavy.
DRY_RUN_AUDITS = {
    "bronze_retention": {"bronze_retention.delete"},
    "postgres_vacuum": {"vacuum_analyze"},
    "gold_refresh": {"gold_refresh_concurrently", "gold_refresh_plain"},
    "postgres_backup": {"backup"},
    "airflow_housekeeping": {"task_logs"},
    "maintenance_tasks": {"bronze_retention.delete", "vacuum_analyze", "gold_refresh_concurrently",
                          "gold_refresh_plain", "task_logs"},
    "platform_health_sweep": set(),
}
DEAD_TABLE = ("silver", "fraud_alerts")


def dead_tuples(conn, schema: str, table: str) -> int:
    """n_dead_tup as the vacuum step reads it (cumulative statistics, flushed by the writing session)."""
    conn.execute("select pg_stat_clear_snapshot()")
    return conn.execute("select n_dead_tup from pg_stat_user_tables where schemaname = %s and relname = %s",
                        (schema, table)).fetchone()[0]


def make_dead_tuples(conn, schema: str, table: str) -> int:
    """Every row of the table updated once: half its tuples dead, far above vacuum.dead_ratio_threshold."""
    rows = conn.execute(f'update "{schema}"."{table}" set rule_id = rule_id').rowcount
    assert rows > VacuumConfig().min_dead_tuples_for_ratio, rows
    conn.execute("select pg_stat_force_next_flush()")
    deadline = time.monotonic() + 15
    while dead_tuples(conn, schema, table) < rows:
        assert time.monotonic() < deadline, "the dead tuples never reached pg_stat_user_tables"
        time.sleep(0.2)
    return rows


@pytest.mark.parametrize("dag_id", sorted(DRY_RUN_AUDITS))
def test_dry_run_runs_end_to_end_and_changes_nothing(world, dag_id):
    conn = world["conn"]
    warehouse, logs, backups = snapshot(conn), files(world["logs"]), files(world["backups"])
    alerts_before = alert_state(conn)
    if dag_id == "airflow_housekeeping":  # its metadata cleanup needs a cluster; the window's is optional
        world["connect_kubernetes"]()
    dead = make_dead_tuples(conn, *DEAD_TABLE) if "vacuum_analyze" in DRY_RUN_AUDITS[dag_id] else 0

    dr = fresh_dag(dag_id).test(run_conf={"dry_run": True})

    assert dr.state == "success", states(dr)
    assert snapshot(conn) == warehouse
    assert files(world["logs"]) == logs and (world["logs"] / OLD_LOG).exists()
    assert files(world["backups"]) == backups
    rows = audit(conn, dr.run_id)
    assert all(dry for _, dry, _ in rows), rows
    assert {outcome for _, _, outcome in rows} <= {"dry_run"}, rows
    assert DRY_RUN_AUDITS[dag_id] <= {action for action, _, _ in rows}, rows
    assert rows if DRY_RUN_AUDITS[dag_id] else rows == [], rows
    assert dead_tuples(conn, *DEAD_TABLE) >= dead // 2  # not vacuumed: readers' page pruning takes a few, VACUUM all
    assert alert_state(conn) == alerts_before
    assert world["pagerduty"].requests == []
    if dag_id == "platform_health_sweep":  # dry run: checks recorded, no alert sent
        assert world["slack"].requests == []
        recorded = conn.execute("select count(*) from ops.health_check_results where sweep_id = %s",
                                (dr.run_id,)).fetchone()[0]
        assert recorded > 0
    for post in world["kube"].calls("POST", PODS):  # metadata cleanup ran with --dry-run
        assert post.json()["spec"]["containers"][0]["args"][-1] == "--dry-run"


REMEDIATIONS = {  # dag_id -> run_conf of its dry run, and the audit action it must leave (marked dry)
    "remediate_postgres_connections": ({"dry_run": True}, "terminate_sessions"),
    "remediate_flink_taskmanagers": ({"dry_run": True, "replicas": 3}, "scale_taskmanagers"),
    "remediate_restart_workload": ({"dry_run": True}, "rollout_restart"),
    "remediate_flink_restart": ({"dry_run": True}, "restart_flink_job"),
}
NS = "streamflow-processing"


@pytest.mark.parametrize("dag_id", sorted(REMEDIATIONS))
def test_remediation_dry_run_plans_audits_and_sends_no_change(world, dag_id, request):
    """The Kubernetes far end answers reads (a stable FlinkDeployment, the taskmanager Deployment); a dry
    run must send it no write, and the warehouse must not change. The idle client session is an
    application role's (superusers are left alone), idle long enough to be planned: its survival counts."""
    conn, kube = world["conn"], world["kube"]
    app_role = request.getfixturevalue("roles")[0]
    kube.route("GET", f"/apis/flink.apache.org/v1beta1/namespaces/{NS}/flinkdeployments/[^/]+",
               load("kubernetes", "flinkdeployment_stable"))
    deployment = load("kubernetes", "deployments_flink_ready")["items"][1]
    kube.route("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/[^/]+",
               {"kind": "Deployment", "apiVersion": "apps/v1", **deployment})
    world["connect_kubernetes"]()
    conf, action = REMEDIATIONS[dag_id]
    with FakeApi() as flink, connect(world["dsn"], app_role, "grafana", autocommit=True) as idle:
        for path, payload in (("/overview", "overview"), ("/jobs/overview", "jobs_overview"),
                              ("/jobs/[0-9a-f]+", "job_healthy"), ("/jobs/[0-9a-f]+/checkpoints", "checkpoints_healthy"),
                              ("/jobs/[0-9a-f]+/checkpoints/config", "checkpoints_config_healthy"),
                              ("/taskmanagers", "taskmanagers"),
                              ("/jobs/[0-9a-f]+/vertices/[0-9a-f]+/backpressure", "backpressure_ok")):
            flink.route("GET", path, load("flink", payload))
        world["monkeypatch"].setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(flink.url))
        pid = idle.info.backend_pid
        if dag_id == "remediate_postgres_connections":
            world["monkeypatch"].setattr(runner, "_idle_s", lambda params: IDLE_S)
            wait_idle(world["dsn"], [pid], IDLE_S + 0.2)
        warehouse = snapshot(conn)
        dr = fresh_dag(dag_id, retries=0).test(run_conf=conf)
        if dag_id == "remediate_postgres_connections":
            assert pid in {item["pid"] for item in xcom(dr, "plan")["plan"]["items"]}
        assert conn.execute("select count(*) from pg_stat_activity where pid = %s", (pid,)).fetchone()[0] == 1
    assert dr.state == "success", states(dr)
    assert snapshot(conn) == warehouse
    assert [r.method for r in kube.requests + flink.requests if r.method not in ("GET", "HEAD")] == []
    rows = audit(conn, dr.run_id)
    assert rows and all(dry for _, dry, _ in rows) and {a for a, _, _ in rows} == {action}, rows


def test_window_with_a_failing_step_still_reports_and_fails(world):
    """gold_refresh cannot get its lock (another session holds the view): the step fails, the steps after
    it still run, the report is sent to Slack naming the failure, and the run is failed."""
    conn = world["conn"]
    with psycopg.connect(world["dsn"]) as holder:
        # A reader in an open transaction: a plain REFRESH (rule_effectiveness has no unique index) needs an
        # ACCESS EXCLUSIVE lock and gives up after lock_timeout (1 s here); pg_dump's reads are unaffected.
        holder.execute("select count(*) from gold.rule_effectiveness")
        dr = fresh_dag("maintenance_tasks", retries=0).test()
        holder.rollback()
    ran = states(dr)
    assert dr.state == "failed", ran
    assert {task for task, state in ran.items() if state != "success"} <= {"gold_refresh", "report"} | {
        task for task, state in ran.items() if task.startswith("backup.") and state == "skipped"}, ran  # other branch
    assert ran["gold_refresh"] == ran["report"] == "failed", ran
    assert ran["bronze_retention"] == ran["vacuum"] == ran["housekeeping.summary"] == "success", ran
    [post] = world["slack"].calls("POST")
    text = post.json()["text"]
    assert "StreamFlow maintenance window" in text and "maintenance.gold_refresh" in text
    gold_line = next(line for line in text.splitlines() if "maintenance.gold_refresh" in line)
    assert gold_line.startswith("[CRIT]"), gold_line
    assert ("gold_refresh_plain", False, "failed") in audit(conn, dr.run_id)


def test_window_without_postgres_skips_destructive_steps_and_is_not_green(world, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", f"postgresql://u:p@127.0.0.1:{unused_port()}/nowhere")
    warehouse = snapshot(world["conn"])
    dr = fresh_dag("maintenance_tasks", retries=0).test()
    assert dr.state != "success", states(dr)
    for step in ("bronze_retention", "vacuum", "gold_refresh"):
        result = xcom(dr, step)
        assert result["status"] == "skipped", (step, result)
        assert "PostgreSQL (streamflow_postgres) is unreachable" in result["message"], result
    [post] = world["slack"].calls("POST")  # the report still goes out
    assert "is unreachable" in post.json()["text"]
    assert snapshot(world["conn"]) == warehouse
    logs = next(r for r in xcom(dr, "housekeeping.summary") if r["subject"] == "task logs")
    assert logs["status"] == "skipped" and "is unreachable" in logs["message"], logs  # no audit trail, no deletion
    assert (world["logs"] / OLD_LOG).exists()


@pytest.mark.parametrize("failure", ["pod_exits_1", "no_scheduler_image"])
def test_housekeeping_with_failed_metadata_cleanup_ends_red(world, monkeypatch, failure):
    world["connect_kubernetes"]()
    if failure == "pod_exits_1":
        serve_pods(world["kube"], exit_code=1)  # `airflow db clean` exits 1 (say, the metadata DB refused)
    else:
        monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps(
            {"housekeeping": {"log_folder": str(world["logs"])}}))
    dr = fresh_dag("airflow_housekeeping", retries=0).test(run_conf={"dry_run": False})
    ran = states(dr)
    assert dr.state == "failed", ran
    assert ran["housekeeping.metadata_cleanup"] == "failed" and ran["housekeeping.summary"] == "failed", ran
    assert ran["housekeeping.task_logs"] == "success" and not (world["logs"] / OLD_LOG).exists()
    removed = world["conn"].execute(
        "select rows_affected, dry_run, outcome, details->'paths' from ops.maintenance_audit "
        "where run_id = %s and action = 'task_logs'", (dr.run_id,)).fetchall()
    assert removed == [(1, False, "success", [OLD_LOG])], removed  # the one planted old log, audited


def promoted_before(conn, cutoff: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "select b.transaction_id from bronze.transactions b join silver.transactions_enriched s using (transaction_id) "
        "where b.transaction_time < %s", (cutoff,))]


def count(conn, where: str = "true", *args) -> int:
    return conn.execute(f"select count(*) from bronze.transactions b where {where}", args).fetchone()[0]


UNPROMOTED = "not exists (select 1 from silver.transactions_enriched s where s.transaction_id = b.transaction_id)"


@pytest.mark.parametrize("run", ["past_logical_date", "manual_without_logical_date"])
def test_bronze_cutoff_follows_the_runs_reference_time(world, run):
    """SPEC: cutoff = logical date (else run_after) - retention_days; only promoted rows strictly older go."""
    conn = world["conn"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if run == "past_logical_date":
        reference, retention_days, conf = now - timedelta(days=1, hours=5), 7, {}  # SPEC's default: 7
        kwargs = {"logical_date": reference}
    else:
        reference, retention_days, conf = now - timedelta(hours=13), 8, {"retention_days": 8}
        kwargs = {"logical_date": None, "run_after": reference}
    cutoff = int((reference - timedelta(days=retention_days)).timestamp())
    expected_gone = promoted_before(conn, cutoff)
    total = count(conn)
    unpromoted_old = count(conn, f"b.transaction_time < %s and {UNPROMOTED}", cutoff)
    # The seed spans 9 days to now: rows on both sides of the cutoff, and a cutoff from "now" would differ.
    assert expected_gone and unpromoted_old
    assert count(conn, "b.transaction_time >= %s and b.transaction_time < %s", cutoff, cutoff + 86400) > 0

    dr = fresh_dag("bronze_retention").test(run_conf={"dry_run": False, **conf}, **kwargs)

    assert dr.state == "success", states(dr)
    assert xcom(dr, "bronze_retention")["status"] == "warning", xcom(dr, "bronze_retention")  # unpromoted kept
    assert count(conn, "b.transaction_id = any(%s)", expected_gone) == 0
    assert count(conn) == total - len(expected_gone)  # and nothing else went
    assert count(conn, "b.transaction_time < %s", cutoff) == unpromoted_old
    deleted = conn.execute("select coalesce(sum(rows_affected), 0) from ops.maintenance_audit where run_id = %s "
                           "and action = 'bronze_retention.delete' and not dry_run", (dr.run_id,)).fetchone()[0]
    assert deleted == len(expected_gone)
