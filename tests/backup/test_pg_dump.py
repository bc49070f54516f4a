"""pg_dump backups against the real sandbox PostgreSQL: dump, verified restore, broken dumps, bad input."""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from streamflow_ops.backup.pg_dump import BACKUP_LOCK_KEY, MANIFEST, read_manifest, write_manifest
from streamflow_ops.backup.request import BackupInputError, check_pg_dump_ready, resolve_request
from streamflow_ops.backup.runner import run_pg_dump
from streamflow_ops.maintenance.audit import Actor
from streamflow_ops.backup.status import backup_in_progress
from streamflow_ops.backup.verify import SCRATCH_PREFIX, VerificationError, verify_dump
from streamflow_ops.config import load_config
from streamflow_ops.postgres.connection import warehouse_connection

pytestmark = pytest.mark.postgres
RUN = Actor("postgres_backup", "manual__test", "backup.pg_dump")


def config_for(folder: Path, **backup):
    return load_config({"backup": {"folder": str(folder), **backup}})


def ready(config, params=None):
    request = resolve_request(params or {}, config)
    with warehouse_connection(config.warehouse) as conn:
        return request, check_pg_dump_ready(request, config, conn)


def backup(config, params=None, now=None):
    request, schemas = ready(config, params)
    return run_pg_dump(config, request, schemas, RUN, now=now)


def scratch_databases(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute("select datname from pg_database where datname like %s",
                                           (SCRATCH_PREFIX + "%",))]


