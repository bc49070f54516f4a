"""Shared pieces of the backup tests: a Kubernetes far end answering with real CNPG documents."""
from __future__ import annotations

import json

import pytest

from tests.dagfiles import load_repo_dag as load_dag  # noqa: F401 - the backup tests import it from here
from tests.fakes.http_api import FakeApi, write_kubeconfig
from tests.fakes.payloads import load

BACKUPS = "/apis/postgresql.cnpg.io/v1/namespaces/streamflow-data/backups"
CLUSTER = "/apis/postgresql.cnpg.io/v1/namespaces/streamflow-data/clusters/streamflow-postgres"


def cnpg(name: str) -> dict:
    return load("cnpg", name)


def backup_in_phase(phase: str, name: str | None = None) -> dict:
    """The real completed Backup, wound back to an earlier phase (no WAL range, no stop time yet)."""
    doc = cnpg("backup_completed")
    if name:
        doc["metadata"]["name"] = name
    if phase == "":
        doc.pop("status")
        return doc
    for key in ("beginLSN", "beginWal", "endLSN", "endWal", "stoppedAt", "backupId", "backupName"):
        doc["status"].pop(key)
    doc["status"]["phase"] = phase
    return doc


def connect_kubernetes(api: FakeApi, tmp_path, monkeypatch) -> None:
    """Point the streamflow_kubernetes connection at the fake API server (through a kubeconfig)."""
    path = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES",
                       json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": path}}))


@pytest.fixture
def kube(tmp_path, monkeypatch):
    """A FakeApi reached through the streamflow_kubernetes connection."""
    with FakeApi() as api:
        connect_kubernetes(api, tmp_path, monkeypatch)
        yield api


def phases(api: FakeApi, name: str, sequence: list[dict]) -> None:
    """GET of the Backup answers the documents in order, then keeps answering the last one."""
    answers = list(sequence)

    def answer(request):
        return 200, answers.pop(0) if len(answers) > 1 else answers[0]

    api.route("GET", f"{BACKUPS}/{name}", answer)

