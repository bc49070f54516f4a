"""Benchmark: gold_export against the gold+silver pg_dump it replaces, on the reference warehouse.

Before issue 12, a backup of `schemas: ["gold"]` was a pg_dump of gold *and silver* (a materialized
view's dump carries no rows, so the views' sources had to come along). gold_export carries gold's rows as
data instead. Both are measured on the same warehouse: the sandbox seed (9 days at 1,200 transactions/h, the most its
generator takes) with silver grown STREAMFLOW_BENCH_BACKUP_SILVER_COPIES times (default 9: about 2.3M
silver rows, a few days at production's 100 events/s), gold refreshed after: size on disk, dump time,
verification time.
Goals: gold_export >= 5x smaller and >= 5x faster than the gold+silver dump; its verification <= 1.5x its
own export time. Writes bench/results/backup.md and backup.json.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

import psycopg  # noqa: E402

from sandbox import postgres, seed  # noqa: E402
from sandbox.proc import Layout  # noqa: E402
from streamflow_ops.backup.folder import new_backup_folder  # noqa: E402
from streamflow_ops.backup.gold_export import take_export, verify_export  # noqa: E402
from streamflow_ops.backup.pg_dump import take_dump  # noqa: E402
from streamflow_ops.backup.verify import verify_dump  # noqa: E402
from streamflow_ops.config import load_config  # noqa: E402
from streamflow_ops.store import Actor  # noqa: E402

ROWS_PER_HOUR = 1200
SILVER_COPIES = int(os.environ.get("STREAMFLOW_BENCH_BACKUP_SILVER_COPIES", "9"))
GROW_SILVER = (
    """insert into silver.transactions_enriched
       select transaction_id || '-' || k, customer_id, amount, fraud_score, transaction_time, enriched_at
       from silver.transactions_enriched, generate_series(2, %(copies)s) as k""",
    """insert into silver.fraud_alerts (transaction_id, customer_id, rule_id, fraud_score, created_at)
       select transaction_id || '-' || k, customer_id, rule_id, fraud_score, created_at
       from silver.fraud_alerts, generate_series(2, %(copies)s) as k""",
)
REPEATS = int(os.environ.get("STREAMFLOW_BENCH_BACKUP_REPEATS", "3"))
DATABASE = "streamflow_bench_backup"
RESULTS = Path(__file__).parent / "results"
GOAL_SMALLER = GOAL_FASTER = 5.0
GOAL_VERIFY_RATIO = 1.5


LARGE_GOLD = """create table gold.transaction_facts as select * from silver.transactions_enriched;
alter table gold.transaction_facts add primary key (transaction_id);
analyze gold.transaction_facts"""


def _timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _measure(config, run, method: str, workdir: Path) -> dict:
    """REPEATS dumps and verifications of one method; medians (the machine is shared)."""
    dumps, verifies = [], []
    for _ in range(REPEATS):
        folder = new_backup_folder(str(workdir / method))
        if method == "gold_export":
            manifest, dump_s = _timed(take_export, config, ["gold"], folder)
            verification, verify_s = _timed(verify_export, config, folder, run)
        else:
            result, dump_s = _timed(take_dump, config, ["gold"], ["gold", "silver"], folder)
            manifest = result.manifest
            verification, verify_s = _timed(verify_dump, config, folder, run)
        assert verification["verified"]
        dumps.append(dump_s)
        verifies.append(verify_s)
        size = manifest["size_bytes"]
        rows = {f"{r['schema']}.{r['name']}": r["rows"] for r in manifest["relations"]}
        shutil.rmtree(folder)
        time.sleep(1)  # folder names have a one-second stamp
    dump_s, verify_s = _median(dumps), _median(verifies)
    return {"method": method, "dump_s": round(dump_s, 3), "verify_s": round(verify_s, 3),
            "verify_ratio": round(verify_s / dump_s, 2), "size_bytes": size, "rows": rows,
            "dump_runs_s": [round(d, 3) for d in dumps], "verify_runs_s": [round(v, 3) for v in verifies]}


def main() -> dict:
    layout = Layout.from_env()
    was_running = postgres.status(layout).split(":", 1)[1].strip().startswith("running")
    postgres.start(layout)
    workdir = Path(tempfile.mkdtemp(prefix="streamflow-bench-backup-"))
    run = Actor("bench", "bench_backup", "backup")
    try:
        with psycopg.connect(postgres.dsn(layout, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{DATABASE}" with (force)')
            conn.execute(f'create database "{DATABASE}"')
        with psycopg.connect(postgres.dsn(layout, DATABASE), autocommit=True) as conn:
            started = time.perf_counter()
            seed.seed_warehouse(conn, 9, ROWS_PER_HOUR)
            for statement in GROW_SILVER:
                conn.execute(statement, {"copies": SILVER_COPIES})
            seed.refresh_gold(conn)
            conn.execute("analyze")
            load_s = time.perf_counter() - started
            silver_rows = conn.execute("select count(*) from silver.transactions_enriched").fetchone()[0]
            sizes = dict(conn.execute(
                "select n.nspname, sum(pg_total_relation_size(c.oid))::bigint from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('gold', 'silver') "
                "and c.relkind in ('r', 'm') group by 1").fetchall())
        os.environ["AIRFLOW_CONN_STREAMFLOW_POSTGRES"] = postgres.dsn(layout, DATABASE)
        config = load_config({"backup": {"folder": str(workdir), "dump_format": "custom"}})
        with_silver = _measure(config, run, "pg_dump", workdir)
        export = _measure(config, run, "gold_export", workdir)
        # The same export when gold is not tiny: a gold fact table as large as silver (fixed costs such as
        # CREATE DATABASE of the scratch database no longer dominate the verification).
        with psycopg.connect(postgres.dsn(layout, DATABASE), autocommit=True) as conn:
            conn.execute(LARGE_GOLD)
            large_rows = conn.execute("select count(*) from gold.transaction_facts").fetchone()[0]
        large = _measure(config, run, "gold_export", workdir)
        with psycopg.connect(postgres.dsn(layout, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{DATABASE}" with (force)')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not was_running:
            postgres.stop(layout)
    smaller = with_silver["size_bytes"] / export["size_bytes"]
    faster = with_silver["dump_s"] / export["dump_s"]
    report = {
        "silver_rows": silver_rows, "server_bytes": sizes, "seed_s": round(load_s, 1), "repeats": REPEATS,
        "runs": [with_silver, export], "smaller_x": round(smaller, 1), "faster_x": round(faster, 1),
        "large_gold": {"rows": large_rows, **large},
        "goals": {"smaller_x": GOAL_SMALLER, "faster_x": GOAL_FASTER, "verify_ratio": GOAL_VERIFY_RATIO},
        "goal_met": {"smaller": smaller >= GOAL_SMALLER, "faster": faster >= GOAL_FASTER,
                     "verify": export["verify_ratio"] <= GOAL_VERIFY_RATIO},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "note": "sandbox PostgreSQL runs with fsync=off and synchronous_commit=off; the machine is shared with "
                "other work, so each figure is the median of the repeats",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backup.json").write_text(json.dumps(report, indent=2))
    met = report["goal_met"]
    lines = [
        "# Backup benchmark: gold_export vs the gold+silver pg_dump", "",
        f"Reference warehouse (sandbox seed, silver grown {SILVER_COPIES}x, gold refreshed): {silver_rows:,} silver rows "
        f"({sizes.get('silver', 0) / 1e6:.0f} MB on the server), four gold materialized views "
        f"({sizes.get('gold', 0) / 1e6:.1f} MB); {report['machine']}. Median of {REPEATS} runs.", "",
        "| backup of `schemas: [\"gold\"]` | dump s | verify s | verify / dump | size MB |", "|---|---|---|---|---|",
        *(f"| {'pg_dump gold + silver (before)' if r['method'] == 'pg_dump' else 'gold_export'} | {r['dump_s']} | "
          f"{r['verify_s']} | {r['verify_ratio']} | {r['size_bytes'] / 1e6:.3f} |" for r in report["runs"]), "",
        f"- gold_export is {smaller:.0f}x smaller (goal >= {GOAL_SMALLER:g}x: {'met' if met['smaller'] else 'NOT met'}) "
        f"and {faster:.0f}x faster to take (goal >= {GOAL_FASTER:g}x: {'met' if met['faster'] else 'NOT met'}).",
        f"- its verification takes {export['verify_ratio']}x its own export time (goal <= {GOAL_VERIFY_RATIO:g}x: "
        f"{'met' if met['verify'] else 'NOT met'}).", "",
        f"gold_export when gold is large (a fact table of {large_rows:,} rows added to gold): export "
        f"{large['dump_s']} s, verify {large['verify_s']} s ({large['verify_ratio']}x), "
        f"{large['size_bytes'] / 1e6:.0f} MB.",
        "", "What each verification does: pg_dump: sha256 + pg_restore into a scratch database + exact table counts + "
        "REFRESH of every materialized view + object counts + drop. gold_export: sha256 per file + restore of the "
        "files into an empty scratch database + count and checksum of every relation + drop.",
        "", f"Note: {report['note']}.", "",
    ]
    (RESULTS / "backup.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
