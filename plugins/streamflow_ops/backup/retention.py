"""Retention of backup folders (pg_dump and gold_export): keep N days, and never the newest VERIFIED backup
of each kind (method and schemas: a gold export cannot restore silver, so a newer one must not let the
last verified full dump go).

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
    kind: str = ""  # what it can restore: backup_kind() of its manifest
    status: str = ""  # the manifest's status; "" when there is no readable manifest


# Manifest statuses of a folder that can never become a backup once no run works on it any more: no
# manifest yet or "dumped" (killed mid-dump or mid-verify), "failed" (its removal failed).
PARTIAL = ("", "dumped", "failed")


@dataclass
class RetentionPlan:
    keep: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    newest_verified: dict[str, str] = field(default_factory=dict)  # kind -> the folder kept for it
    removed: list[str] = field(default_factory=list)  # what a real run deleted so far


def plan_retention(entries: list[BackupEntry], now: datetime, keep_days: int) -> RetentionPlan:
    """Which folders go: older than keep_days, except the newest verified one of each kind. Pure."""
    cutoff = now - timedelta(days=keep_days)
    plan = RetentionPlan()
    for entry in sorted((e for e in entries if e.verified), key=lambda e: e.taken_at):
        plan.newest_verified[entry.kind] = entry.name
    protected = set(plan.newest_verified.values())
    for entry in sorted(entries, key=lambda e: e.taken_at):
        (plan.remove if entry.taken_at < cutoff and entry.name not in protected else plan.keep).append(entry.name)
    return plan


def partial_folders(entries: list[BackupEntry], now: datetime, max_age_s: float) -> list[str]:
    """Folders left by killed or failed backups, older than any backup or verification may still run
    (max_age_s): removed whether or not a backup verifies, so they never pile up. Pure."""
    return [e.name for e in sorted(entries, key=lambda e: e.taken_at)
            if e.status in PARTIAL and (now - e.taken_at).total_seconds() > max_age_s]


def backup_kind(manifest: dict) -> str:
    """What a backup can restore: its method and the schemas asked for."""
    return f"{manifest.get('method', '')}:{','.join(sorted(manifest.get('schemas') or ()))}"


def scan(root: Path) -> list[BackupEntry]:
    """Our backup folders under root; only a readable manifest saying "verified" counts as verified."""
    entries = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        match = _NAME.match(path.name)
        if not match or not path.is_dir() or path.is_symlink():
            continue
        taken_at = datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=timezone.utc)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        entries.append(BackupEntry(path.name, taken_at, manifest.get("status") == VERIFIED, backup_kind(manifest),
                                   str(manifest.get("status") or "")))
    return entries


def remove_planned(root: Path, plan: RetentionPlan) -> None:
    """Delete the plan's folders one by one; plan.removed says how far it got if one fails."""
    for name in plan.remove:
        shutil.rmtree(root / name)
        plan.removed.append(name)
