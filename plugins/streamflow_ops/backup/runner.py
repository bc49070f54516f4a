"""One pg_dump backup end to end: dump -> verify -> audit -> retention, in that order.

Retention runs only after the backup is good, so a failed backup never deletes older ones. Every
step runs in one task on one worker, because the dump folder may be local to that worker.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streamflow_ops.backup.pg_dump import new_backup_folder, read_manifest, take_dump, write_manifest
from streamflow_ops.backup.request import BackupRequest
from streamflow_ops.backup.retention import apply_retention
from streamflow_ops.backup.verify import verify_dump
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.maintenance.audit import Actor
from streamflow_ops.store import AuditRecord, ensure_ops_schema, write_audit

log = logging.getLogger(__name__)


def record_backup(config: StreamflowOpsConfig, run: Actor, *, target: str, dry_run: bool, outcome: str,
                  started_at: datetime, details: dict[str, Any], rows: int | None = None) -> int:
    """Write the ops.maintenance_audit row for a backup (action "backup")."""
    from streamflow_ops.postgres.connection import warehouse_connection

    ops = config.warehouse.ops_schema
    with warehouse_connection(config.warehouse) as conn:
        ensure_ops_schema(conn, ops)
        return write_audit(conn, AuditRecord(dag_id=run.dag_id, run_id=run.run_id, task_id=run.task_id,
                                             action="backup", target=target, dry_run=dry_run, outcome=outcome,
                                             started_at=started_at, rows_affected=rows, details=details), ops)


def run_pg_dump(config: StreamflowOpsConfig, request: BackupRequest, dump_schemas: list[str], run: Actor,
                now: datetime | None = None) -> dict[str, Any]:
    """Dump, verify, audit, then prune old folders. Returns a summary for XCom and the report."""
    cfg = config.backup
    now = now or datetime.now(timezone.utc)
    root = Path(cfg.folder)
    if request.dry_run:
        plan = apply_retention(root, now, cfg.keep_days, dry_run=True)
        summary = {"method": "pg_dump", "dry_run": True, "would_dump": dump_schemas, "folder": str(root),
                   "format": cfg.dump_format, "verify": request.verify, "would_remove": plan.remove}
        record_backup(config, run, target=str(root), dry_run=True, outcome="dry_run", started_at=now,
                      details=summary)
        return summary
    started = time.monotonic()
    folder = new_backup_folder(cfg.folder, now)
    try:
        manifest = take_dump(config, list(request.schemas), dump_schemas, folder).manifest
        verification = verify_dump(config, folder) if request.verify else None
        manifest.update(status="verified" if verification else "dumped", verification=verification)
        write_manifest(folder, manifest)
    except Exception as exc:
        _mark_failed(folder, exc)
        record_backup(config, run, target=str(folder), dry_run=False, outcome="failed", started_at=now,
                      details={"method": "pg_dump", "location": str(folder), "error": str(exc)[:2000]})
        raise
    duration = round(time.monotonic() - started, 3)
    rows = sum(r["rows"] or 0 for r in manifest["relations"])
    details = {"method": "pg_dump", "location": str(folder), "size_bytes": manifest["size_bytes"],
               "duration_s": duration, "verified": verification is not None, "schemas": manifest["schemas"],
               "dumped_schemas": manifest["dumped_schemas"], "format": manifest["format"],
               "sha256": manifest["sha256"], "server_version": manifest["server_version"],
               "dump_duration_s": manifest["duration_s"],
               "verify_duration_s": verification["duration_s"] if verification else None}
    record_backup(config, run, target=str(folder), dry_run=False, outcome="success", started_at=now,
                  details=details, rows=rows)
    plan = apply_retention(root, now, cfg.keep_days, dry_run=False)
    log.info("retention (keep %s days): removed %s, kept %s", cfg.keep_days, plan.remove, plan.keep)
    return {**details, "rows": rows, "removed": plan.remove, "kept": plan.keep}


def _mark_failed(folder: Path, exc: Exception) -> None:
    """A failed backup must never count as the newest successful one."""
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError):
        manifest = {"manifest_version": 1}
    manifest.update(status="failed", error=str(exc)[:2000])
    write_manifest(folder, manifest)
