"""Bronze retention (SPEC): delete promoted bronze rows strictly older than reference - retention_days.

Rows that never reached silver are kept and reported: Kafka keeps 3 days, so bronze is their last
copy. Whole range partitions past the cutoff whose every row is proven promoted are detached and
dropped; everything else goes in bounded time-range batches, each its own short transaction
(lock_timeout, statement_timeout), so a killed run resumes where it stopped and never deletes more
than a complete run would. A real run does not pre-count: the batches count what they delete and
what they keep. A dry run counts exactly and changes nothing.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import psycopg

from streamflow_ops.config import WarehouseConfig
from streamflow_ops.results import describe_error
from streamflow_ops.store import Actor, audited, note_progress
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
    schema: str  # the partition's own schema, from the catalog (not necessarily the parent's)
    lower: int | None  # inclusive lower bound; None for DEFAULT, MINVALUE or a non-integer key
    upper: int | None  # exclusive upper bound; None for DEFAULT, MAXVALUE or a non-integer key
    leaf: bool


def _bound(value: str) -> int | None:
    try:
        return int(value.strip().strip("'"))
    except ValueError:  # MINVALUE/MAXVALUE, or a key that is not epoch seconds
        return None


def parse_bounds(bound: str) -> tuple[int | None, int | None]:
    """Pure: (inclusive lower, exclusive upper) of an integer range partition; None where it has none."""
    match = _RANGE.match(bound or "")
    if not match:
        return None, None
    return _bound(match["lo"]), _bound(match["hi"])


def droppable(partitions: list[Partition], cutoff: int) -> list[Partition]:
    """Pure: partitions whose every possible row is strictly older than the cutoff."""
    return [p for p in partitions if p.leaf and p.upper is not None and p.upper <= cutoff]


def next_range_end(lo: int, row_time: int | None, cutoff: int) -> int:
    """Pure: the exclusive end of the batch starting at lo, given the time of the row just past the batch.

    No such row: the batch runs to the cutoff. That row at lo itself (more than batch_size rows share
    one second): the batch is that one second, the smallest range that still makes progress.
    """
    if row_time is None:
        return cutoff
    return max(row_time, lo + 1)


@dataclass
class RetentionReport:
    cutoff: int
    dry_run: bool
    deleted_rows: int = 0  # rows gone (or, in a dry run, that would go), partitions included
    dropped_partitions: list[dict] = field(default_factory=list)
    batches: int = 0  # committed delete transactions (range batches and sweeps)
    longest_batch_s: float = 0.0
    unpromoted_kept: int = 0
    oldest_unpromoted: dict | None = None
    partitioned: bool = False
    skipped_partitions: list[dict] = field(default_factory=list)  # could not be proven or detached in time

    @property
    def summary(self) -> str:
        kept = f"{self.unpromoted_kept} unpromoted rows older than cutoff kept"
        parts = f", {len(self.dropped_partitions)} whole partitions" if self.dropped_partitions else ""
        if self.dry_run:
            return f"DRY RUN: would delete {self.deleted_rows} rows{parts} ({kept})"
        return f"deleted {self.deleted_rows} rows{parts} in {self.batches} batches ({kept})"

    @property
    def warning(self) -> str | None:
        warnings = [f"partition {p['partition']} skipped ({p['reason']}): its promoted rows went row by row"
                    for p in self.skipped_partitions]
        if self.unpromoted_kept:
            oldest = self.oldest_unpromoted or {}
            warnings.append(f"{self.unpromoted_kept} bronze rows older than the cutoff never reached silver and were "
                            f"kept (bronze is their last copy); oldest: {oldest.get('id')} at {oldest.get('time')}")
        return "; ".join(warnings) or None

    def keep(self, unpromoted: int, oldest_id, oldest_time: int | None) -> None:
        """Add unpromoted rows; the first oldest named wins (ranges are walked oldest first)."""
        if oldest_time is not None and self.oldest_unpromoted is None:
            self.oldest_unpromoted = {"id": oldest_id, "epoch": oldest_time,
                                      "time": datetime.fromtimestamp(oldest_time, timezone.utc).isoformat()}
        self.unpromoted_kept += unpromoted

    def to_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary, "warning": self.warning,
                "cutoff_utc": datetime.fromtimestamp(self.cutoff, timezone.utc).isoformat()}


def _names(cfg: WarehouseConfig) -> dict:
    return {"bronze": (cfg.bronze_schema, cfg.bronze_table), "silver": (cfg.silver_schema, cfg.silver_table),
            "id": cfg.id_column, "time": cfg.time_column}


def list_partitions(conn, cfg: WarehouseConfig) -> list[Partition]:
    rows = conn.execute(load_sql("retention_partitions.sql"),
                        {"schema": cfg.bronze_schema, "table": cfg.bronze_table}).fetchall()
    return [Partition(relation, name, schema, *parse_bounds(bound), leaf=kind == "r")
            for schema, name, relation, kind, bound in rows]


def run_retention(conn, cfg: WarehouseConfig, actor: Actor, *, cutoff: int, batch_size: int, dry_run: bool,
                  on_batch: Callable[[int, int, float], None] | None = None) -> RetentionReport:
    """Drop whole proven partitions, then delete the rest in batches (a dry run only counts).

    `conn` is an autocommit connection whose lock_timeout/statement_timeout bound every transaction.
    on_batch(batch_number, rows, seconds) is called after each committed delete transaction.
    """
    partitions = list_partitions(conn, cfg)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run, partitioned=bool(partitions))
    for part in droppable(partitions, cutoff):
        try:
            rows = _drop_partition(conn, cfg, actor, part, cutoff, dry_run)
        except PartitionSkipped as exc:
            report.skipped_partitions.append({"partition": part.relation, "reason": str(exc)})
            continue
        if rows is not None:
            report.dropped_partitions.append({"partition": part.relation, "rows": rows})
    whole_rows = sum(p["rows"] for p in report.dropped_partitions)
    with audited(conn, actor, "bronze_retention.delete", f"{cfg.bronze_schema}.{cfg.bronze_table}",
                 dry_run) as record:
        record.details.update(cutoff=cutoff, batch_size=batch_size)
        if dry_run:
            promoted, report.unpromoted_kept = conn.execute(load_sql("retention_counts.sql", **_names(cfg)),
                                                            {"cutoff": cutoff}).fetchone()
            if report.unpromoted_kept:
                row = conn.execute(load_sql("retention_oldest_unpromoted.sql", **_names(cfg)),
                                   {"cutoff": cutoff}).fetchone()
                report.keep(0, *row)  # the count is already in; this only names the oldest
            deleted = promoted - whole_rows  # dropped partitions hold only promoted rows: all would go whole
            record.details["would_delete"] = deleted
        else:
            deleted = _delete_batches(conn, cfg, cutoff, batch_size, report, record, actor.ops_schema, on_batch)
        record.rows_affected = 0 if dry_run else deleted
        record.details.update(batches=report.batches, longest_batch_s=round(report.longest_batch_s, 3),
                              unpromoted_kept=report.unpromoted_kept, oldest_unpromoted=report.oldest_unpromoted)
    report.deleted_rows = whole_rows + deleted
    return report


class PartitionSkipped(Exception):
    """A partition that could not be proven or detached within its timeouts: skipped, retention goes on."""


def _drop_partition(conn, cfg: WarehouseConfig, actor: Actor, part: Partition, cutoff: int,
                    dry_run: bool) -> int | None:
    """Detach and drop the partition if every row is proven in silver; its row count, or None if kept.

    A first proof takes no lock, so a partition with unpromoted rows costs no exclusive lock at all. The
    drop's transaction then locks the parent and the partition in the order an insert takes them (parent
    first: no deadlock with a late writer, who waits), proves again under those locks, so a late row cannot
    slip in between proof and drop, then detaches and drops. DETACH ... CONCURRENTLY would lock less, but
    PostgreSQL refuses it where the parent has a DEFAULT partition and it cannot run in the proof's
    transaction. A lock or statement timeout skips this partition (raises PartitionSkipped, audited).
    """
    names = {**_names(cfg), "partition": (part.schema, part.name)}  # the catalog's names, never rebuilt
    bounds = {"lower": MIN_BIGINT if part.lower is None else part.lower, "upper": part.upper}
    proof = load_sql("retention_partition_proof.sql", **names)
    with audited(conn, actor, "bronze_retention.drop_partition", f"{part.schema}.{part.name}",
                 dry_run) as record:
        record.details.update(cutoff=cutoff, upper_bound=part.upper)
        try:
            rows, unproven = conn.execute(proof, bounds).fetchone()
            if not unproven and not dry_run:
                with conn.transaction():
                    conn.execute(load_sql("retention_lock_partition.sql", **names))
                    rows, unproven = conn.execute(proof, bounds).fetchone()
                    if not unproven:
                        conn.execute(load_sql("retention_drop_partition.sql", parent=names["bronze"],
                                              partition=names["partition"]))
                        record.rows_affected = rows
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            timed_out = describe_error(exc, 200)
            record.outcome = "skipped"
            record.details["kept_because"] = f"not proven or detached within its timeouts: {timed_out}"
        else:
            timed_out = None
            record.details["rows"] = rows
            if unproven:
                record.outcome = "skipped"
                record.details["kept_because"] = f"{unproven} rows not proven in silver: deleted row by row"
    if timed_out:
        raise PartitionSkipped(timed_out)
    return None if unproven else rows


def _delete_batches(conn, cfg: WarehouseConfig, cutoff: int, batch_size: int, report: RetentionReport,
                    record, ops_schema: str, on_batch) -> int:
    """Walk [MIN, cutoff) in ranges of at most batch_size rows; sweep a range again only if rows stayed."""
    names = _names(cfg)
    range_end = load_sql("retention_range_end.sql", **names)
    delete_range = load_sql("retention_delete_range.sql", **names)
    sweep_range = load_sql("retention_sweep_range.sql", **names)
    lo, deleted = MIN_BIGINT, 0

    def commit(statement, bounds: dict) -> tuple:
        nonlocal deleted
        started = time.monotonic()
        with conn.transaction():
            row = conn.execute(statement, bounds).fetchone()
            record.rows_affected = deleted + row[0]  # committed with the delete: a killed run's row is exact
            note_progress(conn, record, ops_schema)
        elapsed = time.monotonic() - started
        deleted += row[0]
        report.batches += 1
        report.longest_batch_s = max(report.longest_batch_s, elapsed)
        if on_batch is not None:
            on_batch(report.batches, row[0], elapsed)
        return row

    while lo < cutoff:
        after = conn.execute(range_end, {"lo": lo, "cutoff": cutoff, "batch_size": batch_size}).fetchone()
        bounds = {"lo": lo, "hi": next_range_end(lo, after and after[0], cutoff)}
        gone, in_range = commit(delete_range, bounds)
        if in_range > gone:
            report.keep(*commit(sweep_range, bounds)[1:])
        lo = bounds["hi"]
    return deleted
