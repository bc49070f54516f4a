"""Restore verification: a backup counts as verified only once it has been restored and matched its manifest.

Every restore goes into a scratch database named `streamflow_verify_<epoch>_<random>`, dropped in every
case (finally). A verification killed before its `finally` leaves one behind: the next verification drops
those older than `backup.verify_timeout_s` first, with an audit row each.

What a pg_dump restore can promise, and so what is compared on a live warehouse:
- tables: exact row counts against the counts taken in the dump's own snapshot;
- materialized views: present, populated when the source was, and a REFRESH succeeds in the restore.
  Never their row counts: the dump carries no view rows, the restore recomputes them from the restored
  tables, which are newer than the view was (seen with PostgreSQL 15's pg_dump);
- object counts per schema and kind (tables, views, indexes, sequences, functions).
A mismatch is a VerificationError, an AirflowFailException: retrying the same dump cannot change it.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import psycopg
from airflow.sdk.exceptions import AirflowFailException
from psycopg import sql

from streamflow_ops.backup.audit import SCRATCH_DROP_ACTION, record_backup
from streamflow_ops.backup.folder import checksums, read_manifest
from streamflow_ops.backup.pg_dump import DumpError, inventory, libpq_env, run_tool
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.maintenance.gold_refresh import discover
from streamflow_ops.store import Actor
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)
SCRATCH_PREFIX = "streamflow_verify_"
_SCRATCH_NAME = re.compile(rf"^{SCRATCH_PREFIX}(\d{{10}})_[0-9a-f]{{8}}$")


class VerificationError(AirflowFailException):
    """The backup cannot be trusted; the message names the relation or file and says why."""


# --- pure -------------------------------------------------------------------------------------

def scratch_name(now_epoch: float) -> str:
    return f"{SCRATCH_PREFIX}{int(now_epoch):010d}_{uuid.uuid4().hex[:8]}"


def stale_scratch_databases(names: Iterable[str], now_epoch: float, timeout_s: float) -> list[str]:
    """Scratch databases created longer than `timeout_s` ago: no verification can still be using them."""
    stale = []
    for name in names:
        match = _SCRATCH_NAME.match(name)
        if match and now_epoch - int(match.group(1)) > timeout_s:
            stale.append(name)
    return stale


def compare_restore(manifest: dict[str, Any], restored: dict[str, Any], refresh_errors: dict[str, str]) -> list[str]:
    """Every difference between what the dump's snapshot held and what the restore can promise."""
    problems = []
    want = {(r["schema"], r["name"]): r for r in manifest["relations"]}
    got = {(r["schema"], r["name"]): r for r in restored["relations"]}
    for key, rel in want.items():
        name = ".".join(key)
        if key not in got:
            problems.append(f"{rel['kind']} {name} is missing after restore")
        elif rel["kind"] == "materialized_view":
            if rel.get("populated", True) and not got[key]["populated"]:
                problems.append(f"materialized_view {name} was populated in the source but not after restore")
            if name in refresh_errors:
                problems.append(f"materialized_view {name} does not refresh after restore: {refresh_errors[name]}")
        elif got[key]["rows"] != rel["rows"]:
            problems.append(f"{rel['kind']} {name}: {rel['rows']} rows in the dump's snapshot, "
                            f"{got[key]['rows']} restored")
    problems += [f"{got[key]['kind']} {'.'.join(key)} was restored but is not in the manifest"
                 for key in got.keys() - want.keys()]
    counts_want, counts_got = manifest["object_counts"], restored["object_counts"]
    for key in sorted(counts_want.keys() | counts_got.keys()):
        if counts_want.get(key, 0) != counts_got.get(key, 0):
            problems.append(f"object count {key}: {counts_want.get(key, 0)} in the manifest, "
                            f"{counts_got.get(key, 0)} restored")
    return problems


# --- I/O --------------------------------------------------------------------------------------

def drop_stale_scratch_databases(admin, config: StreamflowOpsConfig, run: Actor,
                                 now_epoch: float | None = None) -> list[str]:
    """Drop what killed verifications left behind (older than backup.verify_timeout_s); one audit row each."""
    now_epoch = time.time() if now_epoch is None else now_epoch
    names = [row[0] for row in admin.execute(load_sql("backup_scratch_databases.sql")).fetchall()]
    stale = stale_scratch_databases(names, now_epoch, config.backup.verify_timeout_s)
    for name in stale:
        started = datetime.now(timezone.utc)
        admin.execute(load_sql("backup_drop_database.sql", database=name))
        log.warning("dropped stale scratch database %s (left by a verification killed more than %ss ago)",
                    name, config.backup.verify_timeout_s)
        record_backup(config, run, action=SCRATCH_DROP_ACTION, target=name, dry_run=False, outcome="success",
                      started_at=started, details={"reason": "left by a killed verification",
                                                   "verify_timeout_s": config.backup.verify_timeout_s})
    return stale


