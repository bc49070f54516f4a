"""A real distributed Airflow on loopback: CeleryExecutor with Redis and two workers.

`python -m sandbox start --celery` (make celery) runs, each in its own process group with a pid file
under `<profile>/airflow_celery/`: Debian's redis-server as the broker (no persistence), the metadata
database `airflow_meta` on the profile's PostgreSQL, scheduler, dag-processor, triggerer, api-server,
and the workers `w1` and `w2`. Each worker serves `default`, `maintenance` and a queue of its own
(its name) for the task-log cleanup, writes task logs to its own folder, and reports its own host name
(`[core] hostname_callable`), as two machines would. The Airflow environment (ports, auth, connections)
is `scripts.ui.Standalone`'s, moved to this deployment's home and ports.

Ports (base + ...): 60 api-server, 61 Redis, 62 triggerer log server, 63.. one log server per worker.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import connections, postgres
from sandbox.proc import (REPO, Layout, SandboxError, ensure_port_free, group_alive, running_group, spawn,
                          stop_group, wait_until)
from scripts.ui import SETTINGS_FILE, Standalone

REDIS_SERVER = Path("/usr/bin/redis-server")
META_DATABASE = "airflow_meta"
WORKERS = ("w1", "w2")
WORKER_QUEUES = ("default", "maintenance")
HOSTNAME_ENV = "STREAMFLOW_WORKER_HOSTNAME"
# Started in this order (the API server first: every other component talks to it), stopped in the
# reverse once the workers are gone.
COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
WORKER_CONCURRENCY = 2  # task slots per worker (the sandbox has 2 cores for everything)


def worker_hostname() -> str:
    """`[core] hostname_callable` of the sandbox: the worker's own name, so that two workers on one machine
    show up as two hosts in the task instances; every other component reports the machine's name."""
    import socket

    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


