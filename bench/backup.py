"""Benchmark: pg_dump backup and its restore verification on a gold schema of >= 2 million rows.

Custom format (single pg_dump process) vs directory format with --jobs 2; what the verification
(checksum + pg_restore into a scratch database + row/object counts) costs next to the dump.
Goal: verification <= 1.5x the dump's own time. Writes bench/results/backup.md and backup.json.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

ROWS = int(os.environ.get("STREAMFLOW_BENCH_BACKUP_ROWS", "2000000"))
DATABASE = "streamflow_bench_backup"
RESULTS = Path(__file__).parent / "results"
GOAL = 1.5

GOLD = """
drop schema if exists gold cascade;
create schema gold;
create table gold.transaction_facts (
    transaction_id   text primary key,
    customer_id      text not null,
    merchant_id      text not null,
    amount           numeric(12, 2) not null,
    fraud_score      double precision not null,
    transaction_time bigint not null,
    day              date not null
);
insert into gold.transaction_facts
select 'tx-' || g, 'c-' || mod(g, 50000), 'm-' || mod(g, 2000), round((random() * 500)::numeric, 2), random(),
       1767225600 + g * 2, date '2026-01-01' + (g * 2 / 86400)
from generate_series(1, {rows}) as g;
create index transaction_facts_day on gold.transaction_facts (day);
create materialized view gold.daily_summary as
select day, count(*) as transactions, count(*) filter (where fraud_score >= 0.7) as fraudulent, sum(amount) as total
from gold.transaction_facts group by day;
create unique index daily_summary_day on gold.daily_summary (day);
analyze gold.transaction_facts;
"""


def _timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def main() -> dict:
    import sys

    import psycopg

    repo = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(repo / "plugins"), str(repo)]
    from sandbox import postgres
    from sandbox.proc import Layout

    from streamflow_ops.backup.pg_dump import new_backup_folder, take_dump
    from streamflow_ops.backup.verify import verify_dump
    from streamflow_ops.config import load_config

    layout = Layout.from_env()
    was_running = postgres.status(layout).split(":", 1)[1].strip().startswith("running")
    postgres.start(layout)
    workdir = Path(tempfile.mkdtemp(prefix="streamflow-bench-backup-"))
    try:
        with psycopg.connect(postgres.dsn(layout, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{DATABASE}" with (force)')
            conn.execute(f'create database "{DATABASE}"')
        with psycopg.connect(postgres.dsn(layout, DATABASE), autocommit=True) as conn:
            _, load_s = _timed(conn.execute, GOLD.format(rows=int(ROWS)))
            rows = conn.execute("select count(*) from gold.transaction_facts").fetchone()[0]
            size = int(conn.execute("select sum(pg_total_relation_size(c.oid)) from pg_class c "
                                "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'gold'").fetchone()[0])
        os.environ["AIRFLOW_CONN_STREAMFLOW_POSTGRES"] = postgres.dsn(layout, DATABASE)
        runs = []
        for fmt in ("custom", "directory"):
            config = load_config({"backup": {"folder": str(workdir / fmt), "dump_format": fmt, "jobs": 2}})
            folder = new_backup_folder(config.backup.folder)
            result, dump_s = _timed(take_dump, config, ["gold"], ["gold"], folder)
            verification, verify_s = _timed(verify_dump, config, folder)
            runs.append({"format": fmt, "jobs": result.manifest["jobs"], "dump_s": round(dump_s, 2),
                         "verify_s": round(verify_s, 2), "ratio": round(verify_s / dump_s, 2),
                         "dump_bytes": result.manifest["size_bytes"], "rows_verified": verification["rows"]})
            shutil.rmtree(folder)
        with psycopg.connect(postgres.dsn(layout, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{DATABASE}" with (force)')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not was_running:
            postgres.stop(layout)
    report = {"rows": rows, "schema_bytes": size, "load_s": round(load_s, 1), "goal_ratio": GOAL, "runs": runs,
              "goal_met": all(r["ratio"] <= GOAL for r in runs),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "note": "sandbox PostgreSQL runs with fsync=off and synchronous_commit=off: restores are faster "
                      "there than on a production volume"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backup.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# Backup benchmark (pg_dump + restore verification)", "",
        f"gold schema: {rows:,} rows in gold.transaction_facts (+ a materialized view, 2 indexes), "
        f"{size / 1e6:.0f} MB on the server; {report['machine']}.", "",
        "| format | jobs | dump s | verify s | verify / dump | dump MB |", "|---|---|---|---|---|---|",
        *(f"| {r['format']} | {r['jobs']} | {r['dump_s']} | {r['verify_s']} | {r['ratio']} | "
          f"{r['dump_bytes'] / 1e6:.0f} |" for r in runs), "",
        f"Goal: verification <= {GOAL}x the dump's time: {'met' if report['goal_met'] else 'NOT met'}.",
        "Verification = sha256 of the dump + pg_restore --jobs 2 into a scratch database + exact row and "
        "object counts + drop of the scratch database.", "", f"Note: {report['note']}.", "",
    ]
    (RESULTS / "backup.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
