"""Benchmark: purge the oldest of 8 days from a >= 5M-row bronze table, three ways.

(a) this package's batched retention, (b) the runbook's single DELETE, (c) the partitioned path, and for
reference (c0) detach + drop alone, without the promotion proof (what (c) would cost if it trusted blindly).
Wall time, longest single write transaction, WAL bytes (pg_current_wal_lsn difference).
Goals: (a) <= 1.5 x (b) and no transaction > 5 s; (c) >= 50 x faster than (b).
Every variant starts from a fresh copy of the same template, VACUUM ANALYZEd, checkpointed and with both
tables read once (warm); each is run ROUNDS times, interleaved, and the median is reported. Measured under
production-like durability (fsync, full_page_writes, synchronous_commit on) and under the sandbox's
defaults (all off), restarting the server in between; if the sandbox was already running it is not
restarted and only its current settings are measured.
Run: `python -m bench retention` (or `make bench`). Starts, and afterwards stops, its own sandbox PostgreSQL.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

import psycopg  # noqa: E402

from bench import write_results  # noqa: E402

from sandbox import postgres  # noqa: E402
from sandbox.proc import Layout  # noqa: E402

ROWS = int(os.environ.get("STREAMFLOW_BENCH_ROWS", "5040000"))
DAYS = 8
DAY = 86400
START = 1_767_225_600  # 2026-01-01T00:00:00Z: partitions and the purged day align on UTC days
CUTOFF = START + DAY
BATCH_SIZE = 10_000
ROUNDS = int(os.environ.get("STREAMFLOW_BENCH_ROUNDS", "3"))
DURABILITY = ("fsync", "full_page_writes", "synchronous_commit")
PROFILES = {"production-like": dict.fromkeys(DURABILITY, "on"), "sandbox defaults": dict.fromkeys(DURABILITY, "off")}

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
    with _admin(layout) as conn:
        conn.execute("checkpoint")


def _measure(layout, template: str, action) -> dict:
    """One run on a fresh copy: VACUUM ANALYZE, warm both tables, checkpoint, then time the action."""
    with psycopg.connect(_clone(layout, template, "bench_run"), autocommit=True) as conn:
        conn.execute("vacuum (analyze)")
        for table in ("bronze.transactions", "silver.transactions_enriched"):
            conn.execute(f"select count(*) from {table}")
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
    from streamflow_ops.store import Actor
    from streamflow_ops.maintenance.retention import run_retention
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


def _detach_drop_only(conn) -> dict:
    """Reference floor for (c): the partition's row count, then detach + drop, with no promotion proof."""
    started = time.monotonic()
    rows = conn.execute("select count(*) from bronze.transactions_0").fetchone()[0]
    with conn.transaction():
        conn.execute("alter table bronze.transactions detach partition bronze.transactions_0")
        conn.execute("drop table bronze.transactions_0")
    return {"deleted_rows": rows, "longest_transaction_s": round(time.monotonic() - started, 3)}


VARIANTS = (("b_single_delete", "bench_plain", _single_delete),
            ("a_batched", "bench_plain", _package_retention),
            ("c_partitioned", "bench_part", _package_retention),
            ("c0_detach_drop_only", "bench_part", _detach_drop_only))
LABELS = {"a_batched": f"(a) batched retention (this package, batch {BATCH_SIZE:,})",
          "b_single_delete": "(b) single DELETE (runbook)", "c_partitioned": "(c) partitioned: proof + detach + drop",
          "c0_detach_drop_only": "(c0) reference: count + detach + drop, no proof (not safe)"}


