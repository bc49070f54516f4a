"""Put a real warehouse into the states the fault matrix needs (live pipeline, backups, bloat, spikes)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import psycopg

from sandbox import seed
from streamflow_ops.store import AuditRecord, ensure_ops_schema, write_audit


def make_live(dsn: str) -> None:
    """Rows up to now, as if the pipeline were running."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        seed.top_up(conn)


def record_backup(dsn: str, hours_ago: float) -> None:
    """An audit row as postgres_backup writes it after a verified backup."""
    finished = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_ops_schema(conn)
        write_audit(conn, AuditRecord("postgres_backup", "manual__test", "backup", "backup", "gold", dry_run=False,
                                      started_at=finished - timedelta(minutes=3), finished_at=finished,
                                      outcome="verified", details={"method": "pg_dump", "location": "/tmp/x.dump",
                                                                  "size_bytes": 1024, "duration_s": 180}))
    record_drill(dsn, "pg_dump", hours_ago=hours_ago)


def record_drill(dsn: str, method: str, hours_ago: float) -> None:
    """A passed restore_drill row for `method` (postgres.restore_drill_age), as last Sunday's drill leaves it:
    a healthy platform has rehearsed the restore of the backups it keeps."""
    finished = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_ops_schema(conn)
        write_audit(conn, AuditRecord("restore_drill", "scheduled__test", "drill", "restore_drill", method,
                                      dry_run=False, started_at=finished - timedelta(minutes=5), finished_at=finished,
                                      outcome="passed", details={"method": method}))


def record_window(dsn: str, hours_ago: float) -> None:
    """Audit rows as last night's maintenance_tasks leaves them for its other steps (maintenance.last_success)."""
    finished = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_ops_schema(conn)
        for task, action, target in (("bronze_retention", "bronze_retention.delete", "bronze.transactions"),
                                     ("vacuum", "vacuum_analyze", "silver.transactions_enriched"),
                                     ("gold_refresh", "gold_refresh_concurrently", "gold.daily_fraud_summary")):
            write_audit(conn, AuditRecord("maintenance_tasks", "scheduled__test", task, action, target, dry_run=False,
                                          started_at=finished - timedelta(minutes=5), finished_at=finished,
                                          outcome="success"))


def forget_backups(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from ops.maintenance_audit where action = 'backup'")


def bloat(dsn: str, table: str = "silver.bloated", rows: int = 120_000) -> None:
    """rows dead tuples in a new table (the sandbox runs without autovacuum), visible in pg_stat."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"create table {table} as select g as id from generate_series(1, {rows}) g")
        conn.execute(f"delete from {table}")
        conn.execute("select pg_stat_force_next_flush()")
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute("select n_dead_tup from pg_stat_user_tables where schemaname || '.' || relname = %s",
                           (table,)).fetchone()[0] < rows and time.monotonic() < deadline:
            time.sleep(0.2)


def stale_silver(dsn: str, minutes: int) -> None:
    """Silver stopped receiving rows `minutes` ago."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from silver.transactions_enriched where transaction_time > "
                     "extract(epoch from now() - make_interval(mins => %s))", (minutes,))


def fraud_spike(dsn: str, percent: int) -> None:
    """About `percent` % of the last hour's silver rows (plus the seed's 2.5 %) score as fraud."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("update silver.transactions_enriched set fraud_score = 0.95 "
                     "where transaction_time >= extract(epoch from now() - interval '1 hour') "
                     "and abs(hashtext(transaction_id)) %% 100 < %s", (percent,))
