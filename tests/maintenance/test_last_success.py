"""Silent skips made loud: a skipped step is a warning, maintenance.last_success reads the audit, a gold
refresh that finds nothing and a vacuum held back by an old transaction are warnings, and a killed run's
trace is reported by the sweep and by the next run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from streamflow_ops.config import MaintenanceConfig, load_config
from streamflow_ops.postgres.checks import run_checks
from streamflow_ops.postgres.evaluators import evaluate_last_success
from streamflow_ops.store import AuditRecord, ensure_ops_schema, write_audit
from tests.dagfiles import load_repo_dag

from .test_dags import states, xcom
from .test_retention import KILLER

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
CFG = MaintenanceConfig()


def run(step, outcome="success", hours_ago=1.0, success_hours_ago=None, note="x"):
    started = NOW - timedelta(hours=hours_ago)
    success = NOW - timedelta(hours=success_hours_ago if success_hours_ago is not None else hours_ago)
    return {"step": step, "last_run_id": f"r-{step}", "last_outcome": outcome, "last_started_at": started,
            "last_note": note, "last_success_at": None if success_hours_ago == -1 else success}


def statuses(rows) -> dict[str, tuple[str, str]]:
    return {r.subject: (r.status.value, r.message) for r in evaluate_last_success(rows, NOW, CFG, 2.0)}


def test_thresholds_skips_failures_and_killed_runs():
    got = statuses([run("retention", hours_ago=25.9), run("vacuum", hours_ago=26.1), run("gold_refresh", hours_ago=51),
                    run("backup", "skipped", hours_ago=1, success_hours_ago=24.5,
                        note="another maintenance run holds the advisory lock: x (pid 7)")])
    assert {k: v[0] for k, v in got.items()} == {"retention": "ok", "vacuum": "warning", "gold_refresh": "critical",
                                                 "backup": "warning"}
    assert "was SKIPPED: another maintenance run holds the advisory lock: x (pid 7)" in got["backup"][1]
    got = statuses([run("retention", "in progress", hours_ago=3, success_hours_ago=24, note="bronze.transactions"),
                    run("vacuum", "in progress", hours_ago=0.5, success_hours_ago=24),
                    run("gold_refresh", "failed", hours_ago=1, success_hours_ago=23, note="QueryCanceled: timeout"),
                    run("backup", "failed", hours_ago=1, success_hours_ago=-1)])
    assert got["retention"][0] == "warning" and "never finished (killed?)" in got["retention"][1]
    assert got["vacuum"][0] == "ok" and "is running" in got["vacuum"][1]  # inside the 2 h hard stop
    assert got["gold_refresh"][0] == "warning" and "FAILED: QueryCanceled: timeout" in got["gold_refresh"][1]
    assert got["backup"][0] == "warning" and "never succeeded" in got["backup"][1]
    assert statuses([])["vacuum"] == ("warning", "vacuum never ran (no real run in the audit) - "
                                                 + statuses([])["vacuum"][1].split(" - ", 1)[1])



def sweep_last_success(later: timedelta = timedelta(0)) -> dict[str, object]:
    results = run_checks(load_config(), datetime.now(timezone.utc) + later)
    return {r.subject: r for r in results if r.check_name == "maintenance.last_success"}


@pytest.mark.postgres
def test_probe_reads_the_audit(warehouse_db):
    """Rows written as the steps write them; the expected verdicts worked out from the times alone."""
    now = datetime.now(timezone.utc)
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        ensure_ops_schema(conn)

        def row(action, outcome, hours, dry=False, **details):
            at = now - timedelta(hours=hours)
            write_audit(conn, AuditRecord("maintenance_tasks", f"run-{action}-{hours}", "t", action, "x", dry,
                                          started_at=at, finished_at=at, outcome=outcome, details=details))
        row("bronze_retention.delete", "success", 30)
        row("bronze_retention.skipped", "skipped", 6, reason="replication lag 200 MB")  # newest: skipped
        row("vacuum_analyze", "success", 5)
        row("vacuum_analyze", "success", 1, dry=True)  # a dry run is no run
        row("gold_refresh_plain", "success", 60)
        row("backup", "verified", 2)
    got = sweep_last_success()
    assert got["retention"].status.value == "warning" and "SKIPPED: replication lag 200 MB" in got["retention"].message
    assert got["retention"].value == pytest.approx(30, abs=0.05)
    assert (got["vacuum"].status.value, got["vacuum"].value) == ("ok", pytest.approx(5, abs=0.05))
    assert got["gold_refresh"].status.value == "critical"
    assert got["backup"].status.value == "ok"
    assert all(r.runbook == "Maintenance Windows > Daily Maintenance (03:00 UTC)" for r in got.values())


@pytest.fixture
def wh(warehouse_db, airflow_db):
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        ensure_ops_schema(conn)
        yield conn


@pytest.mark.postgres
@pytest.mark.airflow
def test_killed_retention_is_reported_by_the_sweep_then_by_the_next_run(wh, warehouse_db, monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{repo / 'plugins'}:{repo}"}
    cutoff = int((datetime.now(timezone.utc) - timedelta(days=8)).timestamp())  # the seed's oldest day
    proc = subprocess.run([sys.executable, "-c", KILLER, warehouse_db, str(cutoff)], env=env, timeout=120,
                          check=False, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    committed = sum(int(line) for line in proc.stdout.split())
    # The sweep right away: the open row may be a run still going. Past the 2 h hard stop: a killed run.
    assert "its last run killed" in sweep_last_success()["retention"].message
    swept = sweep_last_success(later=timedelta(hours=2, minutes=1))["retention"]
    assert swept.status.value == "warning" and "its last run killed" in swept.message
    assert "never finished (killed?)" in swept.message
    # The next real run closes the trace and says what it was.
    dr = load_repo_dag("bronze_retention").test(run_conf={"dry_run": False})
    assert dr.state == "success", states(dr)
    result = xcom(dr, "bronze_retention")
    assert result["status"] == "warning"
    assert (f"a killed run left bronze_retention.delete on bronze.transactions of run killed" in result["message"]
            and f"{committed} rows affected when last recorded) never finished" in result["message"])
    outcomes = wh.execute("select outcome, details->>'closed_by_run' from ops.maintenance_audit "
                          "where run_id = 'killed'").fetchall()
    assert outcomes == [("interrupted", dr.run_id)]
    after = sweep_last_success(later=timedelta(hours=2, minutes=1))["retention"]
    assert after.status.value == "ok", after.message  # the new run succeeded; the trace is history


@pytest.mark.postgres
@pytest.mark.airflow
def test_skipped_step_is_warned_by_the_sweep(wh, warehouse_db):
    with psycopg.connect(warehouse_db, autocommit=True) as other:
        other.execute("set application_name = 'stale_session'")
        other.execute("select pg_advisory_lock(21318, 1)")  # the maintenance lock (namespace 'SF', key 1)
        dr = load_repo_dag("gold_refresh").test(run_conf={"dry_run": False})
    assert xcom(dr, "gold_refresh")["status"] == "warning"
    got = sweep_last_success()["gold_refresh"]
    assert got.status.value == "warning" and "SKIPPED: another maintenance run holds the advisory lock: stale_session" \
        in got.message


@pytest.mark.postgres
@pytest.mark.airflow
def test_gold_refresh_that_finds_no_views_names_the_schema(wh, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"warehouse": {"gold_schema": "gold_typo"}}))
    dr = load_repo_dag("gold_refresh").test(run_conf={"dry_run": False})
    result = xcom(dr, "gold_refresh")
    assert result["status"] == "warning"
    assert "no materialized views found in schema 'gold_typo'" in result["message"]


@pytest.mark.postgres
@pytest.mark.airflow
def test_vacuum_held_back_by_an_old_transaction_names_it(wh, warehouse_db):
    with psycopg.connect(warehouse_db) as reader:
        reader.execute("set application_name = 'h1_old_reader'")
        reader.execute("set transaction isolation level repeatable read")
        reader.execute("select count(*) from silver.fraud_alerts")  # snapshot taken: xmin held from here
        pid = reader.info.backend_pid
        deleted = wh.execute("delete from silver.fraud_alerts where alert_id % 2 = 0").rowcount
        assert deleted > 100
        dr = load_repo_dag("postgres_vacuum").test(run_conf={"dry_run": False, "tables": ["silver.fraud_alerts"]})
        reader.rollback()
    result = xcom(dr, "vacuum")
    [table] = result["details"]["tables"]
    assert table["dead_after"] >= deleted  # nothing reclaimed: the reader can still see those rows
    assert result["status"] == "warning", result
    assert f"the oldest xmin is held by pid {pid} (h1_old_reader" in result["message"]
