"""Retention of backup folders (pg_dump and gold_export): keep N days, and never the newest VERIFIED backup.

Only folders named like ours (streamflow-backup-<UTC stamp>) are ever considered: anything else in
the backup folder is not ours to delete. An unverified, failed or half-written backup (killed mid-dump
or mid-verify: its manifest still says "dumped") never counts as the backup to keep. Retention runs
only after a verified backup, so a failed or unverified one never deletes older ones.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from streamflow_ops.backup.audit import VERIFIED
from streamflow_ops.backup.folder import FOLDER_PREFIX, MANIFEST, STAMP_FORMAT

_NAME = re.compile(rf"^{re.escape(FOLDER_PREFIX)}(\d{{8}}T\d{{6}}Z)$")


@dataclass(frozen=True)
class BackupEntry:
    name: str
    taken_at: datetime
    verified: bool


@dataclass
class RetentionPlan:
    keep: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    newest_verified: str | None = None


def plan_retention(entries: list[BackupEntry], now: datetime, keep_days: int) -> RetentionPlan:
    """Which folders go: older than keep_days, except the newest verified one. Pure."""
    cutoff = now - timedelta(days=keep_days)
    verified = [e for e in entries if e.verified]
    newest = max(verified, key=lambda e: e.taken_at).name if verified else None
    plan = RetentionPlan(newest_verified=newest)
    for entry in sorted(entries, key=lambda e: e.taken_at):
        (plan.remove if entry.taken_at < cutoff and entry.name != newest else plan.keep).append(entry.name)
    return plan


def scan(root: Path) -> list[BackupEntry]:
    """Our backup folders under root; only a readable manifest saying "verified" counts as verified."""
    entries = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        match = _NAME.match(path.name)
        if not match or not path.is_dir() or path.is_symlink():
            continue
        taken_at = datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=timezone.utc)
        try:
            verified = json.loads((path / MANIFEST).read_text()).get("status") == VERIFIED
        except (OSError, ValueError):
            verified = False
        entries.append(BackupEntry(path.name, taken_at, verified))
    return entries


def apply_retention(root: Path, now: datetime, keep_days: int, dry_run: bool) -> RetentionPlan:
    """Plan, then delete unless dry_run. Returns the plan either way (what went, or what would go)."""
    plan = plan_retention(scan(root), now, keep_days)
    if not dry_run:
        for name in plan.remove:
            shutil.rmtree(root / name)
    return plan
