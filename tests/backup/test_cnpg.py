"""CNPG backups: the CR we create, the wait (trigger and sensor) and the verification, against a local
server answering like the Kubernetes API with real CloudNativePG Backup and Cluster documents."""
from __future__ import annotations

import asyncio
import re
import time

import pytest

from streamflow_ops.backup import cnpg
from streamflow_ops.backup.request import BackupInputError, check_cnpg_ready
from streamflow_ops.backup.status import backup_in_progress
from streamflow_ops.config import load_config
from streamflow_ops.backup.triggers import CnpgBackupTrigger
from tests.backup.conftest import BACKUPS, backup_in_phase, cnpg as payload, phases

NAME = "streamflow-postgres-202601150200-3f2a9c1d"
CONFIG = load_config({"backup": {"method": "cnpg", "poll_interval_s": 0.01}})


def run_trigger(timeout_s: float = 15) -> list[dict]:
    trigger = CnpgBackupTrigger(name=NAME, namespace="streamflow-data", conn_id="streamflow_kubernetes",
                                deadline=time.time() + timeout_s, poll_interval_s=0.01, request_timeout_s=5)

    async def collect():
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_trigger_serialises_to_its_own_kwargs():
    trigger = CnpgBackupTrigger(name=NAME, namespace="ns", conn_id="c", deadline=1.5, poll_interval_s=2)
    path, kwargs = trigger.serialize()
    assert path == "streamflow_ops.backup.triggers.CnpgBackupTrigger"
    assert CnpgBackupTrigger(**kwargs).serialize() == (path, kwargs)


def test_pending_running_completed(kube):
    phases(kube, NAME, [backup_in_phase(""), backup_in_phase("pending"), backup_in_phase("running"),
                        payload("backup_completed")])
    events = run_trigger()
    assert [e["status"] for e in events] == ["completed"]
    assert events[0]["backup"]["status"]["endWal"] == "000000010000000000000009"
    assert len(kube.calls("GET", f"{BACKUPS}/{NAME}")) == 4


def test_failed_quotes_the_cr_error(kube):
    phases(kube, NAME, [backup_in_phase("running"), payload("backup_failed")])
    (event,) = run_trigger()
    assert event["status"] == "failed"
    assert event["message"] == f"CNPG Backup streamflow-data/{NAME} is failed: exit status 4"


def test_never_completes_times_out_with_the_last_phase(kube):
    phases(kube, NAME, [backup_in_phase("running")])
    (event,) = run_trigger(timeout_s=0.3)
    assert event["status"] == "timeout"
    assert "is running" in event["message"]


def test_deleted_backup_fails_at_once(kube):
    (event,) = run_trigger()  # no route: the fake answers 404 NotFound like the API server
    assert event["status"] == "failed" and "not found" in event["message"]


def test_api_errors_are_retried_until_the_deadline(kube):
    answers = [(500, {"kind": "Status", "code": 500, "message": "etcdserver: request timed out"}),
               (200, payload("backup_completed"))]
    kube.route("GET", f"{BACKUPS}/{NAME}", lambda request: answers.pop(0) if len(answers) > 1 else answers[0])
    (event,) = run_trigger()
    assert event["status"] == "completed"


def test_create_sends_a_cnpg_backup_cr(kube):
    kube.route("POST", BACKUPS, lambda request: (201, request.json()))
    body = cnpg.backup_body(NAME, CONFIG)
    created = cnpg.create_backup(CONFIG, body)
    (request,) = kube.calls("POST", BACKUPS)
    assert request.json() == {
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
        "metadata": {"name": NAME, "namespace": "streamflow-data",
                     "labels": {"app.kubernetes.io/managed-by": "streamflow-ops"}},
        "spec": {"cluster": {"name": "streamflow-postgres"}, "method": "barmanObjectStore"},
    }
    assert created["metadata"]["name"] == NAME


def test_a_retry_adopts_the_backup_its_first_try_created(kube):
    """Try 1 creates the CR (201); try 2 derives the same name, gets 409 AlreadyExists, adopts the object."""
    stored: dict[str, dict] = {}

    def create(request):
        body = request.json()
        name = body["metadata"]["name"]
        if name in stored:
            return 409, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
                         "reason": "AlreadyExists",
                         "message": f'backups.postgresql.cnpg.io "{name}" already exists',
                         "details": {"name": name, "group": "postgresql.cnpg.io", "kind": "backups"}}
        stored[name] = {**body, "status": backup_in_phase("running")["status"]}
        kube.route("GET", f"{BACKUPS}/{name}", stored[name])
        return 201, body

    kube.route("POST", BACKUPS, create)
    names = []
    for _try in (1, 2):
        name = cnpg.backup_name("streamflow-postgres", "postgres_backup", "manual__2026-01-15T02:00:00+00:00",
                                "backup.cnpg_create")
        names.append(cnpg.create_backup(CONFIG, cnpg.backup_body(name, CONFIG))["metadata"]["name"])
    assert names[0] == names[1] and list(stored) == [names[0]]
    assert [c.json()["metadata"]["name"] for c in kube.calls("POST", BACKUPS)] == names
    assert len(kube.calls("GET", f"{BACKUPS}/{names[0]}")) == 1  # only the retry had to read it


