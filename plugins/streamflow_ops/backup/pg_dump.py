"""Logical dumps with pg_dump from one consistent snapshot, and the manifest that describes them.

The table row counts in the manifest are taken in the very snapshot pg_dump dumps (pg_export_snapshot +
`pg_dump --snapshot`), so the verification can demand exact equality even while writers are busy.
A materialized view's rows are recorded too, for information only: the dump carries its definition and
a REFRESH, so a restore recomputes it from the restored tables (seen with PostgreSQL 15's
pg_dump). The password reaches pg_dump through PGPASSWORD in its environment, never on the command line.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from streamflow_ops.backup.folder import checksums, disk_size, dumped_manifest, write_manifest
from streamflow_ops.config import BackupConfig, StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)

# Session advisory lock (single bigint key) held while a dump or export of ours runs; status.py looks for it.
BACKUP_LOCK_KEY = 0x5F0BACC0
RELATION_KINDS = {"r": "table", "p": "partitioned_table", "m": "materialized_view", "v": "view", "S": "sequence",
                  "f": "foreign_table", "i": "index"}
TABLE_KINDS = ("r", "p")
# gzip level of the dump. pg_dump's default (6) is single-threaded and was the window's slowest step: a
# 4M-row warehouse dumped in 146 s (104 MB) at the default, 54 s (130 MB) at 1, 29 s (653 MB) at 0; the
# restore took the same ~62-68 s each (bench/results/window_scale.md).
DUMP_COMPRESS_LEVEL = 1
# What decides how values print and parse as text (COPY files, ::text, the digests, a view casting a
# timestamptz to text). Manifests record the source session's; every scratch database gets them.
SESSION_SETTINGS = ("timezone", "datestyle", "intervalstyle", "extra_float_digits")


class BackupBusyError(RuntimeError):
    """Another backup of ours (pg_dump or gold_export) holds the backup lock."""


class DumpError(RuntimeError):
    """pg_dump failed; the message carries its stderr."""


def libpq_env(conn_id: str, database: str | None = None) -> dict[str, str]:
    """PG* variables for pg_dump/pg_restore from the Airflow connection (the password stays off argv)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook.get_connection(conn_id)
    env = {"PGHOST": conn.host or "localhost", "PGPORT": str(conn.port or 5432),
           "PGDATABASE": database or conn.schema or "postgres", "PGAPPNAME": "streamflow_ops_backup",
           "PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "10")}
    if conn.login:
        env["PGUSER"] = conn.login
    if conn.password:
        env["PGPASSWORD"] = conn.password
    extra = conn.extra_dejson
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                     ("sslkey", "PGSSLKEY")):
        if extra.get(key):
            env[var] = str(extra[key])
    return env


