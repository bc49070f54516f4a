"""gold_export against the real sandbox PostgreSQL while a writer inserts into bronze and silver and gold is
older than silver: verified, restorable alone, corruption named per relation; plus the folder checks,
stale scratch databases and what an unverified backup does (and does not) do."""
from __future__ import annotations

import gzip
import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.backup.folder import (BackupInputError, MANIFEST, check_share_marker, read_manifest,
                                          sha256_file, write_manifest, write_share_marker)
from streamflow_ops.backup.gold_export import verify_export
from streamflow_ops.backup.request import check_file_backup_ready, choose_method, resolve_request
from streamflow_ops.backup.runner import run_file_backup
from streamflow_ops.backup.verify import SCRATCH_PREFIX, VerificationError
from streamflow_ops.store import Actor
from streamflow_ops.connections import warehouse_connection
from sandbox import postgres
from tests.backup.conftest import audit_rows, backup_config
from tests.conftest import scratch_database

pytestmark = pytest.mark.postgres
RUN = Actor("postgres_backup", "manual__test", "backup.dump")
VIEWS = ("customer_risk_profile", "daily_fraud_summary", "fraud_trend_7d", "rule_effectiveness")
PSQL = "/usr/lib/postgresql/15/bin/psql"


def export(config, verify: bool = True, now=None):
    request = resolve_request({"schemas": ["gold"], "verify": verify}, config, kubernetes_defined=False)
    assert request.method == "gold_export"
    with warehouse_connection(config.warehouse) as conn:
        schemas = check_file_backup_ready(request, config, conn)
    return run_file_backup(config, request, schemas, RUN, now=now)