def test_plugin_method_names_the_plugin():
    config = load_config({"backup": {"cnpg_backup_method": "plugin",
                                     "cnpg_plugin_name": "barman-cloud.cloudnative-pg.io"}})
    assert cnpg.backup_body(NAME, config)["spec"] == {
        "cluster": {"name": "streamflow-postgres"}, "method": "plugin",
        "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}


def test_backup_name_is_dns_safe_and_stable_per_run_and_task():
    run = "manual__2026-01-15T02:00:00+00:00"
    name = cnpg.backup_name("streamflow-postgres", "postgres_backup", run, "backup.cnpg_create")
    assert name == cnpg.backup_name("streamflow-postgres", "postgres_backup", run, "backup.cnpg_create")
    others = {cnpg.backup_name("streamflow-postgres", "maintenance_tasks", run, "backup.cnpg_create"),
              cnpg.backup_name("streamflow-postgres", "postgres_backup", run + "x", "backup.cnpg_create"),
              cnpg.backup_name("streamflow-postgres", "postgres_backup", run, "other.cnpg_create")}
    assert name not in others and len(others) == 3
    assert re.fullmatch(r"streamflow-postgres-sfo-[0-9a-f]{12}", name)
    long = cnpg.backup_name("a" * 80, "d", "r", "t")
    assert len(long) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", long)


def test_verification_passes_on_a_completed_backup_the_cluster_records():
    assert cnpg.verify_backup(payload("backup_completed"), payload("cluster")) == []


def test_verification_fails_without_wal_range_or_cluster_record():
    backup = payload("backup_completed")
    del backup["status"]["endWal"]
    cluster = payload("cluster")
    cluster["status"]["lastSuccessfulBackup"] = "2026-01-14T02:01:12Z"
    cluster["status"]["lastSuccessfulBackupByMethod"] = {"barmanObjectStore": "2026-01-14T02:01:12Z"}
    problems = cnpg.verify_backup(backup, cluster)
    assert problems == [
        "status.endWal is empty: the backup has no WAL range to recover from",
        "Cluster streamflow-postgres records its last successful backup at 2026-01-14T02:01:12+00:00, "
        "before this backup started (2026-01-15T02:00:03+00:00)",
    ]


def test_audit_details_of_a_cnpg_backup():
    details = cnpg.backup_details(payload("backup_completed"))
    assert details["location"] == "s3://streamflow-backups/streamflow-postgres"
    assert details["duration_s"] == 98.0 and details["size_bytes"] is None
    assert details["beginWal"] == "000000010000000000000009"


def test_missing_kubernetes_connection_is_refused(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    with pytest.raises(BackupInputError, match=r"^method: 'cnpg' needs the Kubernetes connection 'streamflow_kubernetes'"):
        check_cnpg_ready(CONFIG)


def test_plugin_without_name_is_refused(kube):
    with pytest.raises(BackupInputError, match=r"^backup.cnpg_plugin_name"):
        check_cnpg_ready(load_config({"backup": {"cnpg_backup_method": "plugin"}}))


def test_backup_in_progress_sees_a_running_cnpg_backup(kube, warehouse_db):
    other = backup_in_phase("running", name="streamflow-postgres-scheduled-1")
    done = payload("backup_completed")
    kube.route("GET", BACKUPS, {"apiVersion": "postgresql.cnpg.io/v1", "kind": "BackupList",
                                "metadata": {"resourceVersion": "1839400"}, "items": [done, other]})
    assert backup_in_progress(CONFIG) == ("CNPG backup in progress for streamflow-data/streamflow-postgres: "
                                          "streamflow-postgres-scheduled-1")
    kube.route("GET", BACKUPS, {"apiVersion": "postgresql.cnpg.io/v1", "kind": "BackupList",
                                "metadata": {"resourceVersion": "1839401"}, "items": [done]})
    assert backup_in_progress(CONFIG) is None
