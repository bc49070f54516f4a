"""One file backup (pg_dump or gold_export) end to end: dump -> verify -> audit -> retention, in that order.

Retention runs only after a verified backup, so a failed or unverified one never deletes older ones.
The dump runs in one task, because only the task that wrote the dump may trust its folder (the share
marker proves the folder is the one the validating task saw).

The nightly window's full pg_dump (bronze, silver and gold) is verified AFTER the window
(`verify_after`): its restore roughly doubles the step at production volume (bench/results/window_scale.md),
so the dump is recorded `unverified` with details.verification = "pending" and its manifest says
"pending"; `verify_pending` (the DAG postgres_backup_verify, scheduled on BACKUP_ASSET) restores it and
only then records it `verified`.

A backup's audit row is committed `in progress` before the dump and closed when it ends (store.audited):
a killed backup leaves a trace, and a failed one its `failed` row whatever broke (a full disk included:
the row lives in PostgreSQL, nothing is written to the backup folder on that path); its folder is
removed. Folders of killed runs are swept at the start of the next backup or verification, so partial
folders never pile up, verified backups or not.
"""
from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streamflow_ops.backup.audit import (
    BACKUP_ACTION,
    DRY_RUN,
    FAILED,
    PENDING,
    RETENTION_ACTION,
    UNVERIFIED,
    VERIFIED,
    record_backup,
)
from streamflow_ops.backup.folder import new_backup_folder, read_manifest, write_manifest
from streamflow_ops.backup.gold_export import take_export, verify_export
from streamflow_ops.backup.pg_dump import take_dump
from streamflow_ops.backup.request import BackupRequest
from streamflow_ops.backup.retention import RetentionPlan, partial_folders, plan_retention, remove_planned, scan
from streamflow_ops.backup.verify import VerificationError, verify_dump
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.store import Actor, audited, ensure_ops_schema

log = logging.getLogger(__name__)


def verify_folder(config: StreamflowOpsConfig, folder: Path, run: Actor) -> dict[str, Any]:
    """Restore the backup in `folder` into a scratch database and compare it with its manifest, by method
    (VerificationError on a mismatch). Reusable as it is, e.g. by a restore drill."""
    method = read_manifest(folder)["method"]
    return verify_export(config, folder, run) if method == "gold_export" else verify_dump(config, folder, run)


def _details(manifest: dict[str, Any], folder: Path, duration_s: float, verification: dict | None,
             pending: bool) -> dict[str, Any]:
    """The audit row's details of a backup (the dump's row, and the verification's row after the window)."""
    return {"method": manifest["method"], "location": str(folder), "size_bytes": manifest["size_bytes"],
            "duration_s": duration_s, "verified": verification is not None,
            "verification": "passed" if verification else "pending" if pending else "skipped (verify=false)",
            "schemas": manifest["schemas"], "dumped_schemas": manifest["dumped_schemas"],
            "format": manifest["format"], "server_version": manifest["server_version"],
            "dump_duration_s": manifest["duration_s"],
            "verify_duration_s": verification["duration_s"] if verification else None}


def run_file_backup(config: StreamflowOpsConfig, request: BackupRequest, dump_schemas: list[str], run: Actor,
                    now: datetime | None = None, verify_after: bool = False) -> dict[str, Any]:
    """Dump, verify, audit (verified | unverified | failed), then prune old folders after a verified one.

    verify_after: a pg_dump asked to be verified is left pending for verify_pending (the window's)."""
    cfg = config.backup
    now = now or datetime.now(timezone.utc)
    root = Path(cfg.folder)
    pending = verify_after and request.verify and request.method == "pg_dump"
    if request.dry_run:
        plan = plan_retention(scan(root), now, cfg.keep_days)
        summary = {"method": request.method, "dry_run": True, "would_dump": dump_schemas, "folder": str(root),
                   "verify": "after the window (postgres_backup_verify)" if pending else request.verify,
                   "would_remove": plan.remove}
        record_backup(config, run, target=str(root), dry_run=True, outcome=DRY_RUN, started_at=now, details=summary)
        return summary
    sweep_partial(config, run, now)
    started = time.monotonic()
    try:
        folder = new_backup_folder(cfg.folder, now)
    except BaseException as exc:
        fail_backup(config, run, None, now, exc, method=request.method, schemas=list(request.schemas))
        raise
    # The audit row is committed `in progress` before the dump (store.audited): a backup killed midway
    # leaves a trace that maintenance.last_success reports; it is closed in PostgreSQL, never on the disk.
    with warehouse_connection(config.warehouse) as conn:
        ensure_ops_schema(conn, config.warehouse.ops_schema)
        with audited(conn, run, BACKUP_ACTION, str(folder), dry_run=False) as record:
            try:
                if request.method == "gold_export":
                    manifest = take_export(config, list(request.schemas), folder)
                else:
                    manifest = take_dump(config, list(request.schemas), dump_schemas, folder).manifest
                verification = verify_folder(config, folder, run) if request.verify and not pending else None
                manifest.update(status=VERIFIED if verification else PENDING if pending else UNVERIFIED,
                                verification=verification)
                write_manifest(folder, manifest)
            except BaseException:
                record.details.update(method=request.method, location=str(folder), schemas=list(request.schemas),
                                      duration_s=round(time.monotonic() - started, 3),
                                      folder_removed=remove_folder(folder))
                raise
            outcome = VERIFIED if verification else UNVERIFIED
            details = _details(manifest, folder, round(time.monotonic() - started, 3), verification, pending)
            rows = sum(r["rows"] or 0 for r in manifest["relations"])
            record.outcome, record.details, record.rows_affected = outcome, details, rows
    summary = {**details, "outcome": outcome, "rows": rows, "removed": [], "kept": None}
    if outcome == VERIFIED:
        plan = _prune(config, run, root, now)
        summary.update(removed=plan.removed, kept=plan.keep)
    return summary


