"""Task log cleanup on the machine the task runs on.

Only Airflow's task log tree is touched: files named *.log below top-level `dag_id=...` folders (the
default log_filename_template). Scheduler, DAG-processor and triggerer logs, symlinks and anything
else are left alone. Folders emptied by the cleanup are removed, never the log folder itself.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class LogFile:
    path: str  # relative to the log folder
    mtime: float
    size: int


@dataclass
class LogCleanup:
    remove: list[LogFile] = field(default_factory=list)
    keep: list[LogFile] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.remove)


def plan_log_cleanup(files: list[LogFile], now: datetime, retention_days: int) -> LogCleanup:
    """Files last written before now - retention_days go. Pure."""
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    plan = LogCleanup()
    for f in sorted(files, key=lambda f: f.path):
        (plan.remove if f.mtime < cutoff else plan.keep).append(f)
    return plan


def scan_task_logs(root: Path) -> list[LogFile]:
    files = []
    for top in sorted(root.iterdir()) if root.is_dir() else []:
        if not top.name.startswith("dag_id=") or top.is_symlink() or not top.is_dir():
            continue
        for dirpath, _, names in os.walk(top, followlinks=False):
            for name in names:
                path = Path(dirpath) / name
                if name.endswith(".log") and not path.is_symlink() and path.is_file():
                    st = path.stat()
                    files.append(LogFile(str(path.relative_to(root)), st.st_mtime, st.st_size))
    return files


def clean_task_logs(root: Path, now: datetime, retention_days: int, dry_run: bool) -> LogCleanup:
    """Plan, then (unless dry_run) delete the files and the folders that became empty."""
    plan = plan_log_cleanup(scan_task_logs(root), now, retention_days)
    if dry_run:
        return plan
    for f in plan.remove:
        (root / f.path).unlink(missing_ok=True)
    for parent in sorted({(root / f.path).parent for f in plan.remove}, key=lambda p: len(p.parts), reverse=True):
        _prune_empty(parent, root)
    return plan


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            return
        folder = folder.parent
