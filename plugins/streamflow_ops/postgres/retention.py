"""Bronze retention (SPEC): delete promoted bronze rows strictly older than reference - retention_days.

Rows that never reached silver are kept and reported: Kafka keeps 3 days, so bronze is their last
copy. Whole range partitions past the cutoff and fully promoted are detached and dropped; everything
else goes in bounded batches, each its own short transaction (lock_timeout, statement_timeout), so a
killed run resumes where it stopped and never deletes more than a complete run would.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from streamflow_ops.config import WarehouseConfig
from streamflow_ops.maintenance.audit import Actor, audited
from streamflow_ops.sqlfiles import load_sql

_RANGE = re.compile(r"^FOR VALUES FROM \((?P<lo>[^)]*)\) TO \((?P<hi>[^)]*)\)$")
MIN_BIGINT = -(2**63)


def cutoff_epoch(reference: datetime, retention_days: int) -> int:
    """Epoch seconds such that `transaction_time < cutoff` means strictly older than the window.

    Integer times t satisfy t < ref - days exactly when t < ceil(ref - days).
    """
    return math.ceil((reference - timedelta(days=retention_days)).timestamp())


@dataclass(frozen=True)
class Partition:
    relation: str  # schema-qualified, as regclass prints it
    name: str
    upper: int | None  # exclusive upper bound; None for DEFAULT, MAXVALUE or a non-integer key
    leaf: bool


def parse_upper_bound(bound: str) -> int | None:
    """Pure: the exclusive upper bound of an integer range partition, or None if it has none."""
    match = _RANGE.match(bound or "")
    if not match:
        return None
    try:
        return int(match["hi"].strip().strip("'"))
    except ValueError:  # MAXVALUE, or a key that is not epoch seconds
        return None


def droppable(partitions: list[Partition], cutoff: int) -> list[Partition]:
    """Pure: partitions whose every possible row is strictly older than the cutoff."""
    return [p for p in partitions if p.leaf and p.upper is not None and p.upper <= cutoff]


@dataclass
class RetentionReport:
    cutoff: int
    dry_run: bool
    deleted_rows: int = 0  # rows gone (or, in a dry run, that would go), partitions included
    dropped_partitions: list[dict] = field(default_factory=list)
    batches: int = 0
    longest_batch_s: float = 0.0
    unpromoted_kept: int = 0
    oldest_unpromoted: dict | None = None
    partitioned: bool = False

    @property
    def summary(self) -> str:
        kept = f"{self.unpromoted_kept} unpromoted rows older than cutoff kept"
        parts = f", {len(self.dropped_partitions)} whole partitions" if self.dropped_partitions else ""
        if self.dry_run:
            return f"DRY RUN: would delete {self.deleted_rows} rows{parts} ({kept})"
        return f"deleted {self.deleted_rows} rows{parts} in {self.batches} batches ({kept})"

    @property
    def warning(self) -> str | None:
        if not self.unpromoted_kept:
            return None
        oldest = self.oldest_unpromoted or {}
        return (f"{self.unpromoted_kept} bronze rows older than the cutoff never reached silver and were kept "
                f"(bronze is their last copy); oldest: {oldest.get('id')} at {oldest.get('time')}")

    def to_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary, "warning": self.warning,
                "cutoff_utc": datetime.fromtimestamp(self.cutoff, timezone.utc).isoformat()}


def _names(cfg: WarehouseConfig) -> dict:
    return {"bronze": (cfg.bronze_schema, cfg.bronze_table), "silver": (cfg.silver_schema, cfg.silver_table),
            "id": cfg.id_column, "time": cfg.time_column}


def list_partitions(conn, cfg: WarehouseConfig) -> list[Partition]:
    rows = conn.execute(load_sql("retention_partitions.sql"),
                        {"schema": cfg.bronze_schema, "table": cfg.bronze_table}).fetchall()
    return [Partition(relation=rel, name=name, upper=parse_upper_bound(bound), leaf=kind == "r")
            for name, rel, kind, bound in rows]


def _counts(conn, cfg: WarehouseConfig, cutoff: int) -> dict[str, tuple[int, int]]:
    """relation -> (promoted, unpromoted) rows older than the cutoff, in one pass."""
    rows = conn.execute(load_sql("retention_counts.sql", **_names(cfg)), {"cutoff": cutoff}).fetchall()
    return {rel: (promoted, unpromoted) for rel, promoted, unpromoted, _ in rows}


def _oldest_unpromoted(conn, cfg: WarehouseConfig, cutoff: int) -> dict | None:
    row = conn.execute(load_sql("retention_oldest_unpromoted.sql", **_names(cfg)), {"cutoff": cutoff}).fetchone()
    if row is None:
        return None
    return {"id": row[0], "time": datetime.fromtimestamp(row[1], timezone.utc).isoformat(), "epoch": row[1]}


def run_retention(conn, cfg: WarehouseConfig, actor: Actor, *, cutoff: int, batch_size: int, dry_run: bool,
                  on_batch: Callable[[int, int, float], None] | None = None) -> RetentionReport:
    """Count, then (unless dry_run) drop whole partitions and delete the rest in batches.

    `conn` is an autocommit connection whose lock_timeout/statement_timeout bound every transaction.
    on_batch(batch_number, rows, seconds) is called after each committed batch.
    """
    partitions = list_partitions(conn, cfg)
    counts = _counts(conn, cfg, cutoff)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run, partitioned=bool(partitions),
                             unpromoted_kept=sum(u for _, u in counts.values()))
    if report.unpromoted_kept:
        report.oldest_unpromoted = _oldest_unpromoted(conn, cfg, cutoff)
    promoted_total = sum(p for p, _ in counts.values())
    whole = [(p, counts.get(p.relation, (0, 0))[0]) for p in droppable(partitions, cutoff)
             if counts.get(p.relation, (0, 0))[1] == 0]
    parent = (cfg.bronze_schema, cfg.bronze_table)
    for part, rows in whole:
        with audited(conn, actor, "bronze_retention.drop_partition", f"{cfg.bronze_schema}.{part.name}",
                     dry_run) as record:
            record.details.update(cutoff=cutoff, upper_bound=part.upper, rows=rows)
            if not dry_run:
                with conn.transaction():
                    conn.execute(load_sql("retention_drop_partition.sql", parent=parent,
                                          partition=(cfg.bronze_schema, part.name)))
                record.rows_affected = rows
        report.dropped_partitions.append({"partition": part.relation, "rows": rows})
    remaining = promoted_total - sum(rows for _, rows in whole)
    with audited(conn, actor, "bronze_retention.delete", f"{cfg.bronze_schema}.{cfg.bronze_table}",
                 dry_run) as record:
        record.details.update(cutoff=cutoff, batch_size=batch_size, would_delete=remaining,
                              unpromoted_kept=report.unpromoted_kept, oldest_unpromoted=report.oldest_unpromoted)
        deleted = 0 if dry_run else _delete_batches(conn, cfg, cutoff, batch_size, report, record, on_batch)
        record.rows_affected = deleted
        record.details.update(batches=report.batches, longest_batch_s=round(report.longest_batch_s, 3))
    report.deleted_rows = sum(rows for _, rows in whole) + (remaining if dry_run else deleted)
    return report


def _delete_batches(conn, cfg: WarehouseConfig, cutoff: int, batch_size: int, report: RetentionReport,
                    record, on_batch) -> int:
    statement = load_sql("retention_delete_batch.sql", **_names(cfg))
    from_time, deleted = MIN_BIGINT, 0
    while True:
        started = time.monotonic()
        with conn.transaction():
            rows, last_time = conn.execute(statement, {"cutoff": cutoff, "from_time": from_time,
                                                       "batch_size": batch_size}).fetchone()
        elapsed = time.monotonic() - started
        if rows == 0:
            return deleted
        deleted += rows
        record.rows_affected = deleted  # a failure later still audits what is already gone
        report.batches += 1
        report.longest_batch_s = max(report.longest_batch_s, elapsed)
        from_time = last_time
        if on_batch is not None:
            on_batch(report.batches, rows, elapsed)
