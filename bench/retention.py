"""Benchmark: purge the oldest of 8 days from a >= 5M-row bronze table, three ways.

(a) this package's batched retention, (b) the runbook's single DELETE, (c) the partitioned path.
Wall time, longest single write transaction, WAL bytes (pg_current_wal_lsn difference).
Goals: (a) <= 1.5 x (b) and no transaction > 5 s; (c) >= 50 x faster than (b).
Run: `python -m bench.retention` (or `make bench`). Starts, and afterwards stops, its own sandbox PostgreSQL.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

import psycopg  # noqa: E402

from sandbox import postgres  # noqa: E402
from sandbox.proc import Layout  # noqa: E402

ROWS = int(os.environ.get("STREAMFLOW_BENCH_ROWS", "5040000"))
DAYS = 8
DAY = 86400
START = 1_767_225_600  # 2026-01-01T00:00:00Z: partitions and the purged day align on UTC days
CUTOFF = START + DAY
BATCH_SIZE = 10_000
RESULTS = REPO / "bench" / "results"

BRONZE = """
insert into bronze.transactions (transaction_id, customer_id, merchant_id, amount, currency, location,
                                 transaction_time, payload)
select 'tx-' || i, 'c-' || i %% 50000, 'm-' || i %% 300, (i %% 50000) / 100.0, 'EUR', 'Berlin',
       %(start)s + (i::bigint * %(span)s) / %(rows)s, '{"channel": "web"}'::jsonb