def pending_folders(root: Path) -> list[Path]:
    """Our backup folders whose manifest says their verification is still to run, oldest first."""
    return [root / e.name for e in sorted(scan(root), key=lambda e: e.taken_at) if e.status == PENDING]


def verify_pending(config: StreamflowOpsConfig, run: Actor, dry_run: bool = False) -> list[dict[str, Any]]:
    """Verify every pending backup (left by the window), oldest first: `verified` (manifest and a new audit
    row, started_at = when the backup was taken) then retention. One that does not restore or match is
    `failed` and removed, and the task fails naming it after the others were verified. Any other error
    (PostgreSQL unreachable) leaves it pending for the retry. dry_run: only lists them."""
    root = Path(config.backup.folder)
    if dry_run:
        return [{"location": str(folder), "dry_run": True, "would_verify": True} for folder in pending_folders(root)]
    sweep_partial(config, run, datetime.now(timezone.utc))
    done, problems = [], []
    for folder in pending_folders(root):
        manifest = read_manifest(folder)
        taken_at = datetime.fromisoformat(manifest["started_at"])
        try:
            verification = verify_folder(config, folder, run)
        except VerificationError as exc:
            fail_backup(config, run, folder, taken_at, exc, method=manifest["method"], schemas=manifest["schemas"],
                        duration_s=manifest["duration_s"])
            problems.append(str(exc))
            continue
        manifest.update(status=VERIFIED, verification=verification)
        write_manifest(folder, manifest)
        details = _details(manifest, folder, manifest["duration_s"], verification, pending=False)
        rows = sum(r["rows"] or 0 for r in manifest["relations"])
        record_backup(config, run, target=str(folder), dry_run=False, outcome=VERIFIED, started_at=taken_at,
                      details=details, rows=rows)
        plan = _prune(config, run, root, datetime.now(timezone.utc))
        done.append({**details, "outcome": VERIFIED, "rows": rows, "removed": plan.removed, "kept": plan.keep})
    if problems:
        raise VerificationError("; ".join(problems))
    return done


def fail_backup(config: StreamflowOpsConfig, run: Actor, folder: Path | None, started_at: datetime,
                exc: BaseException, **details: Any) -> None:
    """The failed backup's folder goes first (it can never be restored, and on a full disk that frees the
    space), then its `failed` audit row, which needs nothing from the backup folder: a disk that is full
    cannot lose it. Never raises: the backup's own error is what the caller re-raises."""
    removed = None if folder is None else remove_folder(folder)
    try:
        record_backup(config, run, target=str(folder or config.backup.folder), dry_run=False, outcome=FAILED,
                      started_at=started_at,
                      details={**details, "location": str(folder) if folder else None, "folder_removed": removed,
                               "error": f"{type(exc).__name__}: {exc}"[:2000]})
    except Exception:  # noqa: BLE001 - the backup's own error must surface, not this one
        log.exception("could not write the failed audit row of the backup %s", folder)


def remove_folder(folder: Path) -> bool:
    """Remove a failed backup's folder (it can never be restored; on a full disk this frees the space)."""
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        log.error("could not remove the failed backup folder %s; the next backup sweeps it", folder)
        return False
    return True


def sweep_partial(config: StreamflowOpsConfig, run: Actor, now: datetime) -> list[str]:
    """Remove folders that killed or failed backups left (retention.partial_folders), older than a dump
    and its verification may take (statement_timeout_s + verify_timeout_s); one audit row when any went."""
    cfg = config.backup
    root = Path(cfg.folder)
    names = partial_folders(scan(root), now, cfg.statement_timeout_s + cfg.verify_timeout_s)
    if not names:
        return []
    for name in names:
        shutil.rmtree(root / name, ignore_errors=True)
    removed = [n for n in names if not (root / n).exists()]
    record_backup(config, run, action=RETENTION_ACTION, target=str(root), dry_run=False,
                  outcome="success" if removed == names else FAILED, started_at=now, rows=len(removed),
                  details={"partial_removed": removed, "not_removed": [n for n in names if n not in removed],
                           "reason": "left by a killed or failed backup"})
    log.warning("removed partial backup folders %s", removed)
    return removed


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
