"""`make ui` / `make ui-stop`: the sandbox plus `airflow standalone` on 127.0.0.1, stopped as one group.

Standalone runs in its own session (setsid) and its process group id is recorded, because a plain
SIGTERM to its parent orphans the scheduler, api-server, dag-processor and triggerer. Its metadata
database is SQLite in the profile's AIRFLOW_HOME: the warehouse PostgreSQL's connection budget (the
`postgres.connections` check watches it) stays the platform's. The tests reuse `Standalone`.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from sandbox import connections
from sandbox.proc import REPO, Layout, SandboxError, ensure_port_free, running_group, spawn, stop_group, wait_until

DEV_PORT_BASE = 45400  # airflow_settings.yaml points at this profile's ports
ADMIN = "admin"
SETTINGS_FILE = REPO / "airflow_settings.yaml"
# Manual DAGs run only when triggered; the hourly sweep is harmless. The nightly window
# (maintenance_tasks) deletes for real, so it stays paused until someone unpauses it.
# The remediations too: a real run of one waits for a person's approval before it acts.
UNPAUSED_DAGS = ("bronze_retention", "postgres_vacuum", "gold_refresh", "postgres_backup",
                 "airflow_housekeeping", "platform_health_sweep", "remediate_postgres_connections",
                 "remediate_flink_taskmanagers", "remediate_flink_restart", "remediate_restart_workload")


@dataclass(frozen=True)
class Standalone:
    """Where one profile's `airflow standalone` lives and how to reach it."""

    layout: Layout
    # Export the profile's sandbox connections (AIRFLOW_CONN_*) when it is not the dev profile.
    sandbox_connections: bool = True

    @property
    def dev_profile(self) -> bool:
        return self.layout.port_base == DEV_PORT_BASE

    @property
    def home(self) -> Path:
        # Not the tests' airflow_home: a running scheduler must never see dag.test()'s runs.
        return self.layout.root / "airflow_ui"

    @property
    def api_port(self) -> int:
        return self.layout.port_base + 80

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "standalone.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "standalone.log"

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    def password(self) -> str:
        return json.loads(self.password_file.read_text())[ADMIN]

    def env(self, extra: dict[str, str] | None = None, profile_connections: bool = True) -> dict[str, str]:
        """The environment of this profile's Airflow processes (standalone and the settings loader)."""
        base = self.layout.port_base
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(base + 93),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(base + 94),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        if profile_connections and not self.dev_profile:
            # airflow_settings.yaml names the dev profile's ports; another profile's connections come
            # from the environment, which Airflow reads before the metadata database.
            if self.sandbox_connections:
                env.update(connections.airflow_env(self.layout))
            env["AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API"] = json.dumps({
                "conn_type": "http", "host": "127.0.0.1", "port": self.api_port, "schema": "http",
                "login": ADMIN, "password": self.password()})
        env.update(extra or {})
        return env

    def _write_password_file(self) -> None:
        """The admin password is the one airflow_settings.yaml gives streamflow_airflow_api, so that the
        sweep's self-check, people and tests all log in with it (random if the file names none)."""
        self.home.mkdir(parents=True, exist_ok=True)
        settings = yaml.safe_load(SETTINGS_FILE.read_text())["airflow"]
        api_conn = next((c for c in settings.get("connections") or [] if c["conn_id"] == "streamflow_airflow_api"
                         and c.get("conn_login") == ADMIN), {})
        password = api_conn.get("conn_password") or secrets.token_urlsafe(12)
        self.password_file.write_text(json.dumps({ADMIN: password}) + "\n")
        self.password_file.chmod(0o600)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).json()

    def healthy(self) -> bool:
        """The scheduler, dag processor and triggerer have heartbeats, the metadata database answers."""
        body = self.health()
        return all(body.get(part, {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor", "triggerer"))

    def start(self, extra_env: dict[str, str] | None = None, timeout: float = 180) -> None:
        """Spawn standalone in its own session; apply airflow_settings.yaml once it has migrated the
        database (while the scheduler starts); then poll health until every component is up."""
        if running_group(self.pid_file) is None:
            for port in (self.api_port, self.layout.port_base + 93, self.layout.port_base + 94):
                ensure_port_free(port, "airflow standalone")
            self._write_password_file()
            spawn([sys.executable, "-m", "airflow", "standalone"], self.pid_file, self.log_file,
                  env=self.env(extra_env), cwd=REPO)
            wait_until(lambda: bool(self.health()), timeout, "airflow standalone", self.log_file, self.pid_file,
                       interval=0.5)
            loader = ["-m", "scripts.apply_airflow_settings", str(SETTINGS_FILE)]
            if not self.dev_profile:  # the file's connections name the dev profile's ports
                loader.append("--no-connections")
            self._python(loader, self.env(extra_env, profile_connections=False))
        wait_until(self.healthy, timeout, "airflow standalone", self.log_file, self.pid_file, interval=0.5)

    def _python(self, args: list[str], env: dict[str, str]) -> None:
        result = subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        if result.returncode != 0:
            raise SandboxError(f"python {' '.join(args)} failed: {result.stderr.strip()[-500:]}")

    def stop(self) -> bool:
        """Signal the whole group (SIGTERM, then SIGKILL after the grace period)."""
        return stop_group(self.pid_file, grace=30)

    def client(self) -> httpx.Client:
        """A REST client for /api/v2 carrying a JWT from POST /auth/token."""
        response = httpx.post(f"{self.url}/auth/token", json={"username": ADMIN, "password": self.password()},
                              timeout=10)
        response.raise_for_status()
        token = response.json()["access_token"]
        return httpx.Client(base_url=f"{self.url}/api/v2", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    def unpause(self, dag_ids: tuple[str, ...], timeout: float = 120) -> list[str]:
        """Unpause the DAGs once the dag processor has parsed them; returns the ids that do not exist."""
        missing = []
        with self.client() as api:
            for dag_id in dag_ids:
                if not (REPO / "dags" / f"{dag_id}.py").exists():
                    missing.append(dag_id)
                    continue
                deadline = time.monotonic() + timeout
                while api.get(f"/dags/{dag_id}").status_code == 404:
                    if time.monotonic() > deadline:
                        raise SandboxError(f"{dag_id} was not parsed within {timeout:.0f}s; "
                                           f"see {self.log_file} and the UI's DAG import errors")
                    time.sleep(0.5)
                api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        return missing


def _sandbox(command: str, layout: Layout, *options: str) -> None:
    env = {**os.environ, "STREAMFLOW_SANDBOX_DIR": str(layout.root),
           "STREAMFLOW_SANDBOX_PORT_BASE": str(layout.port_base)}
    subprocess.run([sys.executable, "-m", "sandbox", command, *options], env=env, cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.ui", description=__doc__)
    parser.add_argument("command", choices=["start", "stop"])
    args = parser.parse_args(argv)
    layout = Layout.from_env()
    airflow = Standalone(layout)
    try:
        if args.command == "stop":
            print("airflow standalone: stopped" if airflow.stop() else "airflow standalone: was not running")
            _sandbox("stop", layout)
            return 0
        _sandbox("start", layout, "--live")  # data flows while you click around
        started = time.monotonic()
        airflow.start()
        missing = airflow.unpause(UNPAUSED_DAGS)
    except (SandboxError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        print(f"ui: {exc}\nui: stop what was started with `make ui-stop`", file=sys.stderr)
        return 2
    print(f"\nAirflow is ready in {time.monotonic() - started:.0f}s: {airflow.url}")
    print(f"  log in as '{ADMIN}', password: {airflow.password()}  (from {airflow.password_file})")
    with airflow.client() as api:
        paused = sorted(d["dag_id"] for d in api.get("/dags", params={"paused": True}).json()["dags"])
    print(f"  unpaused: {', '.join(d for d in UNPAUSED_DAGS if d not in missing)}")
    print(f"  paused: {', '.join(paused) or 'none'} (maintenance_tasks deletes for real at 03:00 UTC: unpause it "
          f"in the UI when you want the nightly window)")
    if missing:
        print(f"  not in dags/ yet: {', '.join(missing)}")
    print(f"  monitoring (the sweep's streamflow_prometheus/alertmanager/pushgateway): Prometheus "
          f"http://127.0.0.1:{layout.prometheus_port}, Alertmanager http://127.0.0.1:{layout.alertmanager_port}, "
          f"Pushgateway http://127.0.0.1:{layout.pushgateway_port}")
    print(f"  logs: {airflow.log_file}\n  stop everything: make ui-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
