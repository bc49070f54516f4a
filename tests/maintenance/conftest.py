"""Shared pieces of the maintenance tests: a warehouse connection, the config, crafted bronze data."""
from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest

from streamflow_ops.config import load_config
from streamflow_ops.store import Actor
from streamflow_ops.store import ensure_ops_schema

REFERENCE = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)
DAY = 86400


@pytest.fixture
def config():
    return load_config()


@pytest.fixture
def actor():
    return Actor("test_dag", "test_run", "test_task")


@pytest.fixture
def conn(warehouse_db):
    with psycopg.connect(warehouse_db, autocommit=True) as connection:
        ensure_ops_schema(connection)
        yield connection


def insert_rows(conn, rows: list[tuple[str, int, bool]]) -> None:
    """(transaction_id, transaction_time, promoted) into bronze, and into silver when promoted."""
    with conn.cursor() as cur:
        cur.executemany("insert into bronze.transactions (transaction_id, customer_id, amount, transaction_time) "
                        "values (%s, 'c-1', 1.00, %s)", [(i, t) for i, t, _ in rows])
        cur.executemany("insert into silver.transactions_enriched (transaction_id, customer_id, amount, "
                        "fraud_score, transaction_time) values (%s, 'c-1', 1.00, 0.1, %s)",
                        [(i, t) for i, t, promoted in rows if promoted])


def snapshot(conn) -> dict[str, object]:
    """Row counts and a checksum of every warehouse table and view: 'nothing changed' made exact."""
    relations = conn.execute(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname in ('bronze', 'silver', 'gold') and c.relkind in ('r', 'm', 'p') order by 1").fetchall()
    result = {}
    for (name,) in relations:
        schema, table = name.split(".")
        query = psycopg.sql.SQL("select count(*), md5(coalesce(string_agg(t::text, ',' order by t::text), '')) "
                                "from {} t").format(psycopg.sql.Identifier(schema, table))
        result[name] = conn.execute(query).fetchone()
    return result


def audit_rows(conn, action_prefix: str = "") -> list[dict]:
    cur = conn.execute("select action, target, dry_run, rows_affected, outcome, details from ops.maintenance_audit "
                       "where action like %s order by id", (action_prefix + "%",))
    cols = [c.name for c in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]