def audit(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("select action, target, dry_run, outcome, rows_affected, details "
                            "from ops.maintenance_audit order by id").fetchall()


@pytest.mark.parametrize("dump_format", ["custom", "directory"])
def test_dump_and_verified_restore_of_gold(warehouse_db, tmp_path, dump_format):
    config = config_for(tmp_path, dump_format=dump_format)
    summary = backup(config)

    folder = Path(summary["location"])
    manifest = read_manifest(folder)
    assert manifest["status"] == "verified" and manifest["verification"]["verified"] is True
    # gold's materialized views read silver: without it the dump would not restore, so it comes along.
    assert manifest["schemas"] == ["gold"] and manifest["dependency_schemas"] == ["silver"]
    with psycopg.connect(warehouse_db) as conn:
        live = {f"gold.{name}": conn.execute(f"select count(*) from gold.{name}").fetchone()[0]
                for name in ("daily_fraud_summary", "customer_risk_profile", "rule_effectiveness", "fraud_trend_7d")}
        version = conn.execute("show server_version").fetchone()[0]
    rows = {f"{r['schema']}.{r['name']}": r["rows"] for r in manifest["relations"]}
    assert {k: v for k, v in rows.items() if k.startswith("gold.")} == live
    assert all(v > 0 for v in live.values())
    assert manifest["object_counts"]["gold.materialized_view"] == 4
    assert manifest["server_version"] == version and len(manifest["sha256"]) == 64
    assert manifest["size_bytes"] > 0 and set(manifest["server_schema_size_bytes"]) == {"gold", "silver"}
    assert scratch_databases(warehouse_db) == []

    ((action, target, dry_run, outcome, rows_affected, details),) = audit(warehouse_db)
    assert (action, target, dry_run, outcome) == ("backup", str(folder), False, "success")
    assert rows_affected == sum(rows.values())
    assert details["method"] == "pg_dump" and details["location"] == str(folder)
    assert details["size_bytes"] == manifest["size_bytes"] and details["duration_s"] > 0
    assert details["verified"] is True


def test_truncated_dump_fails_on_its_checksum(warehouse_db, tmp_path):
    folder = Path(backup(config_for(tmp_path), {"verify": False})["location"])
    dump = folder / "dump.pgdump"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    with pytest.raises(VerificationError, match="checksum mismatch .* the dump is truncated or corrupted"):
        verify_dump(config_for(tmp_path), folder)
    assert scratch_databases(warehouse_db) == []


def test_dump_broken_before_its_manifest_fails_the_restore_and_drops_the_scratch_db(warehouse_db, tmp_path):
    """A dump that was already broken when the manifest was written (checksum matches the bad bytes)."""
    from streamflow_ops.backup.pg_dump import checksums

    folder = Path(backup(config_for(tmp_path), {"verify": False})["location"])
    dump = folder / "dump.pgdump"
    dump.write_bytes(dump.read_bytes()[: int(dump.stat().st_size * 0.6)])
    manifest = read_manifest(folder)
    manifest["sha256"] = checksums(dump)[0]
    write_manifest(folder, manifest)
    with pytest.raises(VerificationError, match=r"does not restore: pg_restore failed \(exit 1\): .*"):
        verify_dump(config_for(tmp_path), folder)
    assert scratch_databases(warehouse_db) == []


def test_restore_that_does_not_match_the_manifest_names_the_difference(warehouse_db, tmp_path):
    folder = Path(backup(config_for(tmp_path), {"verify": False})["location"])
    manifest = read_manifest(folder)
    rel = next(r for r in manifest["relations"] if r["name"] == "daily_fraud_summary")
    rel["rows"] += 1
    write_manifest(folder, manifest)
    with pytest.raises(VerificationError, match=rf"materialized_view gold.daily_fraud_summary: {rel['rows']} rows "
                                                rf"in the manifest, {rel['rows'] - 1} restored"):
        verify_dump(config_for(tmp_path), folder)
    assert scratch_databases(warehouse_db) == []


def test_failed_backup_deletes_nothing_and_is_audited(warehouse_db, tmp_path):
    old = tmp_path / "streamflow-backup-20250101T030000Z"
    old.mkdir()
    (old / MANIFEST).write_text(json.dumps({"status": "verified"}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = bin_dir / tool
        script.write_text("#!/bin/sh\necho 'pg_dump: error: connection to server lost' >&2\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    config = config_for(tmp_path / "dumps", pg_bin_dir=str(bin_dir), keep_days=1)
    (tmp_path / "dumps").mkdir()
    old.rename(tmp_path / "dumps" / old.name)
    with pytest.raises(RuntimeError, match="pg_dump failed .*connection to server lost"):
        backup(config)
    names = sorted(p.name for p in (tmp_path / "dumps").iterdir())
    assert names[0] == old.name and len(names) == 2
    assert read_manifest(tmp_path / "dumps" / names[1])["status"] == "failed"
    (row,) = audit(warehouse_db)
    assert row[0] == "backup" and row[3] == "failed"


def test_successful_backup_applies_retention_but_keeps_recent(warehouse_db, tmp_path):
    now = datetime.now(timezone.utc)
    old = tmp_path / f"streamflow-backup-{(now - timedelta(days=10)):%Y%m%dT%H%M%SZ}"
    recent = tmp_path / f"streamflow-backup-{(now - timedelta(days=2)):%Y%m%dT%H%M%SZ}"
    for folder in (old, recent):
        folder.mkdir()
        (folder / MANIFEST).write_text(json.dumps({"status": "verified"}))
    summary = backup(config_for(tmp_path), {"verify": False}, now=now)
    assert summary["removed"] == [old.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([recent.name, Path(summary["location"]).name])


def test_dry_run_dumps_nothing_and_lists_what_retention_would_remove(warehouse_db, tmp_path):
    old = tmp_path / "streamflow-backup-20250101T030000Z"
    old.mkdir()
    summary = backup(config_for(tmp_path), {"dry_run": True})
    assert summary["would_dump"] == ["gold", "silver"] and summary["would_remove"] == [old.name]
    assert [p.name for p in tmp_path.iterdir()] == [old.name]
    ((action, _, dry_run, outcome, _, _),) = audit(warehouse_db)
    assert (action, dry_run, outcome) == ("backup", True, "dry_run")


def test_nonexistent_schema_is_refused_naming_the_param(warehouse_db, tmp_path):
    with pytest.raises(BackupInputError, match=r"^schemas: schema\(s\) \['nope'\] do not exist"):
        ready(config_for(tmp_path), {"schemas": ["gold", "nope"]})
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_refused_naming_the_key(warehouse_db, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(BackupInputError, match=r"^backup.folder: .*a-file/backups is not writable"):
        ready(config_for(blocker / "backups"))


def test_unknown_method_and_unsafe_schema_are_refused():
    config = load_config()
    with pytest.raises(BackupInputError, match=r"^method: unknown backup method 'pg_basebackup'"):
        resolve_request({"method": "pg_basebackup"}, config)
    with pytest.raises(BackupInputError, match=r"^schemas: unsafe or invalid"):
        resolve_request({"schemas": ['gold"; drop schema gold; --']}, config)


def test_dependencies_can_be_required_instead_of_added(warehouse_db, tmp_path):
    with pytest.raises(BackupInputError, match=r"^schemas: \['gold'\] read from \['silver'\]"):
        ready(config_for(tmp_path, include_dependencies=False))


def test_backup_in_progress_sees_our_lock(warehouse_db, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    config = load_config()
    assert backup_in_progress(config) is None
    with psycopg.connect(warehouse_db, autocommit=True, application_name="streamflow_ops_backup") as holder:
        holder.execute("select pg_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
        reason = backup_in_progress(config)
    assert reason.startswith("pg_dump backup in progress (backend pid ") and "streamflow_ops_backup" in reason
    assert backup_in_progress(config) is None


def test_password_never_reaches_the_command_line(warehouse_db, tmp_path):
    """pg_dump gets the password from PGPASSWORD: the argv we build carries no secret."""
    from streamflow_ops.backup.pg_dump import dump_argv, libpq_env

    env = libpq_env("streamflow_postgres")
    argv = dump_argv(config_for(tmp_path).backup, tmp_path / "d", ["gold"], "00000003-00000002-1")
    assert env["PGPASSWORD"] and not any(env["PGPASSWORD"] in arg for arg in argv)
    assert os.path.basename(argv[0]) == "pg_dump" and "--no-password" in argv
