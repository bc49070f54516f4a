"""Seed the reference warehouse with synthetic bronze/silver/gold data relative to now."""
from __future__ import annotations

import os
import time
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"
DAY = 86400


def rows_per_hour() -> int:
    return int(os.environ.get("STREAMFLOW_SEED_ROWS_PER_HOUR", "600"))


def seed_warehouse(conn, days: int = 9, per_hour: int | None = None, now: float | None = None) -> int:
    """Create the reference schema and fill `days` of history up to now. Returns bronze rows added."""
    now = int(now if now is not None else time.time())
    step = 3600 / (per_hour or rows_per_hour())
    conn.execute((SQL_DIR / "warehouse_schema.sql").read_text())
    added = _insert(conn, start=now - days * DAY, end=now - 10, step=step, now=now)
    refresh_gold(conn)
    return added


def top_up(conn, now: float | None = None, per_hour: int | None = None) -> int:
    """Add rows from the newest existing one up to now, so the pipeline looks live again."""
    now = int(now if now is not None else time.time())
    step = 3600 / (per_hour or rows_per_hour())
    newest = conn.execute("select coalesce(max(transaction_time), 0) from bronze.transactions").fetchone()[0]
    return _insert(conn, start=max(newest + step, now - DAY), end=now, step=step, now=now)


def _insert(conn, start: float, end: float, step: float, now: int) -> int:
    before = conn.execute("select count(*) from bronze.transactions").fetchone()[0]
    conn.execute((SQL_DIR / "seed_transactions.sql").read_text(),
                 {"start": start, "end": end, "step": step, "unpromoted_before": now - 7 * DAY})
    return conn.execute("select count(*) from bronze.transactions").fetchone()[0] - before


def refresh_gold(conn) -> None:
    for view in ("daily_fraud_summary", "customer_risk_profile", "rule_effectiveness", "fraud_trend_7d"):
        conn.execute(f"refresh materialized view gold.{view}")
