"""Session-scoped fixtures that bring up the real local services a test asks for, and only those.

Services run in their own sandbox profile (.sandbox/test, ports 45500+ unless STREAMFLOW_SANDBOX_* say
otherwise). A service that was already running before the session is reused and left running.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("STREAMFLOW_SANDBOX_DIR", str(REPO / ".sandbox" / "test"))
os.environ.setdefault("STREAMFLOW_SANDBOX_PORT_BASE", "45500")
_AIRFLOW_HOME = Path(os.environ["STREAMFLOW_SANDBOX_DIR"]) / "airflow_home"
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__FERNET_KEY": "Q8PBtMoYn6TbjCHuFmlM2U1nuHOzBsVY6TJt6RbVJgI=",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "PGCONNECT_TIMEOUT": "5",
})
_AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
for key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[key]  # tests state every connection they rely on

from tests.image.no_skips import pytest_sessionfinish  # noqa: F401  (a skipped test fails the run)

# The Astro image layout (`astro dev pytest`, and the image-shaped check in `make test`): .dockerignore
# keeps the dev sandbox out of the image, and with it the local services and the dev-only packages
# (playwright, prometheus_client, calfkit). The one selection rule: there, only tests/dags is collected.
IMAGE_LAYOUT = importlib.util.find_spec("sandbox") is None
if IMAGE_LAYOUT:
    collect_ignore = [p.name for p in Path(__file__).parent.iterdir() if p.is_dir() and p.name != "dags"]
else:
    from sandbox import connections, flink, kafka, monitoring, postgres, seed
    from sandbox.proc import Layout

TEMPLATE_DB = "streamflow_template"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Reserve the profile's whole port range before any fixture starts a service (Layout.reserve_ports)."""
    if not IMAGE_LAYOUT:
        Layout.from_env().reserve_ports()


@pytest.fixture(scope="session")
def sandbox_layout() -> Layout:
    return Layout.from_env()


def _service(module, layout: Layout):
    """Start a sandbox service for the session; stop it afterwards only if this session started it."""
    was_running = module.status(layout).split(":", 1)[1].strip().startswith("running")
    module.start(layout)
    return not was_running


@pytest.fixture(scope="session")
def postgres_service(sandbox_layout):
    import psycopg

    started = _service(postgres, sandbox_layout)
    with psycopg.connect(postgres.dsn(sandbox_layout, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{TEMPLATE_DB}" with (force)')
        conn.execute(f'create database "{TEMPLATE_DB}"')
    with psycopg.connect(postgres.dsn(sandbox_layout, TEMPLATE_DB), autocommit=True) as conn:
        seed.seed_warehouse(conn)
    yield sandbox_layout
    if started:
        postgres.stop(sandbox_layout)


@contextmanager
def scratch_database(layout: Layout, prefix: str, template: str = "template1") -> Iterator[str]:
    """A database of its own (its DSN) on the sandbox PostgreSQL, copied from `template` (template0: empty,
    TEMPLATE_DB: the seeded warehouse), dropped afterwards whatever happened."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_dsn = postgres.dsn(layout, "postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{template}"')
    try:
        yield postgres.dsn(layout, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def warehouse_db(postgres_service, monkeypatch) -> Iterator[str]:
    """A fresh copy of the seeded warehouse for one test; `streamflow_postgres` points at it."""
    with scratch_database(postgres_service, "t", TEMPLATE_DB) as dsn:
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", dsn)
        yield dsn


@pytest.fixture(scope="session")
def kafka_service(sandbox_layout):
    started = _service(kafka, sandbox_layout)
    yield sandbox_layout
    if started:
        kafka.stop(sandbox_layout)


@pytest.fixture(scope="session")
def flink_service(sandbox_layout):
    started = _service(flink, sandbox_layout)
    yield sandbox_layout
    if started:
        flink.stop(sandbox_layout)


@pytest.fixture(scope="session")
def monitoring_service(sandbox_layout):
    """Prometheus, Alertmanager, the Pushgateway and the webhook receiver of sandbox/monitoring.py."""
    started = _service(monitoring, sandbox_layout)
    yield sandbox_layout
    if started:
        monitoring.stop(sandbox_layout)


@pytest.fixture
def sandbox_connections(sandbox_layout, monkeypatch):
    """AIRFLOW_CONN_* for every sandbox service (start the services with their own fixtures). The monitoring
    stack's connections come only with `monitoring_connections`: without them those checks read skipped."""
    monitoring_keys = connections.monitoring_env(sandbox_layout)
    for key, value in connections.airflow_env(sandbox_layout).items():
        if key not in monitoring_keys:
            monkeypatch.setenv(key, value)
    return sandbox_layout


@pytest.fixture
def monitoring_connections(monitoring_service, monkeypatch):
    """streamflow_prometheus, streamflow_alertmanager and streamflow_pushgateway on the sandbox's stack."""
    for key, value in connections.monitoring_env(monitoring_service).items():
        monkeypatch.setenv(key, value)
    return monitoring_service


@pytest.fixture(scope="session")
def airflow_db():
    """An initialised metadata database (SQLite in AIRFLOW_HOME) for dag.test()."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=os.environ.copy(), timeout=300)
    return _AIRFLOW_HOME


@pytest.fixture
def live_pipeline(warehouse_db, sandbox_layout, tmp_path_factory, monkeypatch):
    """The live pipeline writing this test's warehouse copy through a Tansu of its own (port base + 7),
    so the shared broker's known lag stays put. `streamflow_kafka` points at that broker. Yields the
    pipeline's layout (sandbox.pipeline's controls take it); stops both processes and the broker."""
    import json

    from sandbox import pipeline

    layout = Layout(root=tmp_path_factory.mktemp("live"), port_base=sandbox_layout.port_base + 7)
    kafka.start(layout)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", json.dumps(
        {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka.bootstrap(layout), "socket.timeout.ms": 3000}}))
    try:
        pipeline.start(layout, dsn=warehouse_db)
        yield layout
    finally:
        pipeline.stop(layout)
        kafka.stop(layout)
