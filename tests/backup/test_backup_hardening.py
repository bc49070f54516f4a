"""Backups that a full disk, a column name or a source in another time zone cannot fool, on the real
sandbox PostgreSQL: a failed backup's audit row survives ENOSPC (a real 512 kB tmpfs) and its folder goes;
folders killed runs left are swept; the digest reads whole rows; the scratch database compares like with like."""
from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from sandbox import postgres
from streamflow_ops.backup.folder import MANIFEST, read_manifest
from streamflow_ops.backup.gold_export import relation_digest
from streamflow_ops.backup.request import check_file_backup_ready, resolve_request
from streamflow_ops.backup.runner import run_file_backup
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.store import Actor
from tests.backup.conftest import audit_rows, backup_config
from tests.conftest import scratch_database

pytestmark = pytest.mark.postgres
RUN = Actor("postgres_backup", "manual__hardening", "backup.dump")
PSQL = "/usr/lib/postgresql/15/bin/psql"


def backup(config, params, now=None):
    request = resolve_request(params, config, kubernetes_defined=False)
    with warehouse_connection(config.warehouse) as conn:
        schemas = check_file_backup_ready(request, config, conn)
    return run_file_backup(config, request, schemas, RUN, now=now)


@pytest.fixture
def full_disk(tmp_path):
    """A real 512 kB filesystem (tmpfs, mounted as root), unmounted afterwards whatever happened."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_backup_that_fills_the_disk_keeps_its_failed_row_and_leaves_no_folder(warehouse_db, full_disk):
    """Before: the failure path wrote a "failed" manifest into the full folder first; ENOSPC there raised out
    of the handler and the failed audit row was never written. Now the folder goes, then the row."""
    with psycopg.connect(warehouse_db) as conn:  # the dump cannot fit: the seed's bronze alone is larger
        assert conn.execute("select pg_total_relation_size('bronze.transactions')").fetchone()[0] > 4 * 512 * 1024
    with pytest.raises(RuntimeError, match="No space left on device"):
        backup(backup_config(full_disk), {"method": "pg_dump", "schemas": ["bronze"]})
    assert list(full_disk.iterdir()) == []  # the partial dump is gone: the space is free again
    (row,) = audit_rows(warehouse_db)
    assert (row["outcome"], row["dry_run"]) == ("failed", False)
    assert "No space left on device" in row["details"]["error"] and row["details"]["folder_removed"] is True
    assert Path(row["target"]).parent == full_disk and row["details"]["method"] == "pg_dump"
    # And the freed folder takes the next (small) backup: nothing was left to fill it.
    summary = backup(backup_config(full_disk), {"schemas": ["gold"]})
    assert summary["outcome"] == "verified"


def test_partial_folders_of_killed_runs_go_even_when_no_backup_verifies(warehouse_db, tmp_path):
    """Before: only a verified backup ran retention, so killed runs' folders piled up for good."""
    now = datetime.now(timezone.utc)

    def folder(hours_ago: float, manifest: dict | None) -> str:
        name = f"streamflow-backup-{now - timedelta(hours=hours_ago):%Y%m%dT%H%M%SZ}"
        (tmp_path / name).mkdir()
        if manifest is not None:
            (tmp_path / name / MANIFEST).write_text(json.dumps(manifest))
        return name

    killed_mid_dump = folder(30, None)  # no manifest at all
    killed_mid_verify = folder(29, {"status": "dumped", "method": "pg_dump", "schemas": ["gold"]})
    unverified = folder(28, {"status": "unverified", "method": "pg_dump", "schemas": ["gold"]})
    pending = folder(27, {"status": "pending", "method": "pg_dump", "schemas": ["gold"]})
    maybe_running = folder(1, {"status": "dumped", "method": "pg_dump", "schemas": ["gold"]})  # < 2 h: may run
    config = backup_config(tmp_path)
    assert config.backup.statement_timeout_s + config.backup.verify_timeout_s == 2 * 3600
    summary = backup(config, {"schemas": ["gold"], "verify": False}, now=now)
    assert summary["outcome"] == "unverified"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([unverified, pending, maybe_running, Path(summary["location"]).name])
    (swept,) = audit_rows(warehouse_db, action="backup_retention")
    assert swept["details"]["partial_removed"] == [killed_mid_dump, killed_mid_verify]
    assert (swept["outcome"], swept["rows_affected"]) == ("success", 2)


