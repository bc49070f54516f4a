"""gold_export: the runbook's "Export Gold layer for reporting", restorable on its own.

A pg_dump of gold carries the materialized views' definitions, not their rows, and does not restore
without silver. This export carries every gold relation's rows as data instead, read in ONE snapshot
(one repeatable-read transaction): per relation a gzip'd COPY file, its row count and an
order-independent checksum of its rows computed in that same snapshot. It restores into an empty
database as plain tables (with the source's indexes), no silver needed:

    <backup.folder>/streamflow-backup-<UTC>/
      manifest.json   relations, columns, rows, checksum, file sha256, sizes
      schema.sql      create schema / create table (exact column types)
      data/<nnn>-<schema>.<name>.copy.gz   COPY text format
      indexes.sql     the source's index definitions, after the data
      restore.sql     psql script: `cd <folder> && psql -v ON_ERROR_STOP=1 -d <empty db> -f restore.sql`

Verification restores the files into a scratch database with the same code a person would run
(`restore_export`) and compares each relation's count and checksum with the manifest, exactly.
"""
from __future__ import annotations

import gzip
import logging
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from streamflow_ops.backup.folder import disk_size, dumped_manifest, read_manifest, sha256_file, write_manifest
from streamflow_ops.backup.pg_dump import (
    RELATION_KINDS,
    DumpError,
    backup_lock,
    session_settings,
    snapshot_transaction,
)
from streamflow_ops.backup.verify import VerificationError, scratch_database
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.store import Actor
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)
DATA_DIR = "data"
SCHEMA_FILE, INDEX_FILE, RESTORE_FILE = "schema.sql", "indexes.sql", "restore.sql"
COMPRESS_LEVEL = 6


def data_file(position: int, schema: str, name: str) -> str:
    """A file name safe in a shell and in restore.sql whatever the relation is called; unique by position."""
    return f"{DATA_DIR}/{position:03d}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{schema}.{name}") + ".copy.gz"


def relation_digest(conn, schema: str, name: str) -> tuple[int, str]:
    """(rows, checksum) of one relation as this connection's snapshot sees it."""
    rows, checksum = conn.execute(load_sql("backup_relation_digest.sql", relation=(schema, name))).fetchone()
    return rows, checksum


def _ddl(conn, schemas: list[str], relations: list[dict[str, Any]]) -> str:
    statements = [load_sql("backup_create_schema.sql", schema=s) for s in schemas]
    for rel in relations:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(sql.Identifier(c["name"]), sql.SQL(c["type"]),
                                      sql.SQL(" not null" if c["not_null"] else ""))
            for c in rel["columns"])
        statements.append(load_sql("backup_create_table.sql", relation=(rel["schema"], rel["name"]), columns=columns))
    return "".join(f"{s.as_string(conn)};\n" for s in statements)


def _restore_script(conn, relations: list[dict[str, Any]], settings: dict[str, str]) -> str:
    lines = ["-- Restore this gold export into an EMPTY database, from this folder:",
             "--   cd <this folder> && psql -v ON_ERROR_STOP=1 -d <database> -f restore.sql",
             "\\set ON_ERROR_STOP on", "begin;",
             # The COPY files were written under these: read them back the same way (DateStyle, TimeZone).
             *(f"set local {name} = {sql.Literal(value).as_string(conn)};" for name, value in settings.items()),
             f"\\i {SCHEMA_FILE}"]
    for rel in relations:
        target = sql.Identifier(rel["schema"], rel["name"]).as_string(conn)
        lines.append(f"\\copy {target} from program 'gzip -dc {rel['file']}'")
    lines += [f"\\i {INDEX_FILE}", "commit;", ""]
    return "\n".join(lines)


def take_export(config: StreamflowOpsConfig, schemas: list[str], folder: Path) -> dict[str, Any]:
    """Export every relation of `schemas` as data from one snapshot; write the manifest (status "dumped")."""
    cfg = config.backup
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    (folder / DATA_DIR).mkdir()
    relations: list[dict[str, Any]] = []
    indexes: list[str] = []
    with warehouse_connection(config.warehouse, autocommit=True, statement_timeout_s=cfg.statement_timeout_s) as conn, \
            backup_lock(conn), snapshot_transaction(conn):
        server_version = conn.execute("show server_version").fetchone()[0]
        settings = session_settings(conn)
        for oid, schema, name, kind, populated in conn.execute(load_sql("backup_export_relations.sql"),
                                                                {"schemas": schemas}).fetchall():
            if not populated:
                raise DumpError(f"materialized_view {schema}.{name} is not populated: it has no rows to export; "
                                f"refresh it (gold_refresh) first")
            columns = [{"name": n, "type": t, "not_null": nn}
                       for n, t, nn in conn.execute(load_sql("backup_export_columns.sql"), {"oid": oid}).fetchall()]
            rows, checksum = relation_digest(conn, schema, name)
            file = data_file(len(relations), schema, name)
            path = folder / file
            copy_out = load_sql("backup_export_copy_out.sql", relation=(schema, name))
            with conn.cursor() as cur, cur.copy(copy_out) as copy, \
                    gzip.open(path, "wb", compresslevel=COMPRESS_LEVEL) as out:
                pending = bytearray()  # COPY OUT yields one message per row: compress in 1 MB chunks
                for block in copy:
                    pending += block
                    if len(pending) >= 1 << 20:
                        out.write(pending)
                        pending.clear()
                out.write(pending)
            indexes += [r[0] for r in conn.execute(load_sql("backup_export_indexes.sql"), {"oid": oid}).fetchall()]
            relations.append({"schema": schema, "name": name, "kind": RELATION_KINDS[kind], "rows": rows,
                              "checksum": checksum, "columns": columns, "file": file,
                              "file_sha256": sha256_file(path), "file_bytes": path.stat().st_size})
        (folder / SCHEMA_FILE).write_text(_ddl(conn, schemas, relations))
        (folder / INDEX_FILE).write_text("".join(f"{d};\n" for d in indexes))
        (folder / RESTORE_FILE).write_text(_restore_script(conn, relations, settings))
    manifest = dumped_manifest(
        "gold_export", started_at, started,
        schemas=schemas,
        dumped_schemas=schemas,
        format="copy-text-gzip",
        size_bytes=disk_size(folder / DATA_DIR) + sum((folder / f).stat().st_size
                                                      for f in (SCHEMA_FILE, INDEX_FILE, RESTORE_FILE)),
        server_version=server_version,
        settings=settings,
        relations=relations,
        indexes=len(indexes),
        files_sha256={f: sha256_file(folder / f) for f in (SCHEMA_FILE, INDEX_FILE)},
    )
    write_manifest(folder, manifest)
    return manifest


