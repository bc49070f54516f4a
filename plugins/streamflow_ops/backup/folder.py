"""The backup folder (`backup.folder`, the runbook's PVC at /backups): our backup folders in it, their
manifests and checksums, and the two checks every file backup needs before any work.

- writable: proven by writing a file (os.access lies on some mounts);
- shared: the task that validates a run writes a marker, and the task that dumps (possibly on another
  worker, e.g. the maintenance queue of a Celery deployment) must read it back. A folder that is local
  to each worker fails there, naming `backup.folder`, instead of leaving a dump where nobody finds it.
Both raise BackupInputError (retrying cannot fix them) and are usable on their own.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FOLDER_PREFIX = "streamflow-backup-"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MARKER_PREFIX = ".streamflow-shared-"
# Markers of runs that never reached their dump task are swept after this long.
MARKER_MAX_AGE_S = 2 * 86_400


class BackupInputError(ValueError):
    """Bad input; the message starts with the param or config key at fault. Retrying cannot fix it."""


def check_folder_writable(folder: str) -> None:
    """Create the folder if needed and prove we can write there."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BackupInputError(f"backup.folder: {folder} is not writable ({exc.strerror or exc})") from None


def marker_token(*parts: str) -> str:
    """A file-name-safe token for one run (e.g. dag_id, run_id): the writer and the reader derive the same."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def write_share_marker(folder: str, token: str) -> Path:
    """Leave proof of this worker's view of the folder for a later task to read. Sweeps stale markers."""
    check_folder_writable(folder)
    root = Path(folder)
    for old in root.glob(f"{MARKER_PREFIX}*"):
        try:
            if time.time() - old.stat().st_mtime > MARKER_MAX_AGE_S:
                old.unlink()
        except OSError:
            pass  # another worker swept it first
    marker = root / f"{MARKER_PREFIX}{token}"
    marker.write_text(json.dumps({"token": token, "host": socket.gethostname(), "pid": os.getpid(),
                                  "written_at": datetime.now(timezone.utc).isoformat()}))
    return marker


def check_share_marker(folder: str, token: str) -> dict[str, Any]:
    """The marker `write_share_marker` left, read on this worker; BackupInputError if this worker cannot see it."""
    marker = Path(folder) / f"{MARKER_PREFIX}{token}"
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise BackupInputError(
            f"backup.folder: {folder} is not shared between the workers of this run: the marker {marker.name} "
            f"written by an earlier task is not readable on {socket.gethostname()} "
            f"({getattr(exc, 'strerror', None) or exc}). Mount the same volume (the runbook's /backups PVC) "
            f"at {folder} on every worker that runs backup tasks") from None


def remove_share_marker(folder: str, token: str) -> None:
    (Path(folder) / f"{MARKER_PREFIX}{token}").unlink(missing_ok=True)


def new_backup_folder(root: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime(STAMP_FORMAT)
    folder = Path(root) / f"{FOLDER_PREFIX}{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def dumped_manifest(method: str, started_at: datetime, started: float, **fields: Any) -> dict[str, Any]:
    """The manifest of a backup just written: status "dumped" until verification says otherwise (a backup
    killed before that keeps it), what every method records about the run, then the method's own fields.
    `started` is the time.monotonic() reading at the start."""
    return {"manifest_version": 2, "status": "dumped", "method": method, "started_at": started_at.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "duration_s": round(time.monotonic() - started, 3), **fields}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write atomically: a half-written manifest would read as a corrupt backup."""
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    tmp.replace(folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(dump_path: Path) -> tuple[str, dict[str, str]]:
    """sha256 of a dump: of the file, or (a directory) of the sorted per-file digests."""
    if dump_path.is_file():
        return sha256_file(dump_path), {}
    files = {str(p.relative_to(dump_path)): sha256_file(p) for p in sorted(dump_path.rglob("*")) if p.is_file()}
    overall = hashlib.sha256("".join(f"{n}:{d}\n" for n, d in files.items()).encode()).hexdigest()
    return overall, files


def disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
