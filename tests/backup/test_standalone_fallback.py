"""The standalone fallback (no Kubernetes): a pg_dump of bronze, silver AND gold, verified on a live warehouse;
in the window its verification runs after it (postgres_backup_verify), and it counts as a backup only then."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from streamflow_ops.backup.folder import read_manifest
from streamflow_ops.backup.request import check_file_backup_ready, resolve_request
from streamflow_ops.backup.runner import run_file_backup
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.postgres.checks import run_checks
from streamflow_ops.store import Actor
from tests.backup.conftest import audit_rows, backup_config, load_dag
from tests.backup.test_postgres_backup_dag import states
from tests.conftest import scratch_database

pytestmark = [pytest.mark.postgres]
WINDOW = Actor("maintenance_tasks", "scheduled__test", "backup.dump")
PG_BIN = "/usr/lib/postgresql/15/bin"
# Rows that exist only in bronze (the archive): their bronze-only columns must come back from the backup.
ARCHIVE = "select count(*), md5(string_agg(b::text, ',' order by transaction_id)) from bronze.transactions b " \
          "where transaction_id not like 'live-%%'"


def fallback(config, verify_after: bool, now=None) -> dict:
    """What the window's backup step does without Kubernetes: no method, no schemas."""
    request = resolve_request({}, config, kubernetes_defined=False)
    assert (request.method, request.schemas) == ("pg_dump", ("bronze", "silver", "gold"))
    with warehouse_connection(config.warehouse) as conn:
        schemas = check_file_backup_ready(request, config, conn)
    return run_file_backup(config, request, schemas, WINDOW, now=now, verify_after=verify_after)


def count(dsn: str, relation: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def backup_age(config):
    [result] = [r for r in run_checks(config) if r.check_name == "postgres.backup_age"]
    return result


def test_fallback_backs_up_the_archive_of_a_live_warehouse_and_verifies(live_warehouse, tmp_path, postgres_service):
    """Before: without Kubernetes the window exported gold only; bronze was in no backup."""
    dsn, writer = live_warehouse
    bronze_before, silver_before = count(dsn, "bronze.transactions"), count(dsn, "silver.transactions_enriched")
    with psycopg.connect(dsn) as conn:
        archive = conn.execute(ARCHIVE).fetchone()
    batches = writer.batches
    summary = fallback(backup_config(tmp_path), verify_after=False)
    assert writer.batches > batches  # bronze and silver were written during the dump and its verification
    assert summary["outcome"] == "verified" and summary["dumped_schemas"] == ["bronze", "silver", "gold"]
    folder = Path(summary["location"])
    manifest = read_manifest(folder)
    rows = {f"{r['schema']}.{r['name']}": r["rows"] for r in manifest["relations"]}
    assert bronze_before <= rows["bronze.transactions"] <= count(dsn, "bronze.transactions")
    assert silver_before <= rows["silver.transactions_enriched"] <= count(dsn, "silver.transactions_enriched")

    # Restored by hand (not by the product): bronze comes back whole, its archive rows byte for byte.
    with scratch_database(postgres_service, "t_fallback", "template0") as restored:
        subprocess.run([f"{PG_BIN}/pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                        f"--dbname={restored}", str(folder / manifest["dump"])], check=True, capture_output=True)
        assert count(restored, "bronze.transactions") == rows["bronze.transactions"]
        assert count(restored, "silver.transactions_enriched") == rows["silver.transactions_enriched"]
        with psycopg.connect(restored) as conn:
            assert conn.execute(ARCHIVE).fetchone() == archive


@pytest.mark.airflow
def test_window_dump_is_pending_until_postgres_backup_verify_passes(live_warehouse, airflow_db, tmp_path,
                                                                    monkeypatch):
    """The window's dump is `unverified` (pending), backup_age does not count it; postgres_backup_verify
    restores it on a live warehouse and only then is it `verified`. A corrupted one fails there, without
    retries, and goes."""
    dsn, _ = live_warehouse
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"backup": {"folder": str(tmp_path)}}))
    config = backup_config(tmp_path)
    summary = fallback(config, verify_after=True)
    assert (summary["outcome"], summary["verification"], summary["verify_duration_s"]) == ("unverified", "pending",
                                                                                           None)
    folder = Path(summary["location"])
    assert read_manifest(folder)["status"] == "pending"
    [dumped] = audit_rows(dsn)
    assert (dumped["outcome"], dumped["details"]["verification"]) == ("unverified", "pending")
    age = backup_age(config)
    assert age.status.value == "critical" and f"{folder}) is unverified" in age.message

    dr = load_dag("postgres_backup_verify").test(run_conf={"dry_run": True})  # lists it, restores nothing
    assert dr.state == "success" and read_manifest(folder)["status"] == "pending" and len(audit_rows(dsn)) == 1
    dr = load_dag("postgres_backup_verify").test()
    assert dr.state == "success", states(dr)
    manifest = read_manifest(folder)
    tables = [r for r in manifest["relations"] if r["kind"] == "table"]
    assert manifest["status"] == "verified" and manifest["verification"]["table_rows"] == sum(r["rows"] for r in tables)
    _, verified = audit_rows(dsn)
    assert verified["rows_affected"] == dumped["rows_affected"]
    assert (verified["outcome"], verified["target"], verified["details"]["verification"]) == (
        "verified", str(folder), "passed")
    assert verified["details"]["duration_s"] == manifest["duration_s"]  # the backup's own time, not the restore's
    assert backup_age(config).status.value == "ok"
    # Nothing pending: the next run does nothing.
    assert load_dag("postgres_backup_verify").test().state == "success" and len(audit_rows(dsn)) == 2

    # A dump damaged after it was written: the verification fails (no retry can mend it), the folder goes,
    # the verified one stays.
    later = fallback(config, verify_after=True, now=datetime.now(timezone.utc) + timedelta(seconds=2))
    broken = Path(later["location"])
    dump = broken / read_manifest(broken)["dump"]
    dump.write_bytes(dump.read_bytes()[:-100])
    dr = load_dag("postgres_backup_verify").test()
    assert dr.state == "failed" and states(dr) == {"verify": "failed"}
    [ti] = dr.get_task_instances()
    assert ti.try_number == 1  # AirflowFailException: not retried
    failed = audit_rows(dsn)[-1]
    assert (failed["outcome"], failed["target"]) == ("failed", str(broken)) and "checksum mismatch" in \
        failed["details"]["error"]
    assert not broken.exists() and folder.exists()


def test_window_and_verify_dag_are_wired_on_the_backup_asset():
    """The window's dump announces the pending backup; postgres_backup_verify runs on exactly that asset."""
    from streamflow_ops.backup.taskgroups import BACKUP_ASSET
    from tests.dagfiles import load_repo_dag_module

    window = load_repo_dag_module("maintenance_tasks").build(deadline=None)
    assert [a.name for a in window.get_task("backup.dump").outlets] == [BACKUP_ASSET.name]
    manual = load_dag("postgres_backup")
    assert manual.get_task("backup.dump").outlets == []  # on demand: verified inside the run
    verify = load_dag("postgres_backup_verify")
    assert [a.name for a in verify.timetable.asset_condition.objects] == [BACKUP_ASSET.name]
