"""PostgreSQL from Debian's packages, run as the postgres user when we are root."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from sandbox.proc import (Layout, SandboxError, ensure_port_free, running_group, spawn, stop_group,
                          wait_until)

PG_BIN = Path(os.environ.get("STREAMFLOW_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "streamflow"
PASSWORD = "sandbox-pg-8Kq2"  # unusual on purpose: Airflow masks the password wherever it appears in logs
DATABASE = "streamflow"


def _as_postgres(cmd: list[str]) -> list[str]:
    """Root cannot run postgres: drop to the postgres system user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _check_binaries() -> None:
    if not (PG_BIN / "postgres").exists():
        hint = ("run `make pg-install` (apt-get install postgresql-15)" if os.geteuid() == 0
                else "installing it needs root: ask an admin to run `apt-get install postgresql-15`, "
                     "or set STREAMFLOW_PG_BIN to its bin folder")
        raise SandboxError(f"postgres: server binaries not found in {PG_BIN}; {hint}")


def _prepare_dir(path: Path) -> None:
    """The data folder must belong to the user that runs postgres, and its parents must be traversable."""
    if os.geteuid() != 0:
        return
    shutil.chown(path, "postgres", "postgres")
    probe = subprocess.run(_as_postgres(["test", "-x", str(path)]), capture_output=True)
    if probe.returncode != 0:
        raise SandboxError(
            f"postgres: the postgres user cannot reach {path}; give its parent folders o+x "
            f"(chmod o+x ...) or set STREAMFLOW_SANDBOX_DIR to a folder under /tmp"
        )


def dsn(layout: Layout, database: str = DATABASE) -> str:
    return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{layout.postgres_port}/{database}"


def _paths(layout: Layout) -> tuple[Path, Path, Path, Path]:
    base = _base(layout)
    return base, base / "data", base / "postgres.pid", base / "postgres.log"


def _base(layout: Layout) -> Path:
    """The profile's postgres folder; if the postgres user cannot reach it (a clone under /root, say),
    a folder under /var/tmp named after the profile, which `stop` and later runs find the same way."""
    base = layout.service_dir("postgres")
    if os.geteuid() != 0 or _traversable_by_postgres(base):
        return base
    digest = hashlib.sha1(str(layout.root).encode()).hexdigest()[:12]
    fallback = Path("/var/tmp") / f"streamflow-sandbox-{digest}" / "postgres"
    fallback.mkdir(parents=True, exist_ok=True)
    for folder in (fallback.parent, fallback):
        folder.chmod(0o755)
    return fallback


def _traversable_by_postgres(path: Path) -> bool:
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001 and parent.stat().st_uid != _postgres_uid():
            return False
    return True


def _postgres_uid() -> int:
    import pwd

    return pwd.getpwnam("postgres").pw_uid


def _connect(layout: Layout, database: str = "postgres"):
    import psycopg

    return psycopg.connect(dsn(layout, database), connect_timeout=2, autocommit=True)


def _ready(layout: Layout) -> bool:
    with _connect(layout) as conn:
        conn.execute("select 1")
    return True


def start(layout: Layout, timeout: float = 30, settings: dict[str, str] | None = None) -> None:
    """Start (initialising on first use) and wait until it accepts our role's connections.

    settings: extra server settings (-c name=value) that win over the defaults below, e.g. a small
    max_connections for a test; applied only when this call starts the server.
    """
    base, data, pid_file, log_file = _paths(layout)
    if running_group(pid_file) is not None:
        wait_until(lambda: _ready(layout), timeout, "postgres", log_file, pid_file)
        return
    _check_binaries()
    ensure_port_free(layout.postgres_port, "postgres")
    sock_dir = base / "socket"
    sock_dir.mkdir(exist_ok=True)
    for path in (base, sock_dir):
        _prepare_dir(path)
    if not (data / "PG_VERSION").exists():
        pwfile = base / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        result = subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                          "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
            capture_output=True, text=True,
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise SandboxError(f"postgres: initdb failed: {result.stderr.strip().splitlines()[-1:]}")
    if os.geteuid() == 0:
        log_file.touch()
        shutil.chown(log_file, "postgres", "postgres")
    spawn(
        _as_postgres([
            str(PG_BIN / "postgres"), "-D", str(data), "-p", str(layout.postgres_port),
            "-k", str(sock_dir), "-c", f"listen_addresses={layout.bind_host}", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=100",
            "-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB", "-c", "track_io_timing=on",
            "-c", "autovacuum=off", *_remote_hba(layout, base),
            *(arg for name, value in (settings or {}).items() for arg in ("-c", f"{name}={value}")),
        ]),
        pid_file, log_file,
    )
    wait_until(lambda: _ready(layout), timeout, "postgres", log_file, pid_file)
    with _connect(layout) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f'create database "{DATABASE}"')


def _remote_hba(layout: Layout, base: Path) -> list[str]:
    """Bound beyond loopback (--for-containers): accept password logins from any address."""
    if layout.bind_host == "127.0.0.1":
        return []
    hba = base / "pg_hba.containers.conf"
    hba.write_text("local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\n")
    if os.geteuid() == 0:
        shutil.chown(hba, "postgres", "postgres")
    return ["-c", f"hba_file={hba}"]


def stop(layout: Layout) -> bool:
    """Fast shutdown (SIGINT): aborts sessions, writes a checkpoint, removes shared memory."""
    _, _, pid_file, _ = _paths(layout)
    return stop_group(pid_file, first_signal=signal.SIGINT)


def status(layout: Layout) -> str:
    _, _, pid_file, log_file = _paths(layout)
    pgid = running_group(pid_file)
    if pgid is None:
        return "postgres: stopped"
    return f"postgres: running (pgid {pgid}) on 127.0.0.1:{layout.postgres_port}, log {log_file}"