def run_tool(argv: list[str], env: dict[str, str], what: str, timeout_s: float | None = None) -> str:
    """Run a PostgreSQL client tool; a non-zero exit or a timeout raises with the tool's own words."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | env
    try:
        proc = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DumpError(f"{what} did not finish within {timeout_s:g}s") from None
    if proc.returncode != 0:
        raise DumpError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def inventory(conn, schemas: list[str], count_materialized_views: bool = True) -> dict[str, Any]:
    """Per-relation kind, size, populated flag and row count, plus object counts per schema and kind.

    Tables are always counted; materialized views only when asked (a restore's counts of them mean nothing).
    """
    relations = []
    counts: dict[str, int] = {}
    for schema, name, kind, populated, size in conn.execute(load_sql("backup_relations.sql"),
                                                             {"schemas": schemas}).fetchall():
        label = RELATION_KINDS[kind]
        counts[f"{schema}.{label}"] = counts.get(f"{schema}.{label}", 0) + 1
        if kind in TABLE_KINDS or kind == "m":
            counted = kind in TABLE_KINDS or (count_materialized_views and populated)
            rows = (conn.execute(load_sql("backup_count_rows.sql", relation=(schema, name))).fetchone()[0]
                    if counted else None)
            relations.append({"schema": schema, "name": name, "kind": label, "rows": rows,
                              "populated": populated, "size_bytes": size})
    for schema, functions in conn.execute(load_sql("backup_functions.sql"), {"schemas": schemas}).fetchall():
        counts[f"{schema}.function"] = functions
    return {"relations": relations, "object_counts": dict(sorted(counts.items()))}


def session_settings(conn) -> dict[str, str]:
    """SESSION_SETTINGS as this connection's session has them (recorded in the manifest as "settings")."""
    return dict(conn.execute(load_sql("backup_session_settings.sql"), {"names": list(SESSION_SETTINGS)}).fetchall())


def dump_argv(cfg: BackupConfig, dump_path: Path, schemas: list[str], snapshot: str) -> list[str]:
    """The pg_dump command line: no credentials in it, only what to dump and how."""
    argv = [str(Path(cfg.pg_bin_dir) / "pg_dump"), "--no-password", f"--format={cfg.dump_format}",
            f"--compress={DUMP_COMPRESS_LEVEL}", f"--file={dump_path}", f"--snapshot={snapshot}",
            f"--lock-wait-timeout={cfg.lock_wait_timeout_s * 1000}"]
    if cfg.dump_format == "directory" and cfg.jobs > 1:
        argv.append(f"--jobs={cfg.jobs}")
    for schema in schemas:
        argv.append(f"--schema={schema}")
    return argv


@contextmanager
def backup_lock(conn) -> Iterator[None]:
    """Hold the backup advisory lock for the session (autocommit connection): two backups never overlap."""
    if not conn.execute("select pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,)).fetchone()[0]:
        raise BackupBusyError("another backup (pg_dump or gold_export) holds the backup lock; "
                              "not starting a second one")
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))


@contextmanager
def snapshot_transaction(conn) -> Iterator[None]:
    """One read-only repeatable-read transaction: everything read inside it sees one snapshot."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        # A transaction that exports its snapshot must outlive pg_dump: no idle timeout while it waits.
        conn.execute("set local idle_in_transaction_session_timeout = 0")
        yield


@dataclass
class DumpResult:
    folder: Path
    manifest: dict[str, Any]


def take_dump(config: StreamflowOpsConfig, requested: list[str], dump_schemas: list[str],
              folder: Path) -> DumpResult:
    """Dump `dump_schemas` into `folder` under the backup lock and write the manifest (status "dumped")."""
    cfg = config.backup
    dump_path = folder / ("dump.pgdump" if cfg.dump_format == "custom" else "dump.dir")
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    with warehouse_connection(config.warehouse, autocommit=True, statement_timeout_s=cfg.statement_timeout_s) as conn, \
            backup_lock(conn), snapshot_transaction(conn):
        snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
        server_version = conn.execute("show server_version").fetchone()[0]
        settings = session_settings(conn)
        contents = inventory(conn, dump_schemas)
        argv = dump_argv(cfg, dump_path, dump_schemas, snapshot)
        log.info("running %s", " ".join(argv))  # no secret in argv: the password is in PGPASSWORD
        run_tool(argv, libpq_env(config.warehouse.conn_id), "pg_dump", timeout_s=cfg.statement_timeout_s)
    digest, files = checksums(dump_path)
    tool_version = run_tool([str(Path(cfg.pg_bin_dir) / "pg_dump"), "--version"], {}, "pg_dump --version").strip()
    schema_sizes: dict[str, int] = {}
    for rel in contents["relations"]:
        schema_sizes[rel["schema"]] = schema_sizes.get(rel["schema"], 0) + rel["size_bytes"]
    manifest = dumped_manifest(
        "pg_dump", started_at, started,
        schemas=requested,
        dependency_schemas=[s for s in dump_schemas if s not in requested],
        dumped_schemas=dump_schemas,
        format=cfg.dump_format,
        jobs=cfg.jobs if cfg.dump_format == "directory" else 1,
        dump=dump_path.name,
        size_bytes=disk_size(dump_path),
        server_schema_size_bytes=schema_sizes,
        sha256=digest,
        files_sha256=files,
        server_version=server_version,
        settings=settings,
        pg_dump_version=tool_version,
        **contents,
    )
    write_manifest(folder, manifest)
    return DumpResult(folder, manifest)
