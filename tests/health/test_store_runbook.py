"""ops.health_check_results.runbook: not null on new tables, migrated in place on old ones, written by the
sweep with a real RUNBOOK.md heading for every result (headings parsed by tests/unit/test_registry.py)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from streamflow_ops.config import load_config
from streamflow_ops.results import CheckResult, Status
from streamflow_ops.store import ensure_ops_schema, write_results
from streamflow_ops.sweep import ensure_ops_tables, persist, run_family
from tests.runbook import HEADINGS

pytestmark = pytest.mark.postgres

# ops.health_check_results as the package created it before the runbook column.
OLD_TABLE = """
create schema {ops};
create table {ops}.health_check_results (
    id bigserial primary key, sweep_id text not null, checked_at timestamptz not null default now(),
    component text not null, check_name text not null, subject text not null default '',
    status text not null, value numeric, threshold text, message text not null,
    details jsonb not null default '{{}}');
insert into {ops}.health_check_results (sweep_id, component, check_name, status, message, details) values
    ('old', 'kafka', 'kafka.consumer_lag', 'warning', 'lag', '{{"runbook": "Runbook 4.4 Kafka: lag"}}'),
    ('old', 'flink', 'flink.job_running', 'ok', 'running', '{{}}');
"""


def runbook_column(conn, ops):
    return conn.execute("select is_nullable from information_schema.columns where table_schema = %s "
                        "and table_name = 'health_check_results' and column_name = 'runbook'", (ops,)).fetchone()


def test_new_table_has_a_not_null_runbook(warehouse_db):
    ops = f"ops_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        ensure_ops_schema(conn, ops)
        assert runbook_column(conn, ops) == ("NO",)
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(f"insert into {ops}.health_check_results (sweep_id, component, check_name, status, "
                         f"message) values ('s', 'kafka', 'kafka.x', 'ok', 'm')")


def test_old_table_is_migrated_in_place_and_keeps_its_rows(warehouse_db):
    ops = f"ops_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        conn.execute(OLD_TABLE.format(ops=ops))
        assert runbook_column(conn, ops) is None
        for _ in range(2):  # idempotent: the second bootstrap changes nothing
            ensure_ops_schema(conn, ops)
            rows = conn.execute(f"select check_name, runbook from {ops}.health_check_results order by id").fetchall()
            assert rows == [("kafka.consumer_lag", "Runbook 4.4 Kafka: lag"), ("flink.job_running", "")]
            assert runbook_column(conn, ops) == ("NO",)
        write_results(conn, "new", [CheckResult("kafka.consumer_lag", Status.OK, "lag 0", runbook="A > B")],
                      ops_schema=ops)
        assert conn.execute(f"select runbook from {ops}.health_check_results where sweep_id = 'new'").fetchone() \
            == ("A > B",)


def test_sweep_stores_a_real_runbook_heading_for_every_result(warehouse_db, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", raising=False)  # skipped results cite headings too
    config = load_config()
    results = run_family("postgres", config) + run_family("business", config) + run_family("kafka", config)
    sweep_id = f"runbook-{uuid.uuid4().hex[:8]}"
    ensure_ops_tables(config)  # the DAG's first task: persist itself runs no DDL
    persist(config, sweep_id, results, datetime.now(timezone.utc))
    with psycopg.connect(warehouse_db) as conn:
        stored = conn.execute("select check_name, runbook, status, message from ops.health_check_results "
                              "where sweep_id = %s", (sweep_id,)).fetchall()
    assert len(stored) == len(results) and {s[2] for s in stored} >= {"ok", "skipped"}
    assert [(name, heading) for name, heading, *_ in stored if heading not in HEADINGS] == []
