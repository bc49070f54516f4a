"""Retention on a partitioned bronze: a partition that cannot be locked in time is skipped with a warning
and the rest goes on; partition names come from the catalog."""
from __future__ import annotations

import psycopg
import pytest

from streamflow_ops.maintenance.retention import run_retention

from .conftest import DAY, audit_rows, insert_rows
from .test_retention import CUTOFF, _partition, remaining_ids

pytestmark = pytest.mark.postgres


@pytest.fixture
def partitioned(conn):
    """d09 and d10 (past the cutoff) full and promoted, d11 partly promoted, the edge rows newer."""
    conn.execute("truncate bronze.transactions, silver.transactions_enriched, silver.fraud_alerts")
    insert_rows(conn, [(f"d09-{i}", CUTOFF - 3 * DAY + i, True) for i in range(4)]
                + [(f"d10-{i}", CUTOFF - 2 * DAY + i, True) for i in range(5)]
                + [(f"d11-{i}", CUTOFF - DAY + i, i != 0) for i in range(3)] + [("edge0", CUTOFF, True)])
    _partition(conn)
    conn.execute("set lock_timeout = '300ms'")
    return conn


def test_partition_locked_by_another_session_is_skipped_and_the_rest_goes_on(partitioned, warehouse_db, config,
                                                                              actor):
    with psycopg.connect(warehouse_db) as reader:
        reader.execute("select count(*) from bronze.transactions_d10")  # a reader's lock, held until rollback
        report = run_retention(partitioned, config.warehouse, actor, cutoff=CUTOFF, batch_size=2, dry_run=False)
        reader.rollback()
    [skipped] = report.skipped_partitions
    assert skipped["partition"] == "bronze.transactions_d10" and "LockNotAvailable" in skipped["reason"]
    assert "partition bronze.transactions_d10 skipped" in report.warning
    dropped = {p["partition"] for p in report.dropped_partitions}
    assert "bronze.transactions_d09" in dropped and "bronze.transactions_d10" not in dropped
    assert partitioned.execute("select to_regclass('bronze.transactions_d10')").fetchone()[0] is not None
    # Its promoted rows still went, row by row (the reader's lock does not block a delete); 4 + 5 + 2 in all.
    assert report.deleted_rows == 11
    assert remaining_ids(partitioned) == {"d11-0", "edge0"}
    [audit] = [a for a in audit_rows(partitioned, "bronze_retention.drop_partition")
               if a["target"] == "bronze.transactions_d10"]
    assert audit["outcome"] == "skipped" and "within its timeouts" in audit["details"]["kept_because"]


def test_partition_in_another_schema_is_named_from_the_catalog(partitioned, config, actor):
    partitioned.execute("create schema archive")
    partitioned.execute("alter table bronze.transactions_d10 set schema archive")
    report = run_retention(partitioned, config.warehouse, actor, cutoff=CUTOFF, batch_size=2, dry_run=False)
    assert {"partition": "archive.transactions_d10", "rows": 5} in report.dropped_partitions
    assert report.skipped_partitions == [] and report.deleted_rows == 11
    assert partitioned.execute("select to_regclass('archive.transactions_d10')").fetchone()[0] is None
    targets = {a["target"] for a in audit_rows(partitioned, "bronze_retention.drop_partition")}
    assert "archive.transactions_d10" in targets and "bronze.transactions_d10" not in targets
