"""postgres_backup end to end through dag.test(): gold_export and pg_dump against the real sandbox
PostgreSQL, cnpg against the fake Kubernetes API (the deferrable sensor's trigger runs inline), bad input."""
from __future__ import annotations

import json

import psycopg
import pytest

from tests.backup.conftest import BACKUPS, CLUSTER, backup_in_phase, cnpg, connect_kubernetes, load_dag, phases

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]


def states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def xcom(dr, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dr.run_id, key="return_value", task_ids=task_id,
                                                 dag_ids=dr.dag_id)).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture
def setup(warehouse_db, airflow_db, tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG",
                       json.dumps({"backup": {"folder": str(tmp_path / "dumps"), "poll_interval_s": 0.05,
                                              "timeout_s": 30}}))
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        yield conn, tmp_path / "dumps"


def audit(conn) -> list[tuple]:
    return conn.execute("select action, outcome, dry_run, details from ops.maintenance_audit "
                        "where action = 'backup' order by id").fetchall()


def test_default_gold_backup_is_a_verified_gold_export_then_unverified_warns(setup):
    """No Kubernetes, schemas ["gold"]: gold_export. Then verify=false: unverified, a warning in the
    step's result and in postgres.backup_age, and no retention after it."""
    from streamflow_ops.config import load_config
    from streamflow_ops.postgres.checks import run_checks

    conn, folder = setup
    dr = load_dag("postgres_backup").test(run_conf={"schemas": ["gold"]})
    assert dr.state == "success", states(dr)
    assert states(dr) == {"backup.validate": "success", "backup.dump": "success",
                          "backup.cnpg_create": "skipped", "backup.cnpg_wait": "skipped",
                          "backup.cnpg_verify": "skipped", "backup.result": "success"}
    (export,) = [p for p in folder.iterdir() if p.is_dir()]
    assert json.loads((export / "manifest.json").read_text())["method"] == "gold_export"
    assert not list(folder.glob(".streamflow-shared-*"))  # the share marker was read and cleaned up
    [check] = xcom(dr, "backup.result")
    assert (check["check_name"], check["status"]) == ("maintenance.backup", "ok")
    config = load_config({"backup": {"folder": str(folder)}})
    [age] = [r for r in run_checks(config) if r.check_name == "postgres.backup_age"]
    assert age.status.value == "ok"
    assert age.message.startswith("last good backup (verified or CNPG completed) 0.0 h ago")

    dr = load_dag("postgres_backup").test(run_conf={"schemas": ["gold"], "verify": False})
    assert dr.state == "success", states(dr)
    [check] = xcom(dr, "backup.result")
    assert check["status"] == "warning" and "NOT verified" in check["message"]
    assert [(a, o, d["method"]) for a, o, _, d in audit(conn)] == [
        ("backup", "verified", "gold_export"), ("backup", "unverified", "gold_export")]
    [age] = [r for r in run_checks(config) if r.check_name == "postgres.backup_age"]
    assert age.status.value == "warning" and "is unverified" in age.message


def test_nonexistent_schema_fails_validation_before_any_work(setup):
    conn, folder = setup
    dr = load_dag("postgres_backup").test(run_conf={"method": "pg_dump", "schemas": ["platinum"]})
    assert dr.state == "failed"
    assert states(dr)["backup.validate"] == "failed"
    assert states(dr)["backup.dump"] == "upstream_failed"
    assert conn.execute("select to_regclass('ops.maintenance_audit')").fetchone()[0] is None  # nothing written
    assert not folder.exists() or list(folder.iterdir()) == []


def _cnpg_api(api, final: dict):
    """POST creates; GETs then answer pending, running, and `final` under the created name."""
    created = {}

    def create(request):
        created.update(request.json())
        name = created["metadata"]["name"]
        phases(api, name, [backup_in_phase("pending", name), backup_in_phase("running", name),
                           {**final, "metadata": {**final["metadata"], "name": name}}])
        return 201, created

    api.route("POST", BACKUPS, create)
    api.route("GET", CLUSTER, cnpg("cluster"))
    return created


def test_cnpg_backup_created_awaited_checked_and_audited_completed(setup, tmp_path, monkeypatch):
    """With the Kubernetes connection defined and no schemas, the backup is CloudNativePG's."""
    from tests.fakes.http_api import FakeApi

    conn, _ = setup
    with FakeApi() as api:
        connect_kubernetes(api, tmp_path, monkeypatch)
        created = _cnpg_api(api, cnpg("backup_completed"))
        dr = load_dag("postgres_backup").test()
    assert dr.state == "success", states(dr)
    assert states(dr)["backup.dump"] == "skipped" and states(dr)["backup.cnpg_verify"] == "success"
    assert created["spec"] == {"cluster": {"name": "streamflow-postgres"}, "method": "barmanObjectStore"}
    assert created["metadata"]["name"].startswith("streamflow-postgres-sfo-")
    # Nothing was restored: the CR completed and the Cluster records it, so `completed`, never `verified`.
    ((action, outcome, dry_run, details),) = audit(conn)
    assert (action, outcome, dry_run) == ("backup", "completed", False)
    assert details["method"] == "cnpg" and details["location"] == "s3://streamflow-backups/streamflow-postgres"
    assert details["endWal"] == "000000010000000000000009" and details["verified"] is False
    assert details["checked"] is True
    # postgres.backup_age counts a completed CNPG Backup as a good backup (from the audit alone here).
    from streamflow_ops.config import load_config
    from streamflow_ops.postgres.checks import run_checks

    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES")
    [age] = [r for r in run_checks(load_config()) if r.check_name == "postgres.backup_age"]
    assert age.status.value == "ok" and age.details["sources"]["ops.maintenance_audit"] is not None, age


def test_failed_cnpg_backup_writes_a_failed_audit_row(setup, tmp_path, monkeypatch):
    from tests.fakes.http_api import FakeApi

    conn, _ = setup
    with FakeApi() as api:
        connect_kubernetes(api, tmp_path, monkeypatch)
        created = _cnpg_api(api, cnpg("backup_failed"))
        dr = load_dag("postgres_backup").test(run_conf={"method": "cnpg"})
    assert dr.state == "failed"
    assert states(dr)["backup.cnpg_wait"] == "failed" and states(dr)["backup.cnpg_verify"] == "upstream_failed"
    ((action, outcome, dry_run, details),) = audit(conn)
    assert (action, outcome, dry_run) == ("backup", "failed", False)
    assert details["backup"] == f"streamflow-data/{created['metadata']['name']}"
    assert details["error"] == f"CNPG Backup streamflow-data/{created['metadata']['name']} is failed: exit status 4"


def test_cnpg_without_kubernetes_connection_is_refused(setup, monkeypatch):
    dr = load_dag("postgres_backup").test(run_conf={"method": "cnpg"})
    assert dr.state == "failed" and states(dr)["backup.validate"] == "failed"
