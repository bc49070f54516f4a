"""Bronze retention against real PostgreSQL: exact counts, partitions, dry run, kill and resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamflow_ops.maintenance.retention import cutoff_epoch, next_range_end, parse_bounds, run_retention

from .conftest import DAY, REFERENCE, audit_rows, insert_rows, snapshot

pytestmark = pytest.mark.postgres
CUTOFF = cutoff_epoch(REFERENCE, 7)


@pytest.fixture
def crafted(conn):
    """An empty warehouse, then rows around the cutoff: the exact expectations are spelled out."""
    conn.execute("truncate bronze.transactions, silver.transactions_enriched, silver.fraud_alerts")
    insert_rows(conn, [
        ("at-cutoff-minus-1s", CUTOFF - 1, True),   # strictly older: deleted
        ("at-cutoff", CUTOFF, True),                # exactly at the cutoff: kept
        ("at-cutoff-plus-1s", CUTOFF + 1, True),    # newer: kept
        ("old-unpromoted-a", CUTOFF - 3 * DAY, False),  # never reached silver: kept, warned (oldest)
        ("old-unpromoted-b", CUTOFF - 10, False),
        *[(f"old-{i}", CUTOFF - DAY - i, True) for i in range(25)],  # deleted
    ])
    return conn


def remaining_ids(conn) -> set[str]:
    return {r[0] for r in conn.execute("select transaction_id from bronze.transactions")}


def test_cutoff_is_strict_and_rounds_up_fractions():
    assert cutoff_epoch(REFERENCE, 7) == int(REFERENCE.timestamp()) - 7 * DAY
    fractional = REFERENCE.replace(microsecond=500_000)
    assert cutoff_epoch(fractional, 7) == int(REFERENCE.timestamp()) - 7 * DAY + 1


def test_partition_bounds():
    assert parse_bounds("FOR VALUES FROM ('100') TO ('200')") == (100, 200)
    assert parse_bounds("FOR VALUES FROM (100) TO (200)") == (100, 200)
    assert parse_bounds("FOR VALUES FROM (MINVALUE) TO (MAXVALUE)") == (None, None)
    assert parse_bounds("FOR VALUES FROM (MINVALUE) TO (50)") == (None, 50)
    assert parse_bounds("DEFAULT") == (None, None)


def test_range_end_is_bounded_and_always_progresses():
    assert next_range_end(10, None, 100) == 100  # fewer than batch_size rows left: up to the cutoff
    assert next_range_end(10, 40, 100) == 40     # the (batch_size + 1)-th row starts the next range
    assert next_range_end(10, 10, 100) == 11     # more than batch_size rows in one second: that second


def test_exact_counts_around_the_cutoff(crafted, config, actor):
    report = run_retention(crafted, config.warehouse, actor, cutoff=CUTOFF, batch_size=7, dry_run=False)
    assert report.deleted_rows == 26
    # 28 old rows in ranges of at most 7: four range batches; the two ranges holding an unpromoted row
    # are swept again with the exact guard (two more transactions, deleting nothing).
    assert report.batches == 6
    assert report.unpromoted_kept == 2
    assert report.oldest_unpromoted["id"] == "old-unpromoted-a"
    assert "old-unpromoted-a" in report.warning
    assert remaining_ids(crafted) == {"at-cutoff", "at-cutoff-plus-1s", "old-unpromoted-a", "old-unpromoted-b"}
    [audit] = audit_rows(crafted, "bronze_retention.delete")
    assert (audit["rows_affected"], audit["outcome"], audit["dry_run"]) == (26, "success", False)
    assert audit["details"]["unpromoted_kept"] == 2 and audit["details"]["batches"] == 6


def test_dry_run_reports_exact_counts_and_changes_nothing(crafted, config, actor):
    before = snapshot(crafted)
    report = run_retention(crafted, config.warehouse, actor, cutoff=CUTOFF, batch_size=7, dry_run=True)
    assert report.summary == "DRY RUN: would delete 26 rows (2 unpromoted rows older than cutoff kept)"
    assert snapshot(crafted) == before
    [audit] = audit_rows(crafted, "bronze_retention")
    assert (audit["dry_run"], audit["rows_affected"], audit["outcome"]) == (True, 0, "dry_run")
    assert audit["details"]["would_delete"] == 26


def test_seeded_warehouse_matches_an_independent_count(conn, config, actor):
    """The 9-day seed: what remains is exactly what the SPEC's predicate says must remain."""
    cutoff = cutoff_epoch(REFERENCE.now(REFERENCE.tzinfo), 7)
    expected_deleted, expected_unpromoted = conn.execute(
        "select count(*) filter (where s.transaction_id is not null), count(*) filter (where s.transaction_id is null) "
        "from bronze.transactions b left join silver.transactions_enriched s using (transaction_id) "
        "where b.transaction_time < %s", (cutoff,)).fetchone()
    total = conn.execute("select count(*) from bronze.transactions").fetchone()[0]
    assert expected_deleted > 0 and expected_unpromoted > 0
    report = run_retention(conn, config.warehouse, actor, cutoff=cutoff, batch_size=500, dry_run=False)
    assert (report.deleted_rows, report.unpromoted_kept) == (expected_deleted, expected_unpromoted)
    assert conn.execute("select count(*) from bronze.transactions").fetchone()[0] == total - expected_deleted


