"""One `airflow standalone` for the UI tests' session, on the test profile's ports and warehouse.

It runs the real DAGs folder against a fresh copy of the seeded warehouse; its Pushgateway is a local
HTTP receiver in this process. No cron runs (use_job_schedule off): only what the tests trigger runs.
The group is stopped at the end of the session whatever happened, so no process is left behind.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.ui import Standalone
from tests.conftest import TEMPLATE_DB, scratch_database
from tests.fakes.http_api import FakeApi

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def pushgateway():
    with FakeApi() as api:
        api.route("PUT", r"/metrics/job/.*", (200, b""))  # the sweep's and the alert state's groups
        yield api


@pytest.fixture(scope="session")
def ui_warehouse(postgres_service):
    """A session copy of the seeded template for the standalone's tasks (its DSN)."""
    with scratch_database(postgres_service, "ui", TEMPLATE_DB) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def airflow_ui(postgres_service, ui_warehouse, pushgateway):
    from sandbox.proc import running_group

    standalone = Standalone(postgres_service, sandbox_connections=False)
    if running_group(standalone.pid_file) is not None:
        pytest.fail(f"an airflow standalone of this test profile is already running with another environment "
                    f"(pid file {standalone.pid_file}); stop it: STREAMFLOW_SANDBOX_DIR={postgres_service.root} "
                    f"STREAMFLOW_SANDBOX_PORT_BASE={postgres_service.port_base} python -m scripts.ui stop")
    extra_env = {
        "AIRFLOW_CONN_STREAMFLOW_POSTGRES": ui_warehouse,
        "AIRFLOW_CONN_STREAMFLOW_PUSHGATEWAY": json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": pushgateway.port, "schema": "http"}),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    try:
        standalone.start(extra_env=extra_env)
        yield standalone
    finally:
        standalone.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