def test_the_digest_reads_the_whole_row_even_with_a_column_named_r(warehouse_db):
    """Before: `r::text` over `from ... as r` read the column r, so rows differing elsewhere digested equal."""
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        conn.execute("create table gold.named_r (id int, amount numeric, r text)")
        conn.execute("create table gold.named_r_other (id int, amount numeric, r text)")
        conn.execute("insert into gold.named_r select g, g * 1.5, 'same' from generate_series(1, 100) g")
        conn.execute("insert into gold.named_r_other select g, g * 2.5, 'same' from generate_series(100, 1, -1) g")
        conn.execute("create table gold.named_r_reordered as select * from gold.named_r order by id desc")
        conn.execute("update gold.named_r_other set amount = 1.5 * id where id > 1")  # one row differs
        one = relation_digest(conn, "gold", "named_r")
        assert relation_digest(conn, "gold", "named_r_reordered") == one  # order-independent
        assert relation_digest(conn, "gold", "named_r_other")[0] == one[0] == 100
        assert relation_digest(conn, "gold", "named_r_other")[1] != one[1]  # ... but it sees the whole row
        # The expected checksum, computed here from each row's fields (not through the product's SQL).
        expected = conn.execute(
            "select md5(count(*)::text || ':' || sum(('x' || left(md5(format('(%s,%s,%s)', id, amount, r)), 15))"
            "::bit(60)::bigint)::text) from gold.named_r").fetchone()[0]
    assert one[1] == expected


@pytest.fixture
def source_in_another_zone(warehouse_db, postgres_service):
    """The warehouse copy with database defaults unlike the server's: another TimeZone and a day-first
    DateStyle; a gold view holding a timestamptz, a date and the timestamptz cast to text."""
    zone = "Asia/Kathmandu"  # +05:45: no server default is set to it
    with psycopg.connect(postgres.dsn(postgres_service, "postgres"), autocommit=True) as admin:
        assert admin.execute("select reset_val from pg_settings where name = 'TimeZone'").fetchone()[0] != zone
        assert admin.execute("select reset_val from pg_settings where name = 'DateStyle'").fetchone()[0] == "ISO, MDY"
        name = warehouse_db.rsplit("/", 1)[1]
        admin.execute(f'alter database "{name}" set timezone = \'{zone}\'')
        admin.execute(f'alter database "{name}" set datestyle = \'SQL, DMY\'')
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        assert conn.execute("show timezone").fetchone()[0] == zone
        conn.execute("create materialized view gold.hourly_text as select t, t::date as day, t::text as t_text "
                     "from (select to_timestamp(1893456000 + g * 3600) as t from generate_series(1, 72) g) s")
    return warehouse_db, zone


def test_the_restore_compares_under_the_source_settings(source_in_another_zone, tmp_path, postgres_service):
    """Before: the scratch database had the server's TimeZone/DateStyle: the timestamptz printed with another
    offset (checksum mismatch) and the day-first dates of the COPY files were read month-first."""
    dsn, zone = source_in_another_zone
    summary = backup(backup_config(tmp_path), {"schemas": ["gold"]})
    assert summary["outcome"] == "verified", summary
    folder = Path(summary["location"])
    manifest = read_manifest(folder)
    assert manifest["settings"]["timezone"] == zone and manifest["settings"]["datestyle"] == "SQL, DMY"
    [hourly] = [r for r in manifest["relations"] if r["name"] == "hourly_text"]
    with psycopg.connect(dsn) as conn:  # the source's own rows, digested independently of the manifest
        assert relation_digest(conn, "gold", "hourly_text") == (72, hourly["checksum"])

    # A person's restore (restore.sql with psql) into an empty database with the server's defaults gives
    # back the very rows: read under the source's settings, they digest to the manifest's checksum.
    with scratch_database(postgres_service, "t_restore", "template0") as restored:
        subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", restored, "-f", "restore.sql"],
                       cwd=folder, check=True, capture_output=True)
        with psycopg.connect(restored) as conn:
            assert conn.execute("show timezone").fetchone()[0] != zone
            for name, value in manifest["settings"].items():
                conn.execute("select set_config(%s, %s, false)", (name, value))
            assert relation_digest(conn, "gold", "hourly_text") == (72, hourly["checksum"])
            first = conn.execute("select day::text, t_text from gold.hourly_text order by t limit 1").fetchone()
    assert first == ("01/01/2030", "01/01/2030 06:45:00 +0545")  # 1893456000 + 3600 in Kathmandu, day first