from generate_series(0, %(rows)s - 1) as i
"""
SILVER = """
insert into silver.transactions_enriched (transaction_id, customer_id, amount, fraud_score, transaction_time)
select transaction_id, customer_id, amount, 0.1, transaction_time from bronze.transactions
"""


def _admin(layout):
    return psycopg.connect(postgres.dsn(layout, "postgres"), autocommit=True)


def _clone(layout, template: str, name: str) -> str:
    with _admin(layout) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}" template "{template}"')
    return postgres.dsn(layout, name)


def _prepare(layout) -> None:
    """Template databases: plain bronze (8 days, all promoted) and the same data range-partitioned by day."""
    with _admin(layout) as conn:
        for name in ("bench_plain", "bench_part"):
            conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute('create database "bench_plain"')
    with psycopg.connect(postgres.dsn(layout, "bench_plain"), autocommit=True) as conn:
        conn.execute((REPO / "sandbox" / "sql" / "warehouse_schema.sql").read_text())
        conn.execute(BRONZE, {"start": START, "span": DAYS * DAY, "rows": ROWS})
        conn.execute(SILVER)
        conn.execute("vacuum (analyze) bronze.transactions")
        conn.execute("vacuum (analyze) silver.transactions_enriched")
    dsn = _clone(layout, "bench_plain", "bench_part")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("alter table bronze.transactions rename to transactions_plain")
        conn.execute("create table bronze.transactions (like bronze.transactions_plain including defaults) "
                     "partition by range (transaction_time)")
        conn.execute("alter table bronze.transactions add primary key (transaction_id, transaction_time)")
        conn.execute("create index on bronze.transactions (transaction_time)")
        for day in range(DAYS + 1):
            conn.execute(f"create table bronze.transactions_{day} partition of bronze.transactions "
                         f"for values from ({START + day * DAY}) to ({START + (day + 1) * DAY})")
        conn.execute("insert into bronze.transactions select * from bronze.transactions_plain")
        conn.execute("drop table bronze.transactions_plain")
        conn.execute("vacuum (analyze) bronze.transactions")
    with _admin(layout) as conn:
        conn.execute("checkpoint")


def _measure(dsn: str, action) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("checkpoint")
        lsn = conn.execute("select pg_current_wal_lsn()").fetchone()[0]
        started = time.monotonic()
        extra = action(conn)
        wall = time.monotonic() - started
        wal = conn.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint", (lsn,)).fetchone()[0]
        left = conn.execute("select count(*) from bronze.transactions where transaction_time < %s",
                            (CUTOFF,)).fetchone()[0]
    return {"wall_s": round(wall, 3), "wal_bytes": int(wal), "rows_left_before_cutoff": left, **extra}


def _package_retention(conn) -> dict:
    from streamflow_ops.config import load_config
    from streamflow_ops.maintenance.audit import Actor
    from streamflow_ops.postgres.retention import run_retention
    from streamflow_ops.store import ensure_ops_schema

    ensure_ops_schema(conn)
    conn.execute("set lock_timeout = '5s'")
    conn.execute("set statement_timeout = '30s'")
    report = run_retention(conn, load_config().warehouse, Actor("bench", "bench", "retention"), cutoff=CUTOFF,
                           batch_size=BATCH_SIZE, dry_run=False)
    drops = conn.execute("select max(extract(epoch from finished_at - started_at)) from ops.maintenance_audit "
                         "where action = 'bronze_retention.drop_partition' and not dry_run").fetchone()[0]
    longest = max(report.longest_batch_s, float(drops or 0))
    return {"deleted_rows": report.deleted_rows, "batches": report.batches,
            "partitions_dropped": len(report.dropped_partitions), "longest_transaction_s": round(longest, 3)}


def _single_delete(conn) -> dict:
    started = time.monotonic()
    deleted = conn.execute("delete from bronze.transactions where transaction_time < %s", (CUTOFF,)).rowcount
    return {"deleted_rows": deleted, "longest_transaction_s": round(time.monotonic() - started, 3)}


def _report(results: dict) -> str:
    a, b, c = results["a_batched"], results["b_single_delete"], results["c_partitioned"]
    goals = results["goals"]
    lines = [
        "# Bronze retention benchmark", "",
        f"{results['rows']:,} bronze rows over {DAYS} days (all promoted to silver); purge the oldest day "
        f"(`transaction_time < {CUTOFF}`). Sandbox PostgreSQL 15 (fsync=off, full_page_writes=off, "
        f"autovacuum=off), 2 shared cores; run at {results['ran_at']}.", "",
        "| variant | rows deleted | wall (s) | longest transaction (s) | WAL (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in (("(a) batched retention (this package, batch 10,000)", a),
                     ("(b) single DELETE (runbook)", b), ("(c) partitioned: detach + drop", c)):
        lines.append(f"| {label} | {r['deleted_rows']:,} | {r['wall_s']:.2f} | {r['longest_transaction_s']:.3f} "
                     f"| {r['wal_bytes'] / 2**20:.1f} |")
    lines += ["", "Goals:",
              f"- (a) / (b) wall = {goals['a_over_b']:.2f} (goal <= 1.5): {'MET' if goals['a_ok'] else 'NOT MET'}",
              f"- (a) longest transaction {a['longest_transaction_s']:.3f} s (goal <= 5 s): "
              f"{'MET' if goals['a_txn_ok'] else 'NOT MET'}",
              f"- (b) / (c) wall = {goals['b_over_c']:.1f}x (goal >= 50x): {'MET' if goals['c_ok'] else 'NOT MET'}",
              "", "(c) includes the safety work: counting the old rows and proving every row of the partition "
              "reached silver (an anti-join over the partition) before it is detached and dropped. The "
              f"detach + drop transaction alone takes {c['longest_transaction_s']:.3f} s "
              f"({b['wall_s'] / max(c['longest_transaction_s'], 1e-6):.0f}x faster than (b)); the promotion "
              "proof, which (b) does not do at all, is what costs the rest. The same proof is in (a).",
              "WAL is low in absolute terms because the sandbox runs with full_page_writes=off."]
    return "\n".join(lines) + "\n"


def main() -> int:
    from datetime import datetime, timezone

    layout = Layout.from_env(default_dir=".sandbox/bench", default_base=46200)
    was_running = postgres.status(layout).split(":", 1)[1].strip().startswith("running")
    postgres.start(layout)
    try:
        os.environ.setdefault("AIRFLOW_CONN_STREAMFLOW_POSTGRES", postgres.dsn(layout))
        print(f"preparing {ROWS:,} rows ...", flush=True)
        _prepare(layout)
        results = {"rows": ROWS, "ran_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        for key, template, action in (("b_single_delete", "bench_plain", _single_delete),
                                      ("a_batched", "bench_plain", _package_retention),
                                      ("c_partitioned", "bench_part", _package_retention)):
            print(f"running {key} ...", flush=True)
            results[key] = _measure(_clone(layout, template, f"bench_{key}"), action)
            print(f"  {results[key]}", flush=True)
        a, b, c = results["a_batched"], results["b_single_delete"], results["c_partitioned"]
        results["goals"] = {"a_over_b": a["wall_s"] / b["wall_s"], "a_ok": a["wall_s"] <= 1.5 * b["wall_s"],
                            "a_txn_ok": a["longest_transaction_s"] <= 5, "b_over_c": b["wall_s"] / c["wall_s"],
                            "c_ok": b["wall_s"] >= 50 * c["wall_s"]}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "retention.json").write_text(json.dumps(results, indent=2) + "\n")
        text = _report(results)
        (RESULTS / "retention.md").write_text(text)
        print(text)
    finally:
        with _admin(layout) as conn:
            for name in ("bench_plain", "bench_part", "bench_a_batched", "bench_b_single_delete", "bench_c_partitioned"):
                conn.execute(f'drop database if exists "{name}" with (force)')
        if not was_running:
            postgres.stop(layout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