def _median(runs: list[dict]) -> dict:
    """The run with the median wall time, plus every run's wall time."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return {**ordered[(len(ordered) - 1) // 2], "wall_s_runs": [r["wall_s"] for r in runs],
            "wall_s_median": statistics.median(r["wall_s"] for r in runs)}


def _profile(layout) -> dict:
    """Rounds of every variant, interleaved so that machine load hits them alike; medians and goals."""
    runs = {key: [] for key, _, _ in VARIANTS}
    for round_no in range(ROUNDS):
        for key, template, action in VARIANTS:
            runs[key].append(_measure(layout, template, action))
            print(f"  round {round_no + 1} {key}: {runs[key][-1]}", flush=True)
    result = {key: _median(r) for key, r in runs.items()}
    a, b, c = (result[k]["wall_s_median"] for k in ("a_batched", "b_single_delete", "c_partitioned"))
    result["goals"] = {"a_over_b": a / b, "a_ok": a <= 1.5 * b,
                       "a_txn_ok": max(r["longest_transaction_s"] for r in runs["a_batched"]) <= 5,
                       "b_over_c": b / c, "c_ok": b >= 50 * c}
    return result


def _settings(layout) -> dict:
    with _admin(layout) as conn:
        return {name: conn.execute(f"show {name}").fetchone()[0] for name in DURABILITY}


def _report(results: dict) -> str:
    lines = ["# Bronze retention benchmark", "",
             f"{results['rows']:,} bronze rows over {DAYS} days (all promoted to silver); purge the oldest day "
             f"(`transaction_time < {CUTOFF}`, {results['rows'] // DAYS:,} rows). Sandbox PostgreSQL 15, "
             f"shared_buffers 256MB, autovacuum off, 2 cores shared with other work; run at {results['ran_at']}.",
             f"Each variant: fresh copy of one template, VACUUM ANALYZE, warm, CHECKPOINT; median of "
             f"{ROUNDS} interleaved runs (all runs listed). Command: `.venv/bin/python -m bench retention`.", ""]
    for name, profile in results["profiles"].items():
        settings = ", ".join(f"{k}={v}" for k, v in profile["settings"].items())
        goals = profile["goals"]
        lines += [f"## {name} ({settings})", "",
                  "| variant | rows deleted | wall median (s) | runs (s) | longest transaction (s) | WAL (MB) |",
                  "|---|---:|---:|---|---:|---:|"]
        for key, label in LABELS.items():
            r = profile[key]
            lines.append(f"| {label} | {r['deleted_rows']:,} | {r['wall_s_median']:.3f} | "
                         f"{', '.join(f'{w:.2f}' for w in r['wall_s_runs'])} | {r['longest_transaction_s']:.3f} | "
                         f"{r['wal_bytes'] / 2**20:.1f} |")
        c0 = profile["c0_detach_drop_only"]["wall_s_median"]
        b = profile["b_single_delete"]["wall_s_median"]
        lines += ["", f"- (a) / (b) = {goals['a_over_b']:.2f} (goal <= 1.5): {'MET' if goals['a_ok'] else 'NOT MET'}",
                  f"- (a) longest transaction {profile['a_batched']['longest_transaction_s']:.3f} s (goal <= 5 s): "
                  f"{'MET' if goals['a_txn_ok'] else 'NOT MET'}",
                  f"- (b) / (c) = {goals['b_over_c']:.1f}x (goal >= 50x): {'MET' if goals['c_ok'] else 'NOT MET'}; "
                  f"without the proof (c0) it would be {b / c0:.1f}x", ""]
    lines += ["Where the time goes:",
              "- (a) walks the old rows in time ranges of at most 10,000 rows; each range is one transaction "
              "deleting the rows whose id is in silver, found by a hash semi-join of the bronze and silver range "
              "scans. The guard (630,000 text-key lookups into silver) is work (b) does not do at all.",
              "- (c) must prove that every row of the partition is in silver before it drops it. That proof is a "
              "hash anti-join of the 630,000 partition rows against silver's rows in the same day; it is exact "
              "and it is O(rows). The detach + drop itself costs milliseconds (c0 includes a row count). "
              "50x faster than (b) would leave (c) about (b)/50 for the proof, far below what reading "
              "630,000 silver keys takes, so the goal is not reachable with an exact guard on this data."]
    return "\n".join(lines) + "\n"


def main() -> int:
    from datetime import datetime, timezone

    layout = Layout.from_env(default_dir=".sandbox/bench", default_base=46200)
    was_running = postgres.status(layout).split(":", 1)[1].strip().startswith("running")
    profiles = {"as running": {}} if was_running else {name: PROFILES[name] for name in reversed(PROFILES)}
    results = {"rows": ROWS, "ran_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "profiles": {}}
    try:
        for number, (name, settings) in enumerate(profiles.items()):
            if not was_running:
                postgres.stop(layout)
            postgres.start(layout, settings=settings)
            os.environ.setdefault("AIRFLOW_CONN_STREAMFLOW_POSTGRES", postgres.dsn(layout))
            if number == 0:
                print(f"preparing {ROWS:,} rows ...", flush=True)
                _prepare(layout)
            print(f"profile {name} ...", flush=True)
            results["profiles"][name] = {"settings": _settings(layout), **_profile(layout)}
        write_results("retention", results, _report(results))
    finally:
        with _admin(layout) as conn:
            for name in ("bench_plain", "bench_part", "bench_run"):
                conn.execute(f'drop database if exists "{name}" with (force)')
        if not was_running:
            postgres.stop(layout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