def test_scratch_settings_are_values_never_sql(warehouse_db):
    """The settings are applied as quoted values: a hostile one is refused by PostgreSQL, nothing runs, and
    the scratch database is dropped all the same."""
    from streamflow_ops.backup.verify import SCRATCH_PREFIX, scratch_database as product_scratch
    from streamflow_ops.config import load_config

    with pytest.raises(psycopg.errors.InvalidParameterValue):
        with product_scratch(load_config(), RUN, {"timezone": f"UTC'; drop database x; --{uuid.uuid4().hex}"}):
            pass
    with psycopg.connect(warehouse_db) as conn:
        assert conn.execute("select count(*) from pg_database where datname like %s",
                            (SCRATCH_PREFIX + "%",)).fetchone()[0] == 0


KILLED_BACKUP = """
import sys
from streamflow_ops.backup.request import check_file_backup_ready, resolve_request
from streamflow_ops.backup.runner import run_file_backup
from streamflow_ops.config import load_config
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.store import Actor

config = load_config({"backup": {"folder": sys.argv[1], "pg_bin_dir": sys.argv[2]}})
request = resolve_request({"method": "pg_dump", "schemas": ["gold"]}, config, kubernetes_defined=False)
with warehouse_connection(config.warehouse) as conn:
    schemas = check_file_backup_ready(request, config, conn)
run_file_backup(config, request, schemas, Actor("postgres_backup", "manual__killed", "backup.dump"))
"""


def test_a_backup_killed_mid_dump_leaves_an_in_progress_row_and_its_folder_is_swept(warehouse_db, tmp_path):
    """A real SIGKILL while pg_dump runs: before, the row was written only at the end, so a killed backup
    left nothing in the audit. Now its `in progress` row names the folder; the next backup sweeps the folder
    once no run can still be writing it."""
    import os
    import signal
    import sys
    import time

    folder, bin_dir = tmp_path / "dumps", tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "pg_dump.pid"
    for tool in ("pg_dump", "pg_restore"):  # a pg_dump that hangs, as one stuck on a lock would
        (bin_dir / tool).write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 120\n")
        (bin_dir / tool).chmod(0o755)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "plugins"), str(repo)])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BACKUP, str(folder), str(bin_dir)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (started.exists() and started.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, "the backup ended before pg_dump started"
            time.sleep(0.05)
        assert started.exists(), "pg_dump never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if started.exists() and started.read_text().strip():
            os.kill(int(started.read_text()), signal.SIGKILL)
    (killed,) = [p for p in folder.iterdir() if p.is_dir()]
    assert not (killed / MANIFEST).exists()
    with psycopg.connect(warehouse_db) as conn:
        rows = conn.execute("select action, target, outcome, finished_at, run_id from ops.maintenance_audit "
                            "order by id").fetchall()
    assert rows == [("backup", str(killed), "in progress", None, "manual__killed")]

    later = datetime.now(timezone.utc) + timedelta(hours=3)  # past statement_timeout_s + verify_timeout_s
    summary = backup(backup_config(folder), {"schemas": ["gold"]}, now=later)
    assert summary["outcome"] == "verified" and not killed.exists()
    (swept,) = audit_rows(warehouse_db, action="backup_retention")[:1]
    assert swept["details"]["partial_removed"] == [killed.name]
