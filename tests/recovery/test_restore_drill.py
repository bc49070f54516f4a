"""restore_drill: the CNPG scratch Cluster's CR shape on the Kubernetes stand-in, its comparison against a real
restored database, the file drills on real pg_dump backups, the cleanup on failure, and the age check."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from streamflow_ops.backup.folder import MANIFEST, read_manifest, write_manifest
from streamflow_ops.backup.verify import VerificationError
from streamflow_ops.config import load_config
from streamflow_ops.postgres.evaluators import evaluate_restore_drill_age
from streamflow_ops.recovery.drill import (
    HEALTHY,
    DrillError,
    compare_scratch_cluster,
    drill_file_backup,
    plan_cluster_drill,
    scratch_cluster_body,
    scratch_cluster_name,
)
from streamflow_ops.results import Status
from streamflow_ops.store import Actor
from tests.backup.conftest import audit_rows, backup_config, cnpg, connect_kubernetes
from tests.backup.test_pg_dump import backup
from tests.conftest import scratch_database
from tests.dagfiles import load_repo_dag
from tests.fakes.http_api import FakeApi

NS = "/apis/postgresql.cnpg.io/v1/namespaces/streamflow-data"
RUN = Actor("restore_drill", "scheduled__drill", "drill")
NOW = datetime(2026, 12, 6, 4, tzinfo=timezone.utc)


def backup_cr(name: str, stopped: datetime, phase: str = "completed", cluster: str = "streamflow-postgres") -> dict:
    doc = cnpg("backup_completed")
    doc["metadata"]["name"], doc["spec"]["cluster"]["name"] = name, cluster
    doc["status"].update(phase=phase, startedAt=(stopped - timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
                         stoppedAt=stopped.isoformat().replace("+00:00", "Z"))
    return doc


@pytest.fixture
def kube(tmp_path, monkeypatch):
    """The stand-in: three Backups (the newest completed one is `newest`), the source Cluster, and a scratch
    Cluster that is healthy once created and gone once deleted."""
    created: dict = {}
    with FakeApi() as api:
        now = datetime.now(timezone.utc)
        api.route("GET", f"{NS}/backups", {"kind": "BackupList", "items": [
            backup_cr("older", now - timedelta(days=2)), backup_cr("newest", now - timedelta(minutes=1)),
            backup_cr("failed-later", now, phase="failed"), backup_cr("other-cluster", now, cluster="x")]})
        api.route("GET", f"{NS}/clusters/streamflow-postgres", cnpg("cluster"))

        def create(request):
            created["body"] = request.json()
            return 201, request.json()

        def read(request):
            if "body" not in created:
                return 404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"}
            return 200, {**created["body"], "status": {"phase": "Cluster in healthy state", "readyInstances": 1}}

        def delete(request):
            found = created.pop("body", None)
            return (200, found) if found else (404, {"kind": "Status", "code": 404, "reason": "NotFound"})

        api.route("POST", f"{NS}/clusters", create)
        api.route("GET", f"{NS}/clusters/streamflow-postgres-drill-[0-9a-f]+", read)
        api.route("DELETE", f"{NS}/clusters/streamflow-postgres-drill-[0-9a-f]+", delete)
        connect_kubernetes(api, tmp_path, monkeypatch)
        yield api


@pytest.fixture
def restored(warehouse_db, postgres_service):
    """The 'recovered cluster': a copy of the live warehouse made now, reached like the scratch service."""
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() "
                     "and pid <> pg_backend_pid()")
        live = conn.execute("select current_database()").fetchone()[0]
    with scratch_database(postgres_service, "drill", live) as dsn:
        yield dsn


def drill_config(restored_dsn: str, **overrides) -> object:
    info = psycopg.conninfo.conninfo_to_dict(restored_dsn)
    return load_config({"recovery": {"drill_host": "127.0.0.1", "drill_port": int(info["port"]),
                                     "drill_database": info["dbname"], "drill_poll_interval_s": 0.05,
                                     "drill_timeout_s": 30}, **overrides})


def test_the_scratch_cluster_recovers_the_newest_completed_backup(kube, warehouse_db):
    plan = plan_cluster_drill(load_config(), RUN)
    body = plan["body"]
    source = cnpg("cluster")["spec"]
    assert plan["backup"] == "newest" and plan["cluster"] == scratch_cluster_name("streamflow-postgres", RUN.dag_id, RUN.run_id)
    assert body["apiVersion"] == "postgresql.cnpg.io/v1" and body["kind"] == "Cluster"
    assert body["metadata"]["namespace"] == "streamflow-data" and body["metadata"]["name"] == plan["cluster"]
    assert body["spec"]["bootstrap"] == {"recovery": {"backup": {"name": "newest"},
                                                      "recoveryTarget": {"targetImmediate": True}}}
    assert body["spec"]["instances"] == 1
    assert (body["spec"]["imageName"], body["spec"]["storage"]) == (source["imageName"], source["storage"])


def rows_before(dsn: str, before: datetime) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        return (conn.execute("select count(*) from bronze.transactions where ingested_at < %s", (before,)).fetchone()[0],
                conn.execute("select count(*) from silver.transactions_enriched where enriched_at < %s",
                             (before,)).fetchone()[0])


def test_a_restore_holding_the_backup_passes_and_a_missing_row_names_its_table(warehouse_db, restored):
    started = datetime.now(timezone.utc)
    plan = {"backup": "newest", "backup_started_at": started.isoformat(), "cluster": "c", "namespace": "ns"}
    config = drill_config(restored)
    live_bronze, live_silver = rows_before(warehouse_db, started)
    assert live_bronze > 0 and live_silver > 0  # the comparison has something to compare
    compared = compare_scratch_cluster(config, plan)
    assert compared["rows_before_backup"]["bronze.transactions"] == {"live": live_bronze, "restored": live_bronze}
    assert compared["gold_views"] and compared["notes"] == []
    with psycopg.connect(warehouse_db, autocommit=True) as conn:  # written after the backup: not expected
        conn.execute("insert into bronze.transactions (transaction_id, transaction_time) values ('after', 1)")
    compare_scratch_cluster(config, plan)
    with psycopg.connect(restored, autocommit=True) as conn:  # the restore lost a silver row
        conn.execute("delete from silver.transactions_enriched where transaction_id = "
                     "(select min(transaction_id) from silver.transactions_enriched)")
    with pytest.raises(DrillError, match=rf"table silver.transactions_enriched: {live_silver - 1} rows .* "
                                         rf"{live_silver} in the live warehouse"):
        compare_scratch_cluster(config, plan)


def test_gold_differs_names_the_view_unless_refreshed_since(warehouse_db, restored):
    started = datetime.now(timezone.utc) - timedelta(minutes=5)
    plan = {"backup": "newest", "backup_started_at": started.isoformat(), "cluster": "c", "namespace": "ns"}
    with psycopg.connect(restored, autocommit=True) as conn:
        conn.execute("delete from silver.fraud_alerts")
        views = [r[0] for r in conn.execute("select matviewname from pg_matviews where schemaname = 'gold'")]
        for view in views:
            conn.execute(f"refresh materialized view gold.{view}")
    with pytest.raises(DrillError, match=r"materialized view gold\.\w+: \d+ rows .* restored, \d+ live"):
        compare_scratch_cluster(drill_config(restored), plan)


def test_the_drill_run_deletes_the_scratch_cluster_and_audits_a_failure(kube, warehouse_db, restored, airflow_db,
                                                                        tmp_path, monkeypatch):
    """The whole DAG: no file backups (skipped), the CNPG drill compares a restore that lost silver rows: the
    run fails, the scratch Cluster is deleted anyway, and the one audit row says failed, naming the table."""
    with psycopg.connect(restored, autocommit=True) as conn:
        conn.execute("delete from silver.transactions_enriched")
    config = json.loads(drill_config(restored).model_dump_json())
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps(
        {"recovery": config["recovery"], "backup": {"folder": str(tmp_path / "backups")}}))
    dag_run = load_repo_dag("restore_drill").test()
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    # The cleanup ran after the failure, deleted, recorded, and fails the run as its leaf.
    assert states["cnpg_compare"] == "failed" and states["cnpg_cleanup"] == "failed"
    assert states["drill_pg_dump"] == states["drill_gold_export"] == "skipped"
    posted = kube.calls("POST", f"{NS}/clusters")
    deleted = kube.calls("DELETE", f"{NS}/clusters/.*")
    assert len(posted) == 1 and [d.path.rsplit("/", 1)[1] for d in deleted] == [posted[0].json()["metadata"]["name"]]
    (row,) = audit_rows(warehouse_db, "restore_drill")
    assert (row["outcome"], row["dry_run"], row["target"]) == ("failed", False, "cnpg://streamflow-data/newest")
    assert "table silver.transactions_enriched" in row["details"]["error"]
    assert row["details"]["scratch_cluster_deleted"] is True


def test_file_drills_pass_and_a_corrupted_backup_fails_naming_the_relation(warehouse_db, tmp_path):
    config = backup_config(tmp_path / "backups", method="pg_dump", schemas=["bronze", "silver", "gold"])
    backup(config)
    details = drill_file_backup(config, "pg_dump", RUN, dry_run=False)
    assert details["compared"]["verified"] is True and details["restore_seconds"] > 0
    assert drill_file_backup(config, "gold_export", RUN, dry_run=False) is None  # no backup of that method
    folder = next((tmp_path / "backups").iterdir())
    manifest = read_manifest(folder)
    table = next(r for r in manifest["relations"] if (r["schema"], r["name"]) == ("silver", "fraud_alerts"))
    table["rows"] += 1  # the manifest says one row more than the dump holds
    write_manifest(folder, manifest)
    with pytest.raises(VerificationError, match=r"silver\.fraud_alerts: \d+ rows in the dump's snapshot"):
        drill_file_backup(config, "pg_dump", RUN, dry_run=False)
    rows = audit_rows(warehouse_db, "restore_drill")
    assert [(r["outcome"], r["target"]) for r in rows] == [("passed", str(folder)), ("failed", str(folder))]
    assert "silver.fraud_alerts" in rows[1]["details"]["error"]
    assert (folder / MANIFEST).exists()


@pytest.mark.parametrize("rows, expected", [
    ([], [("", Status.WARNING)]),
    ([{"method": "cnpg", "last_outcome": None, "last_drill_at": None, "last_error": None, "last_passed_at": None}],
     [("cnpg", Status.WARNING)]),
    ([{"method": "pg_dump", "last_outcome": "passed", "last_drill_at": NOW - timedelta(days=7.9),
       "last_error": None, "last_passed_at": NOW - timedelta(days=7.9)},
      {"method": "gold_export", "last_outcome": "passed", "last_drill_at": NOW - timedelta(days=8),
       "last_error": None, "last_passed_at": NOW - timedelta(days=8)},
      {"method": "cnpg", "last_outcome": "passed", "last_drill_at": NOW - timedelta(days=15.1),
       "last_error": None, "last_passed_at": NOW - timedelta(days=15.1)}],
     [("pg_dump", Status.OK), ("gold_export", Status.WARNING), ("cnpg", Status.CRITICAL)]),
    ([{"method": "pg_dump", "last_outcome": "failed", "last_drill_at": NOW - timedelta(hours=1),
       "last_error": "table silver.x: 1 rows", "last_passed_at": NOW - timedelta(days=1)}],
     [("pg_dump", Status.CRITICAL)]),
])
def test_restore_drill_age_bands(rows, expected):
    results = evaluate_restore_drill_age(rows, NOW, load_config().recovery)
    assert [(r.subject, r.status) for r in results] == expected
    assert all(r.runbook == "Backup and Recovery > Recovery Procedures" for r in results)


def test_the_wait_trigger_serialises_and_waits_for_a_healthy_cluster(kube):
    from streamflow_ops.recovery.triggers import ScratchClusterTrigger

    trigger = ScratchClusterTrigger(name="streamflow-postgres-drill-0123456789", namespace="streamflow-data",
                                    conn_id="streamflow_kubernetes", deadline=time.time() + 10, poll_interval_s=0.01,
                                    request_timeout_s=5, started=1.0)
    path, kwargs = trigger.serialize()
    assert path == "streamflow_ops.recovery.triggers.ScratchClusterTrigger"
    assert ScratchClusterTrigger(**kwargs).serialize() == (path, kwargs)
    states = iter([{"phase": "Setting up primary", "readyInstances": 0}, {"phase": HEALTHY, "readyInstances": 0},
                   {"phase": HEALTHY, "readyInstances": 1}])
    kube.route("GET", f"{NS}/clusters/streamflow-postgres-drill-0123456789",
               lambda request: (200, {"metadata": {"name": "x"}, "spec": {"instances": 1}, "status": next(states)}))

    async def collect():
        return [event.payload async for event in trigger.run()]

    (event,) = asyncio.run(collect())
    assert event["status"] == "ready" and event["seconds"] > 0
    assert len(kube.calls("GET", f"{NS}/clusters/streamflow-postgres-drill-0123456789")) == 3


def test_a_volume_snapshot_backup_recovers_from_its_snapshots():
    backup = backup_cr("snap", datetime.now(timezone.utc))
    backup["status"].update(method="volumeSnapshot", snapshotBackupStatus={"elements": [
        {"name": "snap-pgdata", "type": "PG_DATA"}, {"name": "snap-wal", "type": "PG_WAL"}]})
    body = scratch_cluster_body("c-drill-1", "streamflow-data", backup, cnpg("cluster"))
    assert body["spec"]["bootstrap"]["recovery"] == {
        "recoveryTarget": {"targetImmediate": True},
        "volumeSnapshots": {"storage": {"name": "snap-pgdata", "kind": "VolumeSnapshot",
                                        "apiGroup": "snapshot.storage.k8s.io"},
                            "walStorage": {"name": "snap-wal", "kind": "VolumeSnapshot",
                                           "apiGroup": "snapshot.storage.k8s.io"}}}