@contextmanager
def scratch_database(config: StreamflowOpsConfig, run: Actor, settings: dict[str, str] | None = None) -> Iterator[str]:
    """A new empty database for one restore, dropped in every case; stale ones are dropped first.

    `settings` (a manifest's "settings") become the database's defaults, so every session of the restore
    reads and prints values like the source did: a source in another TimeZone compares like with like.
    Reusable as it is by a restore drill."""
    with warehouse_connection(config.warehouse, autocommit=True) as admin:
        drop_stale_scratch_databases(admin, config, run)
        name = scratch_name(time.time())
        admin.execute(load_sql("backup_create_database.sql", database=name))
        try:
            for setting, value in (settings or {}).items():
                admin.execute(load_sql("backup_scratch_setting.sql", database=name, setting=setting,
                                       value=sql.Literal(value)))
            yield name
        finally:
            admin.execute(load_sql("backup_drop_database.sql", database=name))


def check_checksum(folder: Path, manifest: dict[str, Any]) -> None:
    dump_path = folder / manifest["dump"]
    if not dump_path.exists():
        raise VerificationError(f"dump {dump_path} is missing")
    digest, files = checksums(dump_path)
    if digest != manifest["sha256"]:
        changed = sorted(n for n in manifest.get("files_sha256", {}) if files.get(n) != manifest["files_sha256"][n])
        raise VerificationError(
            f"checksum mismatch for {dump_path}: the dump is truncated or corrupted since it was written "
            f"(sha256 {digest[:12]}..., manifest {manifest['sha256'][:12]}...)"
            + (f"; changed files: {changed}" if changed else ""))


def refresh_materialized_views(conn, schemas: list[str]) -> dict[str, str]:
    """Refresh every materialized view of the restore, dependencies first; the error per view that failed."""
    errors = {}
    for schema in schemas:
        for view in discover(conn, schema):
            try:
                conn.execute(load_sql("gold_refresh.sql", view=(schema, view.name)))
            except psycopg.Error as exc:
                errors[f"{schema}.{view.name}"] = str(exc).strip().splitlines()[0]
    return errors


def verify_dump(config: StreamflowOpsConfig, folder: Path, run: Actor) -> dict[str, Any]:
    """Checksum, a full pg_restore into a scratch database, then what the restore can promise (above)."""
    cfg = config.backup
    started = time.monotonic()
    manifest = read_manifest(folder)
    check_checksum(folder, manifest)
    dump_path = folder / manifest["dump"]
    with scratch_database(config, run, manifest.get("settings")) as scratch:
        log.info("restoring %s into scratch database %s (dropped afterwards)", dump_path, scratch)
        argv = [str(Path(cfg.pg_bin_dir) / "pg_restore"), "--no-password", "--exit-on-error",
                "--no-owner", "--no-privileges", f"--dbname={scratch}", f"--jobs={cfg.jobs}", str(dump_path)]
        try:
            run_tool(argv, libpq_env(config.warehouse.conn_id, database=scratch), "pg_restore",
                     timeout_s=cfg.verify_timeout_s)
        except DumpError as exc:
            raise VerificationError(f"the dump {dump_path} does not restore: {exc}") from None
        with warehouse_connection(config.warehouse, database=scratch,
                                  statement_timeout_s=cfg.verify_timeout_s) as restored_conn:
            restored = inventory(restored_conn, manifest["dumped_schemas"], count_materialized_views=False)
            refresh_errors = refresh_materialized_views(restored_conn, manifest["dumped_schemas"])
    problems = compare_restore(manifest, restored, refresh_errors)
    if problems:
        raise VerificationError(f"the restore of {dump_path} does not match its snapshot: " + "; ".join(problems))
    tables = [r for r in manifest["relations"] if r["kind"] != "materialized_view"]
    views = [r for r in manifest["relations"] if r["kind"] == "materialized_view"]
    return {"verified": True, "scratch_database": scratch, "tables": len(tables),
            "table_rows": sum(r["rows"] or 0 for r in tables), "materialized_views_refreshed": len(views),
            "duration_s": round(time.monotonic() - started, 3)}
