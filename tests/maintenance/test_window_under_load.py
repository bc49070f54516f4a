"""The nightly window for real (dag.test) while the live pipeline writes bronze, silver and alerts.

Expected values come from SQL before the run and from the logical date, never from the product: the
rows retention must delete, the rows it must keep, and what the writer and a gold reader may feel.
"""
from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from streamflow_ops.backup.folder import read_manifest
from streamflow_ops.business import checks as business_checks
from streamflow_ops.config import RetentionConfig, load_config
from streamflow_ops.postgres import checks as postgres_checks
from streamflow_ops.results import Status

from sandbox import pipeline
from tests.dagfiles import load_repo_dag, load_repo_dag_module
from tests.fakes.http_api import FakeApi
from tests.health.warehouse_state import record_drill

from .conftest import audit_rows
from .test_dags import states

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]

NOT_LIVE = "transaction_id not like 'live-%%'"
CONCURRENT_VIEWS = ("gold.daily_fraud_summary", "gold.customer_risk_profile")


def digest(conn, where: str, params: tuple = ()) -> tuple[int, str]:
    """Count and md5 of the bronze rows matching `where`: 'untouched' made exact."""
    return conn.execute(f"select count(*), md5(coalesce(string_agg(b::text, ',' order by transaction_id), '')) "
                        f"from bronze.transactions b where {where}", params).fetchone()


class GoldReader(threading.Thread):
    """Reads the CONCURRENTLY-refreshed views in a loop. A lock wait over 20 ms fails the read: a plain
    refresh (ACCESS EXCLUSIVE) would, CONCURRENTLY never should. Wall time alone would also count CPU
    starvation on a busy machine, so the slowest read is kept for the message only."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn, self.stop, self.reads, self.slowest, self.errors = dsn, threading.Event(), 0, 0.0, []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("set lock_timeout = '20ms'")
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    for view in CONCURRENT_VIEWS:
                        conn.execute(f"select count(*) from {view}").fetchone()
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.reads += 1
                time.sleep(0.02)


def test_window_under_load_deletes_exactly_never_blocks_the_writer_or_gold_readers(
        live_pipeline, warehouse_db, airflow_db, tmp_path, monkeypatch):
    logical = datetime.now(timezone.utc).replace(microsecond=0)
    cutoff = math.ceil((logical - timedelta(days=RetentionConfig().retention_days)).timestamp())
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"backup": {"folder": str(tmp_path)}}))
    with psycopg.connect(warehouse_db, autocommit=True) as wh:
        promoted_old = ("transaction_time < %s and exists (select 1 from silver.transactions_enriched s "
                        "where s.transaction_id = b.transaction_id)")
        [expected_deleted] = wh.execute(f"select count(*) from bronze.transactions b where {promoted_old}",
                                        (cutoff,)).fetchone()
        kept = f"{NOT_LIVE} and not ({promoted_old})"
        kept_before = digest(wh, kept, (cutoff,))
        silver_before = wh.execute(f"select count(*) from silver.transactions_enriched where {NOT_LIVE}").fetchone()
    assert expected_deleted > 0 and kept_before[0] > 0

    written_before = pipeline.stats(live_pipeline, "consumer")["silver_rows"]
    reader = GoldReader(warehouse_db)
    reader.start()
    with FakeApi() as slack:
        slack.route("POST", r"/.*", (200, b"ok"))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": slack.url, "password": "T000/B000/XXXX"}))
        started = time.monotonic()
        dr = load_repo_dag_module("maintenance_tasks").build(deadline=None).test(logical_date=logical)
        window_s = time.monotonic() - started
    reader.stop.set()
    reader.join(10)
    time.sleep(1.5)  # the consumer's stats file is rewritten every second
    writer = pipeline.stats(live_pipeline, "consumer")
    ran = states(dr)
    # No Kubernetes: the window dumped bronze, silver and gold; that dump is verified right after the window
    # (postgres_backup_verify, on the backup's asset), while the pipeline still writes.
    verify_dr = load_repo_dag("postgres_backup_verify").test()
    assert verify_dr.state == "success", states(verify_dr)

    # The writer kept writing and never failed: its lock_timeout is the window's (5 s), so no lock wait
    # reached it; and no write took that long in all.
    assert writer["error_count"] == 0, writer["errors"]
    assert writer["max_write_s"] < RetentionConfig().lock_timeout_s, writer
    assert writer["silver_rows"] - written_before >= window_s * 5, (writer, window_s)  # rate 20/s

    with psycopg.connect(warehouse_db, autocommit=True) as wh:
        # Retention exact: every promoted row past the cutoff gone, the number audited; the rest untouched.
        assert wh.execute(f"select count(*) from bronze.transactions b where {promoted_old}",
                          (cutoff,)).fetchone()[0] == 0
        [delete] = audit_rows(wh, "bronze_retention.delete")
        assert delete["rows_affected"] == expected_deleted and delete["details"]["cutoff"] == cutoff
        assert digest(wh, kept, (cutoff,)) == kept_before
        assert wh.execute(f"select count(*) from silver.transactions_enriched where {NOT_LIVE}").fetchone() == \
            silver_before
        # Every live row the consumer wrote is there, in bronze and in silver.
        live_bronze, live_silver = wh.execute(
            "select (select count(*) from bronze.transactions where transaction_id like 'live-%%'),"
            " (select count(*) from silver.transactions_enriched where transaction_id like 'live-%%')").fetchone()
        assert live_bronze >= writer["bronze_rows"] and live_silver >= writer["silver_rows"]
        # Gold refreshed CONCURRENTLY, and it saw the rows the pipeline wrote before the window.
        methods = {a["target"]: a["action"] for a in audit_rows(wh, "gold_refresh")}
        assert all(methods[v] == "gold_refresh_concurrently" for v in CONCURRENT_VIEWS), methods
        gold_total = wh.execute("select sum(transactions) from gold.daily_fraud_summary").fetchone()[0]
        assert gold_total >= silver_before[0] + written_before
    # Readers of the concurrently refreshed views never waited on the refresh.
    assert not reader.errors and reader.reads > 50, (reader.reads, reader.errors, reader.slowest)

    # The sweep after the window: PostgreSQL and business checks healthy on the flowing pipeline.
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", warehouse_db)
    record_drill(warehouse_db, "pg_dump", hours_ago=24)  # last Sunday's drill: restore_drill_age is not this test's
    config = load_config({"backup": {"folder": str(tmp_path)}})
    results = postgres_checks.run_checks(config) + business_checks.run_checks(config)
    unhealthy = [(r.check_name, r.subject, r.status.value, r.message) for r in results if r.status is not Status.OK]
    assert not unhealthy

    assert {t: s for t, s in ran.items() if s not in ("success", "skipped")} == {}, ran
    assert dr.state == "success"
    # The backup taken under load: `unverified` (pending) from the window, then `verified` after the window,
    # its manifest too (a substring match on the report cannot tell these apart).
    with psycopg.connect(warehouse_db, autocommit=True) as wh:
        [dumped, backup] = [a for a in audit_rows(wh, "backup") if a["action"] == "backup"]
    assert (dumped["outcome"], dumped["details"]["verification"], dumped["target"]) == (
        "unverified", "pending", backup["target"])
    assert (backup["outcome"], backup["dry_run"]) == ("verified", False), backup
    assert backup["details"]["dumped_schemas"] == ["bronze", "silver", "gold"]
    assert Path(backup["target"]).parent == tmp_path and read_manifest(Path(backup["target"]))["status"] == "verified"
