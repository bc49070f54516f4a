"""airflow_housekeeping through dag.test(): a dry run lists old logs and changes nothing, and the
metadata cleanup pod goes to the (fake) Kubernetes API with --dry-run; then a real run deletes. Each
log cleanup leaves its ops.maintenance_audit row."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.backup.conftest import connect_kubernetes, load_dag
from tests.fakes.http_api import FakeApi
from tests.housekeeping.test_metadata_cleanup import IMAGE, sent_container, serve_pods

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]
OLD = "dag_id=x/run_id=r1/task_id=t/attempt=1.log"
NEW = "dag_id=x/run_id=r2/task_id=t/attempt=1.log"


@pytest.fixture
def env(airflow_db, warehouse_db, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    now = datetime.now(timezone.utc)
    for rel, days in ((OLD, 40), (NEW, 2)):
        (logs / rel).parent.mkdir(parents=True, exist_ok=True)
        (logs / rel).write_text("x")
        stamp = (now - timedelta(days=days)).timestamp()
        os.utime(logs / rel, (stamp, stamp))
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps(
        {"housekeeping": {"log_folder": str(logs), "scheduler_image": IMAGE}}))
    with FakeApi() as api:
        connect_kubernetes(api, tmp_path, monkeypatch)
        serve_pods(api)
        yield api, logs, warehouse_db


def audit_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select dry_run, outcome, rows_affected, details->'paths' from ops.maintenance_audit "
                            "where action = 'task_logs' order by id").fetchall()


def test_dry_run_by_default_then_real_run(env):
    api, logs, dsn = env
    dr = load_dag("airflow_housekeeping").test()
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert (logs / OLD).exists() and (logs / NEW).exists()
    sent = sent_container(api)
    assert sent["args"][:3] == ["db", "clean", "--clean-before-timestamp"] and sent["args"][-1] == "--dry-run"

    api.requests.clear()
    dr = load_dag("airflow_housekeeping").test(run_conf={"dry_run": False, "log_retention_days": 30})
    assert dr.state == "success"
    assert not (logs / OLD).exists() and (logs / NEW).exists()
    assert sent_container(api)["args"][-1] == "--yes"
    assert audit_rows(dsn) == [(True, "dry_run", 1, [OLD]), (False, "success", 1, [OLD])]
