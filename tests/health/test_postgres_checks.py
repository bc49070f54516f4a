"""PostgreSQL checks: pure evaluators at the runbook's band edges, and the probes on a real warehouse."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from streamflow_ops.config import load_config
from streamflow_ops.postgres import checks as pg
from streamflow_ops.postgres import evaluators as pg_evaluators
from streamflow_ops.results import Status
from tests.fakes.http_api import FakeApi, write_kubeconfig
from tests.fakes.payloads import load

CFG = load_config().postgres_checks
NOW = datetime(2026, 5, 21, 12, 0, tzinfo=timezone.utc)
MB = 1024 * 1024


@pytest.mark.parametrize("used, expected", [(79, Status.OK), (80, Status.WARNING), (94, Status.WARNING),
                                            (95, Status.CRITICAL), (100, Status.CRITICAL)])
def test_connections_bands(used, expected):
    result = pg_evaluators.evaluate_connections(used, 100, 3, CFG)
    assert result.status is expected
    assert result.value == used and "max_connections=100" in result.message


@pytest.mark.parametrize("lags, expected", [
    ([], Status.OK), ([0], Status.OK), ([10 * MB - 1], Status.OK), ([10 * MB], Status.WARNING),
    ([100 * MB], Status.WARNING), ([100 * MB + 1], Status.CRITICAL), ([1, 200 * MB], Status.CRITICAL),
])
def test_replication_lag_bands_and_no_replicas_is_ok(lags, expected):
    replicas = [{"replica": f"r{i}", "state": "streaming", "lag_bytes": lag} for i, lag in enumerate(lags)]
    assert pg_evaluators.evaluate_replication_lag(replicas, CFG).status is expected


def test_replication_lag_without_positions_is_unknown_not_ok():
    result = pg_evaluators.evaluate_replication_lag([{"replica": "r1", "state": "startup", "lag_bytes": None}], CFG)
    assert result.status is Status.UNKNOWN


def test_dead_tuples_one_result_per_table():
    tables = [{"table_name": "silver.a", "n_dead_tup": 100_000, "n_live_tup": 5, "last_vacuum": None},
              {"table_name": "silver.b", "n_dead_tup": 100_001, "n_live_tup": 5, "last_vacuum": None}]
    results = {r.subject: r for r in pg_evaluators.evaluate_dead_tuples(tables, CFG)}
    assert results["silver.a"].status is Status.OK
    assert results["silver.b"].status is Status.WARNING and "postgres_vacuum" in results["silver.b"].message
    assert pg_evaluators.evaluate_dead_tuples([], CFG)[0].status is Status.OK


def test_long_queries_only_beyond_the_threshold():
    queries = [{"pid": 1, "usename": "u", "application_name": "app", "running_s": 299.0, "query": "select 1"},
               {"pid": 2, "usename": "u", "application_name": "", "running_s": 301.0, "query": "select pg_sleep(900)"}]
    assert pg_evaluators.evaluate_long_queries(queries[:1], CFG).status is Status.OK
    result = pg_evaluators.evaluate_long_queries(queries, CFG)
    assert result.status is Status.WARNING and "pid 2" in result.message and result.value == 1


@pytest.mark.parametrize("age, expected", [(499_999_999, Status.OK), (500_000_000, Status.WARNING),
                                           (1_000_000_000, Status.WARNING), (1_000_000_001, Status.CRITICAL)])
def test_txid_wraparound_bands(age, expected):
    result = pg_evaluators.evaluate_txid_wraparound([{"datname": "a", "xid_age": 10}, {"datname": "b", "xid_age": age}], CFG)
    assert result.status is expected and result.value == age


@pytest.mark.parametrize("hours, expected", [(1, Status.OK), (25.9, Status.OK), (26, Status.WARNING),
                                             (50, Status.WARNING), (50.5, Status.CRITICAL)])
def test_backup_age_bands(hours, expected):
    result = pg_evaluators.evaluate_backup_age({"ops.maintenance_audit": NOW - timedelta(hours=hours)}, {}, NOW, CFG)
    assert result.status is expected


def test_backup_age_takes_the_newest_source_and_none_is_critical():
    newest = pg_evaluators.evaluate_backup_age({"ops.maintenance_audit": NOW - timedelta(hours=60),
                                     "cnpg": NOW - timedelta(hours=2)}, {}, NOW, CFG)
    assert newest.status is Status.OK and "from cnpg" in newest.message
    assert pg_evaluators.evaluate_backup_age({"ops.maintenance_audit": None}, {}, NOW, CFG).status is Status.CRITICAL
    # One source failing leaves the other's answer; all failing is unknown, not "no backup".
    partial = pg_evaluators.evaluate_backup_age({"ops.maintenance_audit": NOW - timedelta(hours=1)}, {"cnpg": "timeout"}, NOW, CFG)
    assert partial.status is Status.OK and partial.details["errors"] == {"cnpg": "timeout"}
    assert pg_evaluators.evaluate_backup_age({}, {"ops.maintenance_audit": "boom"}, NOW, CFG).status is Status.UNKNOWN


# --- probes against the real sandbox PostgreSQL --------------------------------------------------------

def by_name(results):
    return {(r.check_name, r.subject): r for r in results}


def test_run_checks_on_the_seeded_warehouse(warehouse_db):
    results = pg.run_checks(load_config())
    names = {r.check_name for r in results}
    assert names == {spec.name for spec in pg.FAMILY.specs}
    found = by_name(results)
    assert found[("postgres.dead_tuples", "silver.transactions_enriched")].status is Status.OK
    assert found[("postgres.replication_lag", "")].status is Status.OK
    # Nothing was ever backed up in a fresh warehouse: that is critical, not fine.
    assert found[("postgres.backup_age", "")].status is Status.CRITICAL
    # No maintenance step ever ran either: each is a warning (SPEC: "or never ran").
    assert {r.subject: r.status for r in results if r.check_name == "maintenance.last_success"} == dict.fromkeys(
        ("retention", "vacuum", "gold_refresh", "backup"), Status.WARNING)
    # Nothing was ever restored by restore_drill: a warning ("or never").
    assert found[("postgres.restore_drill_age", "")].status is Status.WARNING
    assert all(r.status is Status.OK for r in results
               if r.check_name not in ("postgres.backup_age", "maintenance.last_success", "postgres.restore_drill_age"))


CNPG_CLUSTER = r"/apis/postgresql.cnpg.io/v1/namespaces/streamflow-data/clusters/streamflow-postgres"
CNPG_NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                  "message": 'clusters.postgresql.cnpg.io "streamflow-postgres" not found'}


def test_backup_age_reads_the_cnpg_cluster_through_kubernetes(warehouse_db, tmp_path, monkeypatch):
    """With the Kubernetes connection, the Cluster's lastSuccessfulBackup counts; an API error is noted."""
    kubeconfig = tmp_path / "kubeconfig"

    def backup_age():
        return by_name(pg.run_checks(load_config(), now=NOW))[("postgres.backup_age", "")]

    with FakeApi() as api:
        api.route("GET", CNPG_CLUSTER, load("kubernetes", "cnpg_cluster_healthy"))
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": write_kubeconfig(kubeconfig, api.url)}}))
        from_cnpg = backup_age()
        api.route("GET", CNPG_CLUSTER, (404, CNPG_NOT_FOUND))
        cnpg_missing = backup_age()
    assert from_cnpg.status is Status.OK and "from cnpg" in from_cnpg.message  # 03:05 UTC, 8.9 h before NOW
    assert from_cnpg.details["sources"]["cnpg"] == "2026-05-21T03:05:12+00:00"
    # The audit has no backup either: none recorded is critical, and the unreadable source is named.
    assert cnpg_missing.status is Status.CRITICAL and "404" in cnpg_missing.details["errors"]["cnpg"]