def view_rows(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {v: sorted(conn.execute(f"select * from gold.{v}").fetchall(), key=repr) for v in VIEWS}


@pytest.fixture
def empty_database(postgres_service):
    with scratch_database(postgres_service, "t_empty", "template0") as dsn:
        yield dsn


def test_gold_export_of_a_live_warehouse_verifies_and_restores_alone(live_warehouse, tmp_path, empty_database):
    dsn, writer = live_warehouse
    source = view_rows(dsn)  # the writer never refreshes gold: these are the rows of every snapshot
    batches = writer.batches
    summary = export(backup_config(tmp_path))
    assert writer.batches > batches  # silver was being written during the export
    folder = Path(summary["location"])
    manifest = read_manifest(folder)
    assert summary["outcome"] == manifest["status"] == "verified"
    assert {r["name"]: r["rows"] for r in manifest["relations"]} == {v: len(source[v]) for v in VIEWS}
    assert all(len(r["checksum"]) == 32 for r in manifest["relations"])
    assert "silver" not in manifest["verification"]["restored_schemas"]
    (row,) = audit_rows(dsn)
    assert (row["outcome"], row["target"]) == ("verified", str(folder))
    assert row["details"]["method"] == "gold_export" and row["rows_affected"] == sum(map(len, source.values()))

    # A person restores it with psql into an empty database that has no silver: same rows, same types.
    subprocess.run([PSQL, "-q", "-v", "ON_ERROR_STOP=1", "-d", empty_database, "-f", "restore.sql"],
                   cwd=folder, check=True, capture_output=True)
    with psycopg.connect(empty_database) as conn:
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace")}
        unique = conn.execute("select count(*) from pg_indexes where schemaname = 'gold' "
                              "and indexdef like 'CREATE UNIQUE INDEX%'").fetchone()[0]
    assert "gold" in schemas and "silver" not in schemas and "bronze" not in schemas
    assert unique == 2  # the source views' unique indexes came along
    assert view_rows(empty_database) == source


def test_a_changed_data_file_fails_naming_the_relation(warehouse_db, tmp_path):
    config = backup_config(tmp_path)
    folder = Path(export(config, verify=False)["location"])
    manifest = read_manifest(folder)
    daily = next(r for r in manifest["relations"] if r["name"] == "daily_fraud_summary")
    path = folder / daily["file"]
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    path.write_bytes(gzip.compress("".join(lines[:-1]).encode()))  # one row lost on the way to the disk
    with pytest.raises(VerificationError, match=r"materialized_view gold.daily_fraud_summary: data file .* "
                                                r"corrupted since it was written") as caught:
        verify_export(config, folder, RUN)
    assert isinstance(caught.value, AirflowFailException)

    # Corrupted before the manifest was written (its sha256 matches): one value changed, same row count.
    columns = lines[-1].split("\t")
    columns[1] = str(int(columns[1]) + 1)
    path.write_bytes(gzip.compress("".join(lines[:-1] + ["\t".join(columns)]).encode()))
    daily["file_sha256"] = sha256_file(path)
    write_manifest(folder, manifest)
    with pytest.raises(VerificationError, match=r"materialized_view gold.daily_fraud_summary: the restored rows "
                                                r"differ from the snapshot's"):
        verify_export(config, folder, RUN)
    with psycopg.connect(warehouse_db) as conn:
        assert conn.execute("select count(*) from pg_database where datname like %s",
                            (SCRATCH_PREFIX + "%",)).fetchone()[0] == 0


def test_stale_scratch_database_is_dropped_at_the_next_verification(warehouse_db, postgres_service, tmp_path):
    now = int(time.time())
    stale, young = f"{SCRATCH_PREFIX}{now - 7200:010d}_deadbeef", f"{SCRATCH_PREFIX}{now - 60:010d}_cafef00d"
    admin = postgres.dsn(postgres_service, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in (stale, young):
            conn.execute(f'create database "{name}"')
    try:
        export(backup_config(tmp_path, verify_timeout_s=3600))
        with psycopg.connect(admin, autocommit=True) as conn:
            left = {r[0] for r in conn.execute("select datname from pg_database where datname like %s",
                                               (SCRATCH_PREFIX + "%",))}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in (stale, young):
                conn.execute(f'drop database if exists "{name}"')
    assert left == {young}  # a verification may still be using a young one
    (row,) = audit_rows(warehouse_db, action="backup_scratch_drop")
    assert (row["target"], row["outcome"], row["details"]["verify_timeout_s"]) == (stale, "success", 3600)


def test_an_unverified_backup_runs_no_retention_a_verified_one_does(warehouse_db, tmp_path):
    """Retention only after a verified backup; the planner's "newest verified" rule: test_backup_retention."""
    now = datetime.now(timezone.utc)

    def folder(days_ago: float, status: str) -> str:
        name = f"streamflow-backup-{now - timedelta(days=days_ago):%Y%m%dT%H%M%SZ}"
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST).write_text(json.dumps({"status": status, "method": "gold_export",
                                                            "schemas": ["gold"]}))
        return name

    older, newest_verified = folder(12, "verified"), folder(10, "verified")
    unverified, killed = folder(9, "unverified"), folder(8, "dumped")
    config = backup_config(tmp_path, keep_days=7)
    summary = export(config, verify=False, now=now)
    assert summary["outcome"] == "unverified" and summary["removed"] == []  # no retention after it
    # ... but the folder a killed run left (manifest still "dumped", 8 days old) is swept even so, audited.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([older, newest_verified, unverified,
                                                                 Path(summary["location"]).name])
    (swept,) = audit_rows(warehouse_db, action="backup_retention")
    assert (swept["outcome"], swept["rows_affected"], swept["details"]["partial_removed"]) == ("success", 1, [killed])
    summary = export(config, now=now + timedelta(seconds=2))
    # The new verified backup is now the one to keep: every folder older than keep_days goes, audited.
    assert sorted(summary["removed"]) == sorted([older, newest_verified, unverified])
    assert [r["outcome"] for r in audit_rows(warehouse_db)] == ["unverified", "verified"]
    (_, pruned) = audit_rows(warehouse_db, action="backup_retention")
    assert (pruned["outcome"], pruned["rows_affected"], pruned["target"]) == ("success", 3, str(tmp_path))
    assert sorted(pruned["details"]["removed"]) == sorted(summary["removed"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(pruned["details"]["kept"])


def test_share_marker_proves_the_folder_is_shared(tmp_path):
    shared, local_elsewhere = tmp_path / "pvc", tmp_path / "other-worker-local"
    marker = write_share_marker(str(shared), "run-1")
    assert json.loads(marker.read_text())["token"] == "run-1"
    assert check_share_marker(str(shared), "run-1")["host"]
    with pytest.raises(BackupInputError, match=r"^backup.folder: .*other-worker-local is not shared between the "
                                               r"workers of this run"):
        check_share_marker(str(local_elsewhere), "run-1")


@pytest.mark.parametrize("param, config_method, schemas_param, schemas, kube, expected", [
    (None, "auto", False, ["gold"], True, "cnpg"),           # the window with Kubernetes: the full backup
    (None, "auto", False, ["gold"], False, "pg_dump"),       # without: the standalone fallback (full dump)
    (None, "auto", True, ["gold"], False, "gold_export"),    # gold asked for: gold's rows as data
    (None, "auto", True, ["gold"], True, "gold_export"),     # schemas asked for: a logical backup
    (None, "auto", False, ["gold", "silver"], False, "pg_dump"),
    (None, "pg_dump", False, ["gold"], True, "pg_dump"),     # the config decides
    ("cnpg", "pg_dump", True, ["gold"], False, "cnpg"),      # the param decides
])
def test_method_choice(param, config_method, schemas_param, schemas, kube, expected):
    assert choose_method(param, config_method, schemas_param, schemas, "gold", kube) == expected