@dataclass(frozen=True)
class CeleryCluster(Standalone):
    """One profile's distributed Airflow. extra_env: settings for every component (a test's warehouse
    connection, a short heartbeat timeout, ...); applied when start() starts the processes."""

    workers: tuple[str, ...] = WORKERS
    dags_folder: Path = REPO / "dags"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Key-by-key overrides of the streamflow_ops_config every component gets, per section.
    config_overrides: dict[str, dict] = field(default_factory=dict)
    # The tests use a metadata database of their own: their unpaused DAGs must not wake up under
    # `make celery` on the same profile.
    meta_database: str = META_DATABASE

    @property
    def home(self) -> Path:
        return self.layout.root / "airflow_celery"

    @property
    def api_port(self) -> int:
        return self.layout.port_base + 60

    @property
    def redis_port(self) -> int:
        return self.layout.port_base + 61

    @property
    def log_file(self) -> Path:  # Standalone's error messages point here
        return self.home / "scheduler.log"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def worker_log_folder(self, worker: str) -> Path:
        return self.home / "logs" / worker

    def worker_log_port(self, worker: str) -> int:
        return self.layout.port_base + 63 + self.workers.index(worker)

    def pid_path(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def meta_dsn(self) -> str:
        return postgres.dsn(self.layout, self.meta_database).replace("postgresql://", "postgresql+psycopg2://", 1)

    def _secrets(self) -> dict[str, str]:
        """Shared by every component: the JWT secret signs the workers' execution-API tokens."""
        path = self.home / "secrets.json"
        if not path.exists():
            from cryptography.fernet import Fernet

            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"jwt": secrets.token_urlsafe(32), "api": secrets.token_urlsafe(32),
                                        "fernet": Fernet.generate_key().decode()}))
            path.chmod(0o600)
        return json.loads(path.read_text())

    def worker_queues(self, worker: str) -> list[str]:
        return [*WORKER_QUEUES, worker]

    def component_env(self, worker: str | None = None, config_overrides: dict[str, dict] | None = None
                      ) -> dict[str, str]:
        """Standalone's environment on this home and these ports, with the CeleryExecutor settings.
        config_overrides: this process's own streamflow_ops_config keys, on top of the cluster's."""
        keys = self._secrets()
        base = self.layout.port_base
        env = self.env(profile_connections=False)
        env.update(connections.airflow_env(self.layout))
        env.update({
            "AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API": json.dumps({
                "conn_type": "http", "host": "127.0.0.1", "port": self.api_port, "schema": "http",
                "login": "admin", "password": self.password()}),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sandbox.celery.worker_hostname",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.meta_dsn(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "4",
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__API__SECRET_KEY": keys["api"],
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{self.redis_port}/1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs" / "components"),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(base + 62),
            # The housekeeping step fans its log cleanup out to one task per worker queue.
            "AIRFLOW__STREAMFLOW_OPS__WORKER_QUEUES": ",".join(self.workers),
            "AIRFLOW__STREAMFLOW_OPS__MAINTENANCE_QUEUE": "maintenance",
        })
        config = {**connections.sandbox_config(self.layout), "backup": {"folder": str(self.home / "backups")}}
        for section, values in [*self.config_overrides.items(), *(config_overrides or {}).items()]:
            config[section] = {**config.get(section, {}), **values}
        if worker is not None:
            folder = str(self.worker_log_folder(worker))
            env.update({
                HOSTNAME_ENV: worker,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": folder,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port(worker)),
            })
            # This worker's own log folder is the one its housekeeping task cleans.
            config["housekeeping"] = {**config.get("housekeeping", {}), "log_folder": folder}
        env["AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG"] = json.dumps(config)
        env.update(self.extra_env)
        return env

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 240, fresh: bool = False) -> None:
        """Redis, the metadata database, then every component; returns once all are healthy.

        fresh: start from an empty metadata database (no runs of earlier sessions), cloned from a
        migrated template kept in the profile's PostgreSQL; only when nothing of the cluster runs."""
        postgres.start(self.layout)
        self.home.mkdir(parents=True, exist_ok=True)
        self._start_redis()
        if not self.password_file.exists():
            self._write_password_file()
        if not any(running_group(self.pid_path(n)) for n in (*COMPONENTS, *self.workers)):
            for port in (self.api_port, self.layout.port_base + 62):
                ensure_port_free(port, "airflow (celery)")
            self._prepare_meta_database(fresh)
        for name in COMPONENTS:
            self._spawn(name, [sys.executable, "-m", "airflow", name], self.component_env())
        for worker in self.workers:
            self.start_worker(worker)
        wait_until(self.healthy, timeout, "airflow (celery)", self.log_file, self.pid_path("scheduler"),
                   interval=0.5)
        self.wait_for_workers(timeout)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        if running_group(self.pid_path(name)) is None:
            spawn(cmd, self.pid_path(name), self.log_path(name), env=env, cwd=REPO)

    def start_worker(self, worker: str, config_overrides: dict[str, dict] | None = None) -> None:
        """Start one worker (a no-op when it runs); config_overrides: settings of this worker alone."""
        self.worker_log_folder(worker).mkdir(parents=True, exist_ok=True)
        if running_group(self.pid_path(worker)) is None:
            ensure_port_free(self.worker_log_port(worker), f"celery worker {worker}")
        self._spawn(worker, [sys.executable, "-m", "airflow", "celery", "worker",
                             "--celery-hostname", f"{worker}@streamflow-sandbox",
                             "--queues", ",".join(self.worker_queues(worker)),
                             "--concurrency", str(WORKER_CONCURRENCY), "--without-gossip"],
                    self.component_env(worker, config_overrides))

    def _start_redis(self) -> None:
        if not REDIS_SERVER.exists():
            raise SandboxError("redis: /usr/bin/redis-server not found; run `make redis-install` "
                               "(apt-get install redis-server)")
        pid_file, log_file = self.pid_path("redis"), self.log_path("redis")
        if running_group(pid_file) is None:
            ensure_port_free(self.redis_port, "redis")
            folder = self.home / "redis"
            folder.mkdir(exist_ok=True)
            spawn([str(REDIS_SERVER), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(folder),
                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"],
                  pid_file, log_file)
        wait_until(self._redis_ready, 20, "redis", log_file, pid_file)

    def _redis_ready(self) -> bool:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=1).ping())

    def _template_name(self) -> str:
        """Named after the Airflow version and airflow_settings.yaml, so that a change makes a new one."""
        import hashlib

        from airflow import __version__

        digest = hashlib.sha1(SETTINGS_FILE.read_bytes()).hexdigest()[:8]
        return f"{META_DATABASE}_tpl_{__version__.replace('.', '_')}_{digest}"

    def drop_meta_database(self) -> None:
        """Drop this cluster's metadata database (stop the cluster first); the template stays."""
        import psycopg

        with psycopg.connect(postgres.dsn(self.layout, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.meta_database}" with (force)')

    def _prepare_meta_database(self, fresh: bool) -> None:
        """The metadata database as a clone of a migrated template that carries airflow_settings.yaml's pools and
        variables (connections come from the environment); migrated in place when it already exists."""
        import psycopg

        template = self._template_name()
        with psycopg.connect(postgres.dsn(self.layout, "postgres"), autocommit=True) as conn:
            def exists(name: str) -> bool:
                return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None

            if not exists(template):
                stale = conn.execute("select datname from pg_database where datname like %s",
                                     (f"{META_DATABASE}_tpl_%",)).fetchall()
                for (name,) in stale:  # made for another Airflow version or settings file
                    conn.execute(f'drop database if exists "{name}" with (force)')
                conn.execute(f'create database "{template}"')
                try:
                    self._migrate(postgres.dsn(self.layout, template))
                except SandboxError:
                    conn.execute(f'drop database "{template}" with (force)')
                    raise
            if fresh:
                conn.execute(f'drop database if exists "{self.meta_database}" with (force)')
            if not exists(self.meta_database):
                conn.execute(f'create database "{self.meta_database}" template "{template}"')
                return
        self._migrate(postgres.dsn(self.layout, self.meta_database))

    def _migrate(self, dsn: str) -> None:
        """Schema, then the pools and the config variable of airflow_settings.yaml (connections: env)."""
        env = {**self.component_env(),
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn.replace("postgresql://", "postgresql+psycopg2://", 1)}
        for args in (["-m", "airflow", "db", "migrate"],
                     ["-m", "scripts.apply_airflow_settings", str(SETTINGS_FILE), "--no-connections"]):
            result = subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True,
                                    timeout=600, check=False)
            if result.returncode != 0:
                raise SandboxError(f"airflow (celery): python {' '.join(args)} failed: "
                                   f"{result.stderr.strip()[-500:]}")

    def celery_app(self):
        """The executor's Celery app, pointed at this broker (to ask the workers what they run)."""
        from celery import Celery

        return Celery(broker=self.broker_url)

    def live_workers(self) -> dict[str, list]:
        """Active tasks per live worker node, from the workers themselves (celery inspect)."""
        return self.celery_app().control.inspect(timeout=2).active() or {}

    def wait_for_workers(self, timeout: float = 120) -> None:
        wanted = {f"{w}@streamflow-sandbox" for w in self.workers if running_group(self.pid_path(w))}
        wait_until(lambda: wanted <= set(self.live_workers()), timeout, "celery workers",
                   self.log_path(self.workers[0]), interval=0.5)

    def kill_worker(self, worker: str) -> list[int]:
        """SIGKILL the worker's whole session, as a machine that dies: its process group and the task
        runners, which Airflow's supervisor puts in process groups of their own. Returns the pids."""
        pgid = running_group(self.pid_path(worker))
        if pgid is None:
            return []
        members = _kill_session(pgid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (group_alive(pgid) or session_members(pgid)):
            _reap_any(pgid)
            time.sleep(0.05)
        self.pid_path(worker).unlink(missing_ok=True)
        return members

    def stop_worker(self, worker: str) -> bool:
        """Warm shutdown of one worker; leftovers of its session (task runners) are killed."""
        pgid = running_group(self.pid_path(worker))
        stopped = stop_group(self.pid_path(worker), grace=30)
        if pgid is not None:
            _kill_session(pgid)
        return stopped

    def stop(self) -> bool:
        """Workers first (warm shutdown: running tasks finish or are stopped), then the components, Redis.
        Whatever is left of a session afterwards (task runners in their own groups) is killed."""
        stopped = False
        for names in (self.workers, tuple(reversed(COMPONENTS)), ("redis",)):
            groups = {name: running_group(self.pid_path(name)) for name in names}
            for pgid in filter(None, groups.values()):  # signal a whole tier at once, then wait for each
                try:
                    os.killpg(pgid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for name, pgid in groups.items():
                stopped |= stop_group(self.pid_path(name), grace=30)
                if pgid is not None:
                    _kill_session(pgid)
        return stopped

    def status(self) -> str:
        running = [n for n in ("redis", *COMPONENTS, *self.workers) if running_group(self.pid_path(n))]
        if not running:
            return "airflow (celery): stopped"
        return f"airflow (celery): running {', '.join(running)} on {self.url} (Redis {self.broker_url})"


def session_members(sid: int) -> list[int]:
    """Pids of the live processes of session sid (start_new_session made the group leader its session)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _kill_session(sid: int) -> list[int]:
    members = session_members(sid)
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return members


def _reap_any(pgid: int) -> None:
    try:
        os.waitpid(-pgid, os.WNOHANG)
    except ChildProcessError:
        pass


def start(layout: Layout) -> CeleryCluster:
    cluster = CeleryCluster(layout)
    cluster.start()
    return cluster


def stop(layout: Layout) -> bool:
    return CeleryCluster(layout).stop()


def status(layout: Layout) -> str:
    return CeleryCluster(layout).status()