def _partition(conn):
    """Re-create bronze.transactions as daily range partitions holding the crafted rows."""
    conn.execute("alter table bronze.transactions rename to transactions_plain")
    conn.execute("create table bronze.transactions (like bronze.transactions_plain including defaults) "
                 "partition by range (transaction_time)")
    conn.execute("alter table bronze.transactions add primary key (transaction_id, transaction_time)")
    for day in range(-12, 3):
        lo, hi = CUTOFF + day * DAY, CUTOFF + (day + 1) * DAY
        conn.execute(f"create table bronze.transactions_d{day + 12:02d} partition of bronze.transactions "
                     f"for values from ({lo}) to ({hi})")
    conn.execute("create table bronze.transactions_default partition of bronze.transactions default")
    conn.execute("insert into bronze.transactions select * from bronze.transactions_plain")
    conn.execute("drop table bronze.transactions_plain")


def test_partitioned_drops_whole_promoted_partitions_and_deletes_the_rest(conn, config, actor):
    conn.execute("truncate bronze.transactions, silver.transactions_enriched, silver.fraud_alerts")
    rows = [(f"d10-{i}", CUTOFF - 2 * DAY + i, True) for i in range(5)]          # partition d10: fully promoted
    rows += [(f"d11-{i}", CUTOFF - DAY + i, i != 0) for i in range(5)]           # d11: partly promoted
    rows += [("edge-1", CUTOFF - 1, True), ("edge0", CUTOFF, True), ("edge1", CUTOFF + 1, True)]
    rows += [("ancient", CUTOFF - 100 * DAY, True)]                               # default partition
    insert_rows(conn, rows)
    _partition(conn)
    dry = run_retention(conn, config.warehouse, actor, cutoff=CUTOFF, batch_size=2, dry_run=True)
    assert (dry.deleted_rows, dry.unpromoted_kept) == (11, 1)
    # d00..d09 are empty and past the cutoff, d10 is full and promoted: all go whole; d11 does not.
    whole = [{"partition": f"bronze.transactions_d{d:02d}", "rows": 5 if d == 10 else 0} for d in range(11)]
    assert dry.dropped_partitions == whole
    report = run_retention(conn, config.warehouse, actor, cutoff=CUTOFF, batch_size=2, dry_run=False)
    assert report.partitioned and report.deleted_rows == 11
    assert report.dropped_partitions == whole
    assert remaining_ids(conn) == {"d11-0", "edge0", "edge1"}
    assert conn.execute("select to_regclass('bronze.transactions_d10')").fetchone()[0] is None
    assert conn.execute("select to_regclass('bronze.transactions_d11')").fetchone()[0] is not None
    drops = [a for a in audit_rows(conn, "bronze_retention.drop_partition") if a["target"].endswith("d10")]
    assert [(a["dry_run"], a["rows_affected"]) for a in drops] == [(True, None), (False, 5)]
    assert audit_rows(conn, "bronze_retention.delete")[-1]["rows_affected"] == 6


def test_silver_copy_with_another_time_and_crowded_seconds_are_decided_exactly(conn, config, actor):
    """The fast batches look for the silver row in the batch's own time range; the sweep decides the rest by id.

    A silver copy stamped with another transaction_time is still promoted: deleted, not reported as kept.
    More rows in one second than batch_size: that second is one batch, nothing skipped.
    """
    conn.execute("truncate bronze.transactions, silver.transactions_enriched, silver.fraud_alerts")
    insert_rows(conn, [(f"crowd-{i}", CUTOFF - 50, True) for i in range(9)]
                + [("crowd-unpromoted", CUTOFF - 50, False), ("lonely", CUTOFF - 40, True)])
    insert_rows(conn, [("shifted", CUTOFF - 30, False)])  # bronze only ...
    conn.execute("insert into silver.transactions_enriched (transaction_id, transaction_time) "
                 "values ('shifted', %s)", (CUTOFF + DAY,))  # ... its silver copy carries a later time
    dry = run_retention(conn, config.warehouse, actor, cutoff=CUTOFF, batch_size=3, dry_run=True)
    assert (dry.deleted_rows, dry.unpromoted_kept) == (11, 1)
    report = run_retention(conn, config.warehouse, actor, cutoff=CUTOFF, batch_size=3, dry_run=False)
    assert (report.deleted_rows, report.unpromoted_kept) == (11, 1)
    assert report.oldest_unpromoted["id"] == dry.oldest_unpromoted["id"] == "crowd-unpromoted"
    assert remaining_ids(conn) == {"crowd-unpromoted"}


