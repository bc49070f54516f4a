"""ONE distributed Airflow for the whole session: CeleryExecutor, Redis, two workers (sandbox/celery.py).

It runs the real DAGs folder plus this folder's test DAG against a fresh copy of the seeded warehouse,
with a fresh metadata database. Test-only settings, each for speed: no cron runs, DAGs unpaused, a
task whose worker died is declared failed after 20 s (default 300), and retries wait 1 s instead of
the DAGs' 2 minutes (a cluster policy in $AIRFLOW_HOME/config, as a deployment would set one).
Everything is stopped at the end of the session, whatever happened.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from sandbox import kafka
from sandbox.celery import CeleryCluster
from sandbox.proc import REPO, running_group
from tests.conftest import TEMPLATE_DB, scratch_database
from tests.polling import wait_for

TEST_DAGS = Path(__file__).resolve().parent / "dags"
RETRY_POLICY = '''"""Cluster policy of the distributed tests: retries after 1 s, not the DAGs' 2 minutes."""
from datetime import timedelta


def task_policy(task):
    task.retry_delay = timedelta(seconds=1)
'''
FINISHED = {"success", "failed"}


@pytest.fixture(scope="session")
def cluster_warehouse(postgres_service):
    """A session copy of the seeded template for the cluster's tasks (its DSN)."""
    with scratch_database(postgres_service, "dist", TEMPLATE_DB) as dsn:
        yield dsn


def _dags_folder(home: Path) -> Path:
    """The product's DAG files and the test DAG, linked into one folder (Airflow reads one DAGs folder)."""
    folder = home / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for source in [*sorted((REPO / "dags").glob("*.py")), *sorted(TEST_DAGS.glob("*.py"))]:
        (folder / source.name).symlink_to(source)
    return folder


@pytest.fixture(scope="session")
def celery_cluster(sandbox_layout, postgres_service, kafka_service, flink_service, monitoring_service,
                   cluster_warehouse):
    # monitoring_service: the cluster's connections (sandbox.connections.airflow_env) include the sandbox's
    # Prometheus, Alertmanager and Pushgateway; the window and the sweep push their metrics there.
    probe = CeleryCluster(sandbox_layout)
    if any(running_group(probe.pid_path(n)) for n in ("scheduler", "api-server", *probe.workers)):
        pytest.fail(f"a celery cluster of this test profile is already running (pid files in {probe.home}); stop it: "
                    f"STREAMFLOW_SANDBOX_DIR={sandbox_layout.root} STREAMFLOW_SANDBOX_PORT_BASE="
                    f"{sandbox_layout.port_base} python -m sandbox stop --celery --only postgres")
    (probe.home / "config").mkdir(parents=True, exist_ok=True)
    (probe.home / "config" / "airflow_local_settings.py").write_text(RETRY_POLICY)
    cluster = CeleryCluster(
        sandbox_layout, dags_folder=_dags_folder(probe.home),
        extra_env={
            "AIRFLOW_CONN_STREAMFLOW_POSTGRES": cluster_warehouse,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        },
        # Small retention batches (~140 for the day due): the kill lands mid-deletion.
        config_overrides={"retention": {"batch_size": 200}}, meta_database="airflow_meta_tests")
    started = time.monotonic()
    try:
        cluster.start(fresh=True)
        print(f"\ncelery cluster ready in {time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        cluster.stop()
        cluster.drop_meta_database()


@pytest.fixture(scope="session")
def api(celery_cluster):
    with celery_cluster.client() as client:
        yield client


@pytest.fixture(scope="session")
def bootstrap(kafka_service) -> str:
    return kafka.bootstrap(kafka_service)


def wait_for_dag(api: httpx.Client, dag_id: str, timeout: float = 120) -> None:
    """The dag processor has serialized dag_id (it parses every file at start, then every 5 s)."""
    wait_for(f"{dag_id} parsed", lambda: api.get(f"/dags/{dag_id}").status_code == 200, timeout, every=0.3)


def trigger(api: httpx.Client, dag_id: str, conf: dict | None = None, logical_date: datetime | None = None) -> str:
    wait_for_dag(api, dag_id)
    body = {"conf": conf or {}, "logical_date": (logical_date or datetime.now(timezone.utc)).isoformat()}
    response = api.post(f"/dags/{dag_id}/dagRuns", json=body)
    response.raise_for_status()
    return response.json()["dag_run_id"]


def run_state(api: httpx.Client, dag_id: str, run_id: str) -> str:
    return api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]


def wait_for_run(api: httpx.Client, dag_id: str, run_id: str, timeout: float = 240) -> str:
    return wait_for(f"{dag_id} {run_id} finished", lambda: (s := run_state(api, dag_id, run_id)) in FINISHED and s,
                    timeout, every=0.3)


def task_instances(api: httpx.Client, dag_id: str, run_id: str) -> dict[str, dict]:
    body = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
    return {ti["task_id"]: ti for ti in body["task_instances"]}


def task_instance(api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> dict:
    return api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").json()


def tries(api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> list[dict]:
    """Every try of a task instance (the current one included), oldest first."""
    body = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries").json()
    return sorted(body["task_instances"], key=lambda t: t["try_number"])
