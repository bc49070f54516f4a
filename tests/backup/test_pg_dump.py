"""pg_dump backups against the real sandbox PostgreSQL while a writer inserts into bronze and silver and
gold is older than silver: verified restore, corrupted dumps, failures, bad input."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.backup.folder import MANIFEST, checksums, read_manifest, write_manifest
from streamflow_ops.backup.pg_dump import BACKUP_LOCK_KEY, dump_argv, libpq_env
from streamflow_ops.backup.request import BackupInputError, check_file_backup_ready, resolve_request
from streamflow_ops.backup.runner import run_file_backup
from streamflow_ops.backup.status import backup_in_progress
from streamflow_ops.backup.verify import SCRATCH_PREFIX, VerificationError, verify_dump
from streamflow_ops.config import load_config
from streamflow_ops.store import Actor
from streamflow_ops.connections import warehouse_connection
from tests.backup.conftest import audit_rows, backup_config

pytestmark = pytest.mark.postgres
RUN = Actor("postgres_backup", "manual__test", "backup.dump")
PG_BIN = "/usr/lib/postgresql/15/bin"


def backup(config, params=None, now=None):
    request = resolve_request({"method": "pg_dump", **(params or {})}, config, kubernetes_defined=False)
    with warehouse_connection(config.warehouse) as conn:
        schemas = check_file_backup_ready(request, config, conn)
    return run_file_backup(config, request, schemas, RUN, now=now)


def scratch_databases(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute("select datname from pg_database where datname like %s",
                                           (SCRATCH_PREFIX + "%",))]


def counts(dsn: str, *relations: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {r: conn.execute(f"select count(*) from {r}").fetchone()[0] for r in relations}


def test_dump_of_a_live_warehouse_verifies(live_warehouse, tmp_path, postgres_service):
    """The issue's failure: silver newer than gold made every verification fail. Tables are exact against
    the dump's snapshot; the views are checked for what a restore can promise."""
    dsn, writer = live_warehouse
    before = counts(dsn, "silver.transactions_enriched", "gold.daily_fraud_summary")
    batches_before = writer.batches
    summary = backup(backup_config(tmp_path))
    after = counts(dsn, "silver.transactions_enriched", "gold.daily_fraud_summary")
    assert writer.batches > batches_before  # silver was being written during the dump
    assert after["silver.transactions_enriched"] > before["silver.transactions_enriched"]

    folder = Path(summary["location"])
    manifest = read_manifest(folder)
    assert summary["outcome"] == manifest["status"] == "verified"
    assert manifest["schemas"] == ["gold"] and manifest["dependency_schemas"] == ["silver"]
    rows = {f"{r['schema']}.{r['name']}": r["rows"] for r in manifest["relations"]}
    snapshot_silver = rows["silver.transactions_enriched"]
    assert before["silver.transactions_enriched"] <= snapshot_silver <= after["silver.transactions_enriched"]
    assert rows["gold.daily_fraud_summary"] == before["gold.daily_fraud_summary"] == after["gold.daily_fraud_summary"]

    # Independently of the product: restore the dump ourselves and count.
    restored_db = f"t_restore_{os.getpid()}"
    from sandbox import postgres
    admin = postgres.dsn(postgres_service, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{restored_db}"')
        conn.execute(f'create database "{restored_db}"')
    try:
        restore_dsn = postgres.dsn(postgres_service, restored_db)
        subprocess.run([f"{PG_BIN}/pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                        f"--dbname={restore_dsn}", str(folder / manifest["dump"])], check=True, capture_output=True)
        restored = counts(restore_dsn, "silver.transactions_enriched", "gold.daily_fraud_summary")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{restored_db}" with (force)')
    assert restored["silver.transactions_enriched"] == snapshot_silver
    # The view was recomputed from the newer silver: one more day than the source's stale view. This is
    # exactly what the old verification compared, and why it failed on every live warehouse.
    assert restored["gold.daily_fraud_summary"] == rows["gold.daily_fraud_summary"] + 1
    assert manifest["verification"]["materialized_views_refreshed"] == 4
    assert scratch_databases(dsn) == []

    (row,) = audit_rows(dsn)
    assert (row["outcome"], row["target"], row["dry_run"]) == ("verified", str(folder), False)
    assert row["details"]["method"] == "pg_dump" and row["details"]["verified"] is True
    assert row["rows_affected"] == sum(r or 0 for r in rows.values())


def test_table_mismatch_fails_without_retry_naming_the_table(live_warehouse, tmp_path):
    """A dump that restores other rows than its snapshot held (here: the manifest disagrees)."""
    dsn, _ = live_warehouse
    config = backup_config(tmp_path)
    folder = Path(backup(config, {"verify": False})["location"])
    manifest = read_manifest(folder)
    alerts = next(r for r in manifest["relations"] if r["name"] == "fraud_alerts")
    alerts["rows"] += 1
    write_manifest(folder, manifest)
    with pytest.raises(VerificationError, match=rf"table silver.fraud_alerts: {alerts['rows']} rows in the dump's "
                                                rf"snapshot, {alerts['rows'] - 1} restored") as caught:
        verify_dump(config, folder, RUN)
    assert isinstance(caught.value, AirflowFailException)  # deterministic: no retries
    assert scratch_databases(dsn) == []


def test_truncated_dump_fails_on_its_checksum_or_its_restore(warehouse_db, tmp_path):
    config = backup_config(tmp_path)
    folder = Path(backup(config, {"verify": False})["location"])
    dump = folder / "dump.pgdump"
    dump.write_bytes(dump.read_bytes()[: int(dump.stat().st_size * 0.6)])
    with pytest.raises(VerificationError, match="checksum mismatch .* the dump is truncated or corrupted"):
        verify_dump(config, folder, RUN)
    manifest = read_manifest(folder)  # broken before its manifest was written: the checksum matches
    manifest["sha256"] = checksums(dump)[0]
    write_manifest(folder, manifest)
    with pytest.raises(VerificationError, match=r"does not restore: pg_restore failed \(exit 1\): .*"):
        verify_dump(config, folder, RUN)
    assert scratch_databases(warehouse_db) == []


def test_failed_backup_deletes_nothing_and_is_audited(warehouse_db, tmp_path):
    dumps = tmp_path / "dumps"
    old = dumps / "streamflow-backup-20250101T030000Z"
    old.mkdir(parents=True)
    (old / MANIFEST).write_text(json.dumps({"status": "verified"}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = bin_dir / tool
        script.write_text("#!/bin/sh\necho 'pg_dump: error: connection to server lost' >&2\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RuntimeError, match="pg_dump failed .*connection to server lost"):
        backup(backup_config(dumps, pg_bin_dir=str(bin_dir), keep_days=1))
    # The older verified backup is untouched; the failed one's partial folder is gone (it can never restore).
    assert sorted(p.name for p in dumps.iterdir()) == [old.name]
    (row,) = audit_rows(warehouse_db)
    assert row["outcome"] == "failed" and "connection to server lost" in row["details"]["error"]
    assert row["details"]["folder_removed"] is True and Path(row["target"]).parent == dumps


def test_dry_run_dumps_nothing_and_lists_what_retention_would_remove(warehouse_db, tmp_path):
    old = tmp_path / "streamflow-backup-20250101T030000Z"
    old.mkdir()
    summary = backup(backup_config(tmp_path), {"dry_run": True})
    assert summary["would_dump"] == ["gold", "silver"] and summary["would_remove"] == [old.name]
    assert [p.name for p in tmp_path.iterdir()] == [old.name]
    (row,) = audit_rows(warehouse_db)
    assert (row["dry_run"], row["outcome"]) == (True, "dry_run")


def test_bad_input_is_refused_naming_the_param_or_key(warehouse_db, tmp_path):
    config = backup_config(tmp_path)
    with pytest.raises(BackupInputError, match=r"^schemas: schema\(s\) \['nope'\] do not exist"):
        backup(config, {"schemas": ["gold", "nope"]})
    with pytest.raises(BackupInputError, match=r"^schemas: \['gold'\] read from \['silver'\]"):
        backup(backup_config(tmp_path, include_dependencies=False))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(BackupInputError, match=r"^backup.folder: .*a-file/backups is not writable"):
        backup(backup_config(blocker / "backups"))
    with pytest.raises(BackupInputError, match=r"^method: unknown backup method 'pg_basebackup'"):
        resolve_request({"method": "pg_basebackup"}, config, kubernetes_defined=False)
    with pytest.raises(BackupInputError, match=r"^schemas: unsafe or invalid"):
        resolve_request({"schemas": ['gold"; drop schema gold; --']}, config, kubernetes_defined=False)
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_backup_in_progress_sees_our_lock(warehouse_db, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    config = load_config()
    assert backup_in_progress(config) is None
    with psycopg.connect(warehouse_db, autocommit=True, application_name="streamflow_ops_backup") as holder:
        holder.execute("select pg_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
        reason = backup_in_progress(config)
    assert reason.startswith("pg_dump/gold_export backup in progress (backend pid ") and "streamflow_ops_backup" in reason
    assert backup_in_progress(config) is None


def test_password_never_reaches_the_command_line(warehouse_db, tmp_path):
    """pg_dump gets the password from PGPASSWORD: the argv we build carries no secret."""
    env = libpq_env("streamflow_postgres")
    argv = dump_argv(backup_config(tmp_path).backup, tmp_path / "d", ["gold"], "00000003-00000002-1")
    assert env["PGPASSWORD"] and not any(env["PGPASSWORD"] in arg for arg in argv)
    assert os.path.basename(argv[0]) == "pg_dump" and "--no-password" in argv