def test_long_running_query_is_seen(warehouse_db):
    config = load_config({"postgres_checks": {"long_query_s": 1}})
    sleeper = threading.Thread(target=lambda: psycopg.connect(warehouse_db, autocommit=True).execute(
        "select pg_sleep(4)"))
    sleeper.start()
    try:
        time.sleep(2)
        result = by_name(pg.run_checks(config))[("postgres.long_running_queries", "")]
    finally:
        sleeper.join()
    assert result.status is Status.WARNING and "pg_sleep" in result.message


def test_unreachable_server_is_critical_and_the_rest_unknown(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", "postgresql://u:p@127.0.0.1:9/none")
    results = pg.run_checks(load_config())
    assert by_name(results)[("postgres.reachable", "")].status is Status.CRITICAL
    assert {r.status for r in results if r.check_name != "postgres.reachable"} == {Status.UNKNOWN}


def test_not_configured_is_skipped(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", raising=False)
    assert {r.status for r in pg.run_checks(load_config())} == {Status.SKIPPED}


def test_connections_counts_client_backends_and_gives_the_runbooks_total(warehouse_db):
    """Three held sessions: `used` is every client backend (ours included), the message also gives
    pg_stat_activity's row count, the runbook's figure, which includes background processes.

    The server is shared with the rest of the session (an Airflow pool, the live pipeline), whose sessions
    come and go. So the client pids are listed by us just before and just after the check, and an attempt
    counts only when no session came or went around it; then `used` must be exactly that set plus the
    check's own session."""
    client_pids = "select pid from pg_stat_activity where backend_type = 'client backend'"
    held = [psycopg.connect(warehouse_db, autocommit=True) for _ in range(3)]
    held_pids = {conn.info.backend_pid for conn in held}
    try:
        for _attempt in range(20):
            before = {pid for (pid,) in held[0].execute(client_pids).fetchall()}
            result = by_name(pg.run_checks(load_config()))[("postgres.connections", "")]
            # after the check's own connection has closed (psycopg closes it before run_checks returns)
            after = {pid for (pid,) in held[0].execute(client_pids).fetchall()}
            background = held[0].execute("select count(*) from pg_stat_activity "
                                         "where backend_type <> 'client backend'").fetchone()[0]
            if before == after:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server's client sessions never stayed still across one check in 20 attempts")
    finally:
        for conn in held:
            conn.close()
    assert held_pids <= after
    assert result.details["used"] == len(after) + 1  # + the check's own session
    # background processes (checkpointer, walwriter...) are rows of pg_stat_activity but take no slot
    assert background > 0 and result.details["total"] > result.details["used"]
    assert f"{result.details['used']} client connections of max_connections=" in result.message
    assert f"pg_stat_activity has {result.details['total']} rows in all" in result.message
