"""Logical dumps with pg_dump from one consistent snapshot, and the manifest that describes them.

The row counts in the manifest are taken in the very snapshot pg_dump dumps (pg_export_snapshot +
`pg_dump --snapshot`), so the verification can demand exact equality even while writers are busy.
The password reaches pg_dump through PGPASSWORD in its environment, never on the command line.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streamflow_ops.config import BackupConfig, StreamflowOpsConfig
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FOLDER_PREFIX = "streamflow-backup-"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# Session advisory lock (single bigint key) held while a dump of ours runs; status.py looks for it.
BACKUP_LOCK_KEY = 0x5F0BACC0
_KINDS = {"r": "table", "p": "partitioned_table", "m": "materialized_view", "v": "view", "S": "sequence",
          "f": "foreign_table", "i": "index"}
_COUNTED = ("r", "p", "m")


class BackupBusyError(RuntimeError):
    """Another pg_dump backup of ours holds the backup lock."""


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


def run_tool(argv: list[str], env: dict[str, str], what: str) -> str:
    """Run a PostgreSQL client tool; a non-zero exit raises with the tool's own words."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | env
    proc = subprocess.run(argv, env=full_env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DumpError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def inventory(conn, schemas: list[str]) -> dict[str, Any]:
    """Per-relation kind, size and row count, plus object counts per schema and kind."""
    relations = []
    counts: dict[str, int] = {}
    for schema, name, kind, populated, size in conn.execute(load_sql("backup_relations.sql"),
                                                             {"schemas": schemas}).fetchall():
        label = _KINDS[kind]
        counts[f"{schema}.{label}"] = counts.get(f"{schema}.{label}", 0) + 1
        if kind in _COUNTED:
            rows = (conn.execute(load_sql("backup_count_rows.sql", relation=(schema, name))).fetchone()[0]
                    if populated else None)
            relations.append({"schema": schema, "name": name, "kind": label, "rows": rows, "size_bytes": size})
    for schema, functions in conn.execute(load_sql("backup_functions.sql"), {"schemas": schemas}).fetchall():
        counts[f"{schema}.function"] = functions
    return {"relations": relations, "object_counts": dict(sorted(counts.items()))}


def checksums(dump_path: Path) -> tuple[str, dict[str, str]]:
    """sha256 of the dump: of the file, or (directory format) of the sorted per-file digests."""
    if dump_path.is_file():
        return _sha256(dump_path), {}
    files = {p.name: _sha256(p) for p in sorted(dump_path.iterdir()) if p.is_file()}
    overall = hashlib.sha256("".join(f"{n}:{d}\n" for n, d in files.items()).encode()).hexdigest()
    return overall, files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def dump_argv(cfg: BackupConfig, dump_path: Path, schemas: list[str], snapshot: str) -> list[str]:
    """The pg_dump command line: no credentials in it, only what to dump and how."""
    argv = [str(Path(cfg.pg_bin_dir) / "pg_dump"), "--no-password", f"--format={cfg.dump_format}",
            f"--file={dump_path}", f"--snapshot={snapshot}", f"--lock-wait-timeout={cfg.lock_wait_timeout_s * 1000}"]
    if cfg.dump_format == "directory" and cfg.jobs > 1:
        argv.append(f"--jobs={cfg.jobs}")
    for schema in schemas:
        argv.append(f"--schema={schema}")
    return argv


@dataclass
class DumpResult:
    folder: Path
    manifest: dict[str, Any]


def new_backup_folder(root: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime(STAMP_FORMAT)
    folder = Path(root) / f"{FOLDER_PREFIX}{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def take_dump(config: StreamflowOpsConfig, requested: list[str], dump_schemas: list[str],
              folder: Path) -> DumpResult:
    """Dump `dump_schemas` into `folder` under the backup lock and write the manifest (status "dumped")."""
    from streamflow_ops.postgres.connection import warehouse_connection

    cfg = config.backup
    dump_path = folder / ("dump.pgdump" if cfg.dump_format == "custom" else "dump.dir")
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    with warehouse_connection(config.warehouse, autocommit=True, statement_timeout_s=cfg.statement_timeout_s) as conn:
        if not conn.execute("select pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,)).fetchone()[0]:
            raise BackupBusyError("another pg_dump backup holds the backup lock; not starting a second one")
        try:
            with conn.transaction():
                # The exporting transaction must outlive pg_dump: no idle timeout while it waits.
                conn.execute("set transaction isolation level repeatable read, read only")
                conn.execute("set local idle_in_transaction_session_timeout = 0")
                snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
                server_version = conn.execute("show server_version").fetchone()[0]
                contents = inventory(conn, dump_schemas)
                argv = dump_argv(cfg, dump_path, dump_schemas, snapshot)
                log.info("running %s", " ".join(argv))  # no secret in argv: the password is in PGPASSWORD
                run_tool(argv, libpq_env(config.warehouse.conn_id), "pg_dump")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))
    digest, files = checksums(dump_path)
    tool_version = run_tool([str(Path(cfg.pg_bin_dir) / "pg_dump"), "--version"], {}, "pg_dump --version").strip()
    schema_sizes: dict[str, int] = {}
    for rel in contents["relations"]:
        schema_sizes[rel["schema"]] = schema_sizes.get(rel["schema"], 0) + rel["size_bytes"]
    manifest = {
        "manifest_version": 1,
        "status": "dumped",
        "method": "pg_dump",
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "duration_s": round(time.monotonic() - started, 3),
        "schemas": requested,
        "dependency_schemas": [s for s in dump_schemas if s not in requested],
        "dumped_schemas": dump_schemas,
        "format": cfg.dump_format,
        "jobs": cfg.jobs if cfg.dump_format == "directory" else 1,
        "dump": dump_path.name,
        "size_bytes": disk_size(dump_path),
        "server_schema_size_bytes": schema_sizes,
        "sha256": digest,
        "files_sha256": files,
        "server_version": server_version,
        "pg_dump_version": tool_version,
        **contents,
    }
    write_manifest(folder, manifest)
    return DumpResult(folder, manifest)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write atomically: a half-written manifest would read as a corrupt backup."""
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    tmp.replace(folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())