def test_partition_whose_silver_times_differ_is_kept_whole_but_emptied_row_by_row(conn, config, actor):
    """The partition proof only looks in the partition's time range: unproven means row by row, never a drop."""
    conn.execute("truncate bronze.transactions, silver.transactions_enriched, silver.fraud_alerts")
    insert_rows(conn, [(f"d10-{i}", CUTOFF - 2 * DAY + i, False) for i in range(3)])
    conn.execute("insert into silver.transactions_enriched (transaction_id, transaction_time) "
                 "select transaction_id, transaction_time + %s from bronze.transactions", (3 * DAY,))
    _partition(conn)
    report = run_retention(conn, config.warehouse, actor, cutoff=CUTOFF, batch_size=2, dry_run=False)
    assert (report.deleted_rows, report.unpromoted_kept) == (3, 0)
    dropped = {p["partition"] for p in report.dropped_partitions}
    assert dropped == {f"bronze.transactions_d{d:02d}" for d in range(12) if d != 10}
    assert conn.execute("select to_regclass('bronze.transactions_d10')").fetchone()[0] is not None
    assert remaining_ids(conn) == set()
    [kept] = [a for a in audit_rows(conn, "bronze_retention.drop_partition") if a["target"].endswith("d10")]
    assert (kept["outcome"], kept["rows_affected"]) == ("skipped", None)


KILLER = textwrap.dedent("""
    import os, signal, sys
    import psycopg
    from streamflow_ops.config import load_config
    from streamflow_ops.store import Actor
    from streamflow_ops.maintenance.retention import run_retention

    def die_after_two(batch, rows, seconds):
        print(rows, flush=True)  # what this committed batch deleted
        if batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no cleanup, no audit row

    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        run_retention(conn, load_config().warehouse, Actor("t", "killed", "t"), cutoff=int(sys.argv[2]),
                      batch_size=5, dry_run=False, on_batch=die_after_two)
""")


def test_killed_run_resumes_to_the_same_final_state(crafted, warehouse_db, config, actor):
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{repo / 'plugins'}:{repo}"}
    proc = subprocess.run([sys.executable, "-c", KILLER, warehouse_db, str(CUTOFF)], env=env, timeout=120,
                          check=False, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    committed = sum(int(line) for line in proc.stdout.split())
    assert committed > 0
    assert len(remaining_ids(crafted)) == 30 - committed  # the two committed batches, nothing more
    # The kill left its trace: the delete's row, committed before the first batch, still open, and its
    # count committed with each batch (exactly what is gone).
    trace = crafted.execute("select outcome, finished_at, rows_affected from ops.maintenance_audit "
                            "where run_id = 'killed' and action = 'bronze_retention.delete'").fetchall()
    assert trace == [("in progress", None, committed)]
    report = run_retention(crafted, config.warehouse, actor, cutoff=CUTOFF, batch_size=5, dry_run=False)
    assert report.deleted_rows == 26 - committed
    assert remaining_ids(crafted) == {"at-cutoff", "at-cutoff-plus-1s", "old-unpromoted-a", "old-unpromoted-b"}


def test_statement_timeout_failure_is_audited_and_resumable(crafted, warehouse_db, config, actor):
    """A batch that times out rolls back alone; committed batches stay; the re-run finishes the job."""
    import psycopg

    with psycopg.connect(warehouse_db, autocommit=True) as slow:
        calls = []

        def stall_third(batch, rows, seconds):
            calls.append(rows)
            if batch == 2:
                slow.execute("set statement_timeout = '50ms'")
                slow.execute("create or replace function pg_temp.nap() returns trigger language plpgsql as "
                             "$$ begin perform pg_sleep(1); return old; end $$")
                slow.execute("create trigger nap before delete on bronze.transactions "
                             "for each row execute function pg_temp.nap()")

        with pytest.raises(psycopg.errors.QueryCanceled):
            run_retention(slow, config.warehouse, actor, cutoff=CUTOFF, batch_size=5, dry_run=False,
                          on_batch=stall_third)
    assert len(calls) == 2 and sum(calls) > 0
    assert len(remaining_ids(crafted)) == 30 - sum(calls)
    [failed] = audit_rows(crafted, "bronze_retention.delete")
    assert (failed["outcome"], failed["rows_affected"]) == ("failed", sum(calls))
    assert "statement timeout" in failed["details"]["error"]
    report = run_retention(crafted, config.warehouse, actor, cutoff=CUTOFF, batch_size=5, dry_run=False)
    assert report.deleted_rows == 26 - sum(calls)
    assert remaining_ids(crafted) == {"at-cutoff", "at-cutoff-plus-1s", "old-unpromoted-a", "old-unpromoted-b"}
