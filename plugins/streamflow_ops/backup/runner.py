"""One file backup (pg_dump or gold_export) end to end: dump -> verify -> audit -> retention, in that order.

Retention runs only after a verified backup, so a failed or unverified one never deletes older ones.
Every step runs in one task, because only the task that wrote the dump may trust its folder (the share
marker proves the folder is the one the validating task saw).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streamflow_ops.backup.audit import DRY_RUN, FAILED, RETENTION_ACTION, UNVERIFIED, VERIFIED, record_backup
from streamflow_ops.backup.folder import new_backup_folder, read_manifest, write_manifest
from streamflow_ops.backup.gold_export import take_export, verify_export
from streamflow_ops.backup.pg_dump import take_dump
from streamflow_ops.backup.request import BackupRequest
from streamflow_ops.backup.retention import RetentionPlan, plan_retention, remove_planned, scan
from streamflow_ops.backup.verify import verify_dump
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.store import Actor

log = logging.getLogger(__name__)


def _dump_and_verify(config: StreamflowOpsConfig, request: BackupRequest, dump_schemas: list[str],
                     folder: Path, run: Actor) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if request.method == "gold_export":
        manifest = take_export(config, list(request.schemas), folder)
        return manifest, verify_export(config, folder, run) if request.verify else None

    manifest = take_dump(config, list(request.schemas), dump_schemas, folder).manifest
    return manifest, verify_dump(config, folder, run) if request.verify else None


def run_file_backup(config: StreamflowOpsConfig, request: BackupRequest, dump_schemas: list[str], run: Actor,
                    now: datetime | None = None) -> dict[str, Any]:
    """Dump, verify, audit (verified | unverified | failed), then prune old folders after a verified one."""
    cfg = config.backup
    now = now or datetime.now(timezone.utc)
    root = Path(cfg.folder)
    if request.dry_run:
        plan = plan_retention(scan(root), now, cfg.keep_days)
        summary = {"method": request.method, "dry_run": True, "would_dump": dump_schemas, "folder": str(root),
                   "verify": request.verify, "would_remove": plan.remove}
        record_backup(config, run, target=str(root), dry_run=True, outcome=DRY_RUN, started_at=now, details=summary)
        return summary
    started = time.monotonic()
    folder = new_backup_folder(cfg.folder, now)
    try:
        manifest, verification = _dump_and_verify(config, request, dump_schemas, folder, run)
        outcome = VERIFIED if verification else UNVERIFIED
        manifest.update(status=outcome, verification=verification)
        write_manifest(folder, manifest)
    except BaseException as exc:
        _mark_failed(folder, exc)
        record_backup(config, run, target=str(folder), dry_run=False, outcome=FAILED, started_at=now,
                      details={"method": request.method, "location": str(folder), "schemas": list(request.schemas),
                               "duration_s": round(time.monotonic() - started, 3),
                               "error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    duration = round(time.monotonic() - started, 3)
    rows = sum(r["rows"] or 0 for r in manifest["relations"])
    details = {"method": request.method, "location": str(folder), "size_bytes": manifest["size_bytes"],
               "duration_s": duration, "verified": verification is not None, "schemas": manifest["schemas"],
               "dumped_schemas": manifest["dumped_schemas"], "format": manifest["format"],
               "server_version": manifest["server_version"], "dump_duration_s": manifest["duration_s"],
               "verify_duration_s": verification["duration_s"] if verification else None}
    record_backup(config, run, target=str(folder), dry_run=False, outcome=outcome, started_at=now,
                  details=details, rows=rows)
    summary = {**details, "outcome": outcome, "rows": rows, "removed": [], "kept": None}
    if outcome == VERIFIED:
        plan = _prune(config, run, root, now)
        summary.update(removed=plan.removed, kept=plan.keep)
    return summary


def _prune(config: StreamflowOpsConfig, run: Actor, root: Path, now: datetime) -> RetentionPlan:
    """Folder retention after a verified backup, in one audit row: what was deleted (also when a deletion
    fails midway), what was kept and which verified backups were protected."""
    started_at = datetime.now(timezone.utc)
    plan = plan_retention(scan(root), now, config.backup.keep_days)
    details = {"keep_days": config.backup.keep_days, "removed": plan.removed, "kept": plan.keep,
               "newest_verified": plan.newest_verified}
    try:
        remove_planned(root, plan)
    except Exception as exc:
        record_backup(config, run, action=RETENTION_ACTION, target=str(root), dry_run=False, outcome=FAILED,
                      started_at=started_at, rows=len(plan.removed),
                      details={**details, "not_removed": [n for n in plan.remove if n not in plan.removed],
                               "error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    record_backup(config, run, action=RETENTION_ACTION, target=str(root), dry_run=False, outcome="success",
                  started_at=started_at, rows=len(plan.removed), details=details)
    log.info("retention (keep %s days): removed %s, kept %s", config.backup.keep_days, plan.removed, plan.keep)
    return plan


def _mark_failed(folder: Path, exc: BaseException) -> None:
    """A failed backup must never count as a verified one."""
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError):
        manifest = {"manifest_version": 2}
    manifest.update(status=FAILED, error=str(exc)[:2000])
    write_manifest(folder, manifest)
