"""Restore verification: a dump counts as a backup only once it has been restored and matched its manifest.

The restore goes into a scratch database with a unique name that is dropped in every case (finally),
so a failed verification never leaves a copy of the warehouse behind.
"""
from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from psycopg import sql

from streamflow_ops.backup.pg_dump import checksums, inventory, libpq_env, read_manifest, run_tool, DumpError
from streamflow_ops.config import StreamflowOpsConfig

log = logging.getLogger(__name__)
SCRATCH_PREFIX = "streamflow_verify_"


class VerificationError(RuntimeError):
    """The dump cannot be trusted; the message says why in words an operator can act on."""


def compare_inventory(expected: dict[str, Any], restored: dict[str, Any]) -> list[str]:
    """Every difference between the manifest and the restored database. Pure."""
    problems = []
    want = {(r["schema"], r["name"]): r for r in expected["relations"]}
    got = {(r["schema"], r["name"]): r for r in restored["relations"]}
    for key, rel in want.items():
        name = ".".join(key)
        if key not in got:
            problems.append(f"{rel['kind']} {name} is missing after restore")
        elif got[key]["rows"] != rel["rows"]:
            problems.append(f"{rel['kind']} {name}: {rel['rows']} rows in the manifest, "
                            f"{got[key]['rows']} restored")
    problems += [f"{got[key]['kind']} {'.'.join(key)} was restored but is not in the manifest"
                 for key in got.keys() - want.keys()]
    counts_want, counts_got = expected["object_counts"], restored["object_counts"]
    for key in sorted(counts_want.keys() | counts_got.keys()):
        if counts_want.get(key, 0) != counts_got.get(key, 0):
            problems.append(f"object count {key}: {counts_want.get(key, 0)} in the manifest, "
                            f"{counts_got.get(key, 0)} restored")
    return problems


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


def verify_dump(config: StreamflowOpsConfig, folder: Path) -> dict[str, Any]:
    """Checksum, then a full pg_restore into a scratch database, then counts against the manifest."""
    from streamflow_ops.postgres.connection import warehouse_connection

    cfg = config.backup
    started = time.monotonic()
    manifest = read_manifest(folder)
    check_checksum(folder, manifest)
    dump_path = folder / manifest["dump"]
    scratch = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:16]}"
    with warehouse_connection(config.warehouse, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {} template template0").format(sql.Identifier(scratch)))
        log.info("restoring %s into scratch database %s (dropped afterwards)", dump_path, scratch)
        try:
            argv = [str(Path(cfg.pg_bin_dir) / "pg_restore"), "--no-password", "--exit-on-error",
                    "--no-owner", "--no-privileges", f"--dbname={scratch}", f"--jobs={cfg.jobs}", str(dump_path)]
            try:
                run_tool(argv, libpq_env(config.warehouse.conn_id, database=scratch), "pg_restore")
            except DumpError as exc:
                raise VerificationError(f"the dump {dump_path} does not restore: {exc}") from None
            with warehouse_connection(config.warehouse, database=scratch,
                                      statement_timeout_s=cfg.statement_timeout_s) as restored_conn:
                restored = inventory(restored_conn, manifest["dumped_schemas"])
        finally:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(scratch)))
    problems = compare_inventory(manifest, restored)
    if problems:
        raise VerificationError(f"the restore of {dump_path} does not match its manifest: " + "; ".join(problems))
    relations = manifest["relations"]
    return {"verified": True, "scratch_database": scratch, "relations": len(relations),
            "rows": sum(r["rows"] or 0 for r in relations), "duration_s": round(time.monotonic() - started, 3)}
