"""Process bookkeeping shared by every sandbox service.

Each service runs in its own process group (start_new_session), its group id is written to a pid
file, and stop signals that group only. Nothing is ever killed by name.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
PROFILE_PORTS = 100  # a profile owns port_base .. port_base + 99


class SandboxError(RuntimeError):
    """An environment problem, reported to the user as one actionable line."""


@dataclass(frozen=True)
class Layout:
    """Where a sandbox profile keeps its data, which ports it uses, and on which address.

    Services bind bind_host (loopback unless started --for-containers); Kafka advertises
    advertised_host, the address its clients are sent back to after bootstrapping.
    """

    root: Path
    port_base: int
    bind_host: str = "127.0.0.1"
    advertised_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, default_dir: str = ".sandbox/dev", default_base: int = 45400) -> "Layout":
        root = Path(os.environ.get("STREAMFLOW_SANDBOX_DIR", REPO / default_dir)).resolve()
        base = int(os.environ.get("STREAMFLOW_SANDBOX_PORT_BASE", default_base))
        return cls(root=root, port_base=base)

    def reserve_ports(self) -> None:
        """Reserve the profile's whole range (port_base .. +PROFILE_PORTS-1) before any service starts.

        Reserving each port only as its service starts left the others open to ephemeral assignment
        meanwhile (a Tansu of a test profile lost base+96 that way: AddrInUse)."""
        reserve_ports(self.port_base, self.port_base + PROFILE_PORTS - 1)

    def for_containers(self, advertised_host: str | None = None) -> Layout:
        """This profile bound to every interface, so that Airflow in containers (astro dev start) reaches
        it as host.docker.internal; Kafka advertises an address both containers and this machine reach."""
        return dataclasses.replace(self, bind_host="0.0.0.0", advertised_host=advertised_host or primary_address())

    @property
    def postgres_port(self) -> int:
        return self.port_base + 32

    @property
    def kafka_port(self) -> int:
        return self.port_base + 92

    @property
    def flink_rest_port(self) -> int:
        return self.port_base + 81

    @property
    def flink_rpc_port(self) -> int:
        return self.port_base + 23

    @property
    def flink_blob_port(self) -> int:
        return self.port_base + 24

    # The monitoring stack (sandbox/monitoring.py); 40-54 stay free even in layouts shifted by up to +7.
    @property
    def prometheus_port(self) -> int:
        return self.port_base + 40

    @property
    def pushgateway_port(self) -> int:
        return self.port_base + 41

    @property
    def alertmanager_port(self) -> int:
        return self.port_base + 43

    @property
    def webhook_port(self) -> int:
        return self.port_base + 44

    def service_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def primary_address() -> str:
    """This machine's outbound IPv4 address (reachable from its containers through the Docker bridge)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # a documentation address: choosing a route sends nothing
            address = sock.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        raise SandboxError("--for-containers: no non-loopback IPv4 address found; pass --advertise-host "
                           "with an address the containers reach")
    return address


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def _covers(reserved: str, port: int) -> bool:
    for part in filter(None, reserved.strip().split(",")):
        low, _, high = part.partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False


def reserve_ports(low: int, high: int) -> None:
    """Keep the kernel from handing ports low..high out as ephemeral ports (best effort: root only).

    Our ports lie inside Linux's ephemeral range (32768-60999): on a busy machine an outgoing connection
    can hold one for a moment, and a broker that binds it then dies with "Address in use". Reserved
    ports are skipped by automatic assignment; explicit binds, like ours, still work. The kernel's list
    is replaced on write, so what it holds is kept and the range appended.
    """
    try:
        reserved = RESERVED_PORTS.read_text()
        if not all(_covers(reserved, port) for port in range(low, high + 1)):
            entry = str(low) if low == high else f"{low}-{high}"
            RESERVED_PORTS.write_text(f"{reserved.strip()},{entry}".lstrip(","))
    except (OSError, ValueError):
        pass  # not root, or no such sysctl: the port check below still names a clash


def reserve_port(port: int) -> None:
    reserve_ports(port, port)


def ensure_port_free(port: int, service: str) -> None:
    reserve_port(port)
    if port_in_use(port):
        raise SandboxError(
            f"{service}: port {port} on 127.0.0.1 is already in use by another process; "
            f"stop it or move the sandbox with STREAMFLOW_SANDBOX_PORT_BASE=<other base> "
            f"(ports used: base+23..base+92)"
        )


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_group(pid_file: Path) -> int | None:
    """The process group recorded in pid_file, if it still has live members."""
    pgid = _read_pid(pid_file)
    if pgid is not None and group_alive(pgid):
        return pgid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(cmd: list[str], pid_file: Path, log_file: Path, env: dict | None = None,
          cwd: Path | None = None) -> int:
    """Start cmd in a new session (its own process group) and record the group id."""
    log = open(log_file, "ab")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env=env, cwd=cwd,
    )
    log.close()
    pid_file.write_text(str(proc.pid))
    return proc.pid


def stop_group(pid_file: Path, first_signal: int = signal.SIGTERM, grace: float = 20.0) -> bool:
    """Signal the recorded group, escalate to SIGKILL after grace seconds. True if one was running."""
    pgid = running_group(pid_file)
    if pgid is None:
        return False
    try:
        os.killpg(pgid, first_signal)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        _reap(pgid)
        time.sleep(0.1)
    if group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and group_alive(pgid):
            _reap(pgid)
            time.sleep(0.05)
    _reap(pgid)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect an exited child of ours so that it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(ready: Callable[[], bool], timeout: float, service: str, log_file: Path,
               pid_file: Path | None = None, interval: float = 0.2) -> None:
    """Poll ready() until it returns True; fail with the log's location otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            pass
        if pid_file is not None and running_group(pid_file) is None:
            raise SandboxError(
                f"{service} exited during start-up; see its log: {log_file} "
                f"(last line: {_last_line(log_file)})"
            )
        time.sleep(interval)
    raise SandboxError(
        f"{service} did not become ready within {timeout:.0f}s; see its log: {log_file} "
        f"(last line: {_last_line(log_file)})"
    )


def _last_line(log_file: Path) -> str:
    try:
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "<no log>"
    return lines[-1][:200] if lines else "<empty log>"