def restore_export(conn, folder: Path) -> None:
    """Load an export into the (empty) database of `conn`: tables, rows, indexes, in one transaction."""
    manifest = read_manifest(folder)
    with conn.transaction():
        for name, value in (manifest.get("settings") or {}).items():  # read the files as they were written
            conn.execute(load_sql("backup_set_local.sql"), {"name": name, "value": value})
        conn.execute((folder / SCHEMA_FILE).read_text())
        for rel in manifest["relations"]:
            with conn.cursor() as cur, cur.copy(load_sql("backup_export_copy_in.sql",
                                                         relation=(rel["schema"], rel["name"]))) as copy, \
                    gzip.open(folder / rel["file"], "rb") as data:
                for block in iter(lambda: data.read(1 << 20), b""):
                    copy.write(block)
        indexes = (folder / INDEX_FILE).read_text()
        if indexes.strip():
            conn.execute(indexes)


def compare_export(manifest: dict[str, Any], restored: dict[str, tuple[int, str] | None]) -> list[str]:
    """Each relation's rows and checksum after the restore against the snapshot's. Pure."""
    problems = []
    for rel in manifest["relations"]:
        name = f"{rel['schema']}.{rel['name']}"
        got = restored.get(name)
        if got is None:
            problems.append(f"{rel['kind']} {name} is missing after restore")
        elif got[0] != rel["rows"]:
            problems.append(f"{rel['kind']} {name}: {rel['rows']} rows in the snapshot, {got[0]} restored")
        elif got[1] != rel["checksum"]:
            problems.append(f"{rel['kind']} {name}: the restored rows differ from the snapshot's "
                            f"(checksum {got[1][:12]}..., snapshot {rel['checksum'][:12]}...)")
    return problems


def check_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file still has the sha256 it was written with; a changed data file names its relation."""
    for rel in manifest["relations"]:
        path = folder / rel["file"]
        if not path.exists() or sha256_file(path) != rel["file_sha256"]:
            raise VerificationError(f"{rel['kind']} {rel['schema']}.{rel['name']}: data file {path} is missing, "
                                    f"truncated or corrupted since it was written (sha256 differs from the manifest)")
    for name, digest in manifest["files_sha256"].items():
        if sha256_file(folder / name) != digest:
            raise VerificationError(f"{folder / name} is corrupted since it was written (sha256 differs)")


def verify_export(config: StreamflowOpsConfig, folder: Path, run: Actor) -> dict[str, Any]:
    """Checksums, a restore into an empty scratch database, then rows and checksum per relation, exactly."""
    started = time.monotonic()
    manifest = read_manifest(folder)
    check_files(folder, manifest)
    with scratch_database(config, run, manifest.get("settings")) as scratch, \
            warehouse_connection(config.warehouse, database=scratch,
                                 statement_timeout_s=config.backup.verify_timeout_s) as conn:
        log.info("restoring gold export %s into scratch database %s (dropped afterwards)", folder, scratch)
        try:
            restore_export(conn, folder)
        except (psycopg.Error, OSError, EOFError) as exc:
            raise VerificationError(f"the gold export {folder} does not restore into an empty database: "
                                    f"{type(exc).__name__}: {str(exc).strip()[:500]}") from None
        restored = {f"{rel['schema']}.{rel['name']}": relation_digest(conn, rel["schema"], rel["name"])
                    for rel in manifest["relations"]}
        schemas = [r[0] for r in conn.execute(load_sql("backup_schemas.sql")).fetchall()]
    problems = compare_export(manifest, restored)
    if problems:
        raise VerificationError(f"the restore of {folder} does not match its snapshot: " + "; ".join(problems))
    return {"verified": True, "scratch_database": scratch, "relations": len(manifest["relations"]),
            "rows": sum(r["rows"] for r in manifest["relations"]), "restored_schemas": schemas,
            "duration_s": round(time.monotonic() - started, 3)}
