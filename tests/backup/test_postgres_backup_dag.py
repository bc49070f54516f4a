"""postgres_backup end to end through dag.test(): pg_dump against the real sandbox PostgreSQL, cnpg
against the fake Kubernetes API (the deferrable sensor's trigger runs inline), and bad input."""
from __future__ import annotations

import json

import psycopg
import pytest

from tests.backup.conftest import BACKUPS, CLUSTER, backup_in_phase, cnpg, connect_kubernetes, load_dag, phases

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]


def states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


@pytest.fixture
def setup(warehouse_db, airflow_db, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG",
                       json.dumps({"backup": {"folder": str(tmp_path / "dumps"), "poll_interval_s": 0.05,
                                              "timeout_s": 30}}))
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        yield conn, tmp_path / "dumps"


def audit(conn) -> list[tuple]:
    return conn.execute("select action, outcome, dry_run, details from ops.maintenance_audit order by id").fetchall()


def test_pg_dump_backup_with_verification(setup):
    conn, folder = setup
    dr = load_dag("postgres_backup").test(run_conf={"method": "pg_dump", "schemas": ["gold"]})
    assert dr.state == "success", states(dr)
    assert states(dr) == {"backup.validate": "success", "backup.pg_dump": "success",
                          "backup.cnpg_create": "skipped", "backup.cnpg_wait": "skipped",
                          "backup.cnpg_verify": "skipped", "backup.result": "success"}
    (dump,) = folder.iterdir()
    assert json.loads((dump / "manifest.json").read_text())["status"] == "verified"
    ((action, outcome, dry_run, details),) = audit(conn)
    assert (action, outcome, dry_run) == ("backup", "success", False)
    assert details["method"] == "pg_dump" and details["location"] == str(dump) and details["verified"]


def test_nonexistent_schema_fails_validation_before_any_work(setup):
    conn, folder = setup
    dr = load_dag("postgres_backup").test(run_conf={"method": "pg_dump", "schemas": ["platinum"]})
    assert dr.state == "failed"
    assert states(dr)["backup.validate"] == "failed"
    assert states(dr)["backup.pg_dump"] == "upstream_failed"
    assert conn.execute("select to_regclass('ops.maintenance_audit')").fetchone()[0] is None  # nothing written
    assert not folder.exists() or list(folder.iterdir()) == []


def test_cnpg_backup_created_awaited_verified_and_audited(setup, tmp_path, monkeypatch):
    from tests.fakes.http_api import FakeApi

    conn, _ = setup
    with FakeApi() as api:
        connect_kubernetes(api, tmp_path, monkeypatch)
        created = {}

        def create(request):
            created.update(request.json())
            name = created["metadata"]["name"]
            phases(api, name, [backup_in_phase("pending", name), backup_in_phase("running", name),
                               {**cnpg("backup_completed"), "metadata": {**cnpg("backup_completed")["metadata"],
                                                                        "name": name}}])
            return 201, created

        api.route("POST", BACKUPS, create)
        api.route("GET", CLUSTER, cnpg("cluster"))
        dr = load_dag("postgres_backup").test(run_conf={"method": "cnpg"})
    assert dr.state == "success", states(dr)
    assert states(dr)["backup.pg_dump"] == "skipped" and states(dr)["backup.cnpg_verify"] == "success"
    assert created["spec"] == {"cluster": {"name": "streamflow-postgres"}, "method": "barmanObjectStore"}
    ((action, outcome, dry_run, details),) = audit(conn)
    assert (action, outcome, dry_run) == ("backup", "success", False)
    assert details["method"] == "cnpg" and details["location"] == "s3://streamflow-backups/streamflow-postgres"
    assert details["endWal"] == "000000010000000000000009" and details["verified"] is True


def test_cnpg_without_kubernetes_connection_is_refused(setup, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    dr = load_dag("postgres_backup").test(run_conf={"method": "cnpg"})
    assert dr.state == "failed" and states(dr)["backup.validate"] == "failed"
