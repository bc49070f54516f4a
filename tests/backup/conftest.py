"""Shared pieces of the backup tests: a Kubernetes far end answering with real CNPG documents, and a live
warehouse (a writer thread inserting into bronze and silver, gold older than silver)."""
from __future__ import annotations

import json
import threading
import time

import psycopg
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



# --- a live warehouse: gold older than silver, and a writer busy in bronze and silver -----------------

NEW_DAY = 1_893_456_000  # 2030-01-01 00:00 UTC: a day no gold view has seen yet


def insert_transactions(conn, first: int, count: int) -> None:
    """`count` promoted transactions on NEW_DAY (bronze and silver, one transaction)."""
    params = {"first": first, "last": first + count - 1, "t": NEW_DAY}
    with conn.transaction():
        conn.execute(
            "insert into bronze.transactions (transaction_id, customer_id, merchant_id, amount, currency, "
            "location, transaction_time) select 'live-' || g, 'c-live', 'm-live', 10.50, 'EUR', 'Berlin', %(t)s + g "
            "from generate_series(%(first)s::int, %(last)s::int) g", params)
        conn.execute(
            "insert into silver.transactions_enriched (transaction_id, customer_id, amount, fraud_score, "
            "transaction_time, enriched_at) select 'live-' || g, 'c-live', 10.50, 0.9, %(t)s + g, now() "
            "from generate_series(%(first)s::int, %(last)s::int) g", params)


class Writer(threading.Thread):
    """Inserts into bronze and silver every few milliseconds until stopped, like the Flink job."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn, self.stop_event, self.batches, self.error = dsn, threading.Event(), 0, None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    insert_transactions(conn, 1_000 + self.batches * 5, 5)
                    self.batches += 1
                    self.stop_event.wait(0.005)
        except Exception as exc:  # noqa: BLE001 - reported by the fixture
            self.error = exc

    def wait_for_batches(self, n: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while self.batches < n and time.monotonic() < deadline and self.error is None:
            time.sleep(0.01)
        assert self.batches >= n, f"writer stuck: {self.error}"


@pytest.fixture
def live_warehouse(warehouse_db):
    """The seeded warehouse with silver rows newer than every gold view, and a writer running throughout."""
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        insert_transactions(conn, 1, 10)  # after the seed's refresh: gold is older than silver
    writer = Writer(warehouse_db)
    writer.start()
    writer.wait_for_batches(3)
    yield warehouse_db, writer
    writer.stop_event.set()
    writer.join(5)
    assert writer.error is None, writer.error


def backup_config(folder, **backup):
    from streamflow_ops.config import load_config

    return load_config({"backup": {"folder": str(folder), **backup}})


def audit_rows(dsn: str, action: str = "backup") -> list[dict]:
    from psycopg.rows import dict_row

    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute("select action, target, dry_run, outcome, rows_affected, details "
                            "from ops.maintenance_audit where action = %s order by id", (action,)).fetchall()
