"""Targeted vacuum: the tables that need it (dead tuples, dead ratio, transaction-ID age) or the ones asked for.

VACUUM cannot run in a transaction block, so the connection is in autocommit. FULL rewrites the table
under an ACCESS EXCLUSIVE lock: only when asked for explicitly, and always under lock_timeout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg import sql

from streamflow_ops.config import VacuumConfig
from streamflow_ops.store import Actor, audited
from streamflow_ops.params import ParamError
from streamflow_ops.sqlfiles import load_sql


@dataclass(frozen=True)
class TableStats:
    schema: str
    table: str
    live: int
    dead: int
    xid_age: int

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def dead_ratio(self) -> float:
        total = self.live + self.dead
        return self.dead / total if total else 0.0


@dataclass(frozen=True)
class VacuumTarget:
    schema: str
    table: str
    reasons: tuple[str, ...]
    freeze: bool
    full: bool

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def options(self) -> list[str]:
        return [opt for opt, on in (("full", self.full), ("freeze", self.freeze), ("analyze", True)) if on]


def read_stats(conn, schemas: list[str]) -> dict[tuple[str, str], TableStats]:
    rows = conn.execute(load_sql("vacuum_table_stats.sql"), {"schemas": list(schemas)}).fetchall()
    return {(s, t): TableStats(s, t, live, dead, age) for s, t, live, dead, age in rows}


def _reasons(stats: TableStats, cfg: VacuumConfig) -> list[str]:
    reasons = []
    if stats.dead > cfg.dead_tuples_threshold:
        reasons.append(f"{stats.dead} dead tuples > {cfg.dead_tuples_threshold}")
    elif stats.dead >= cfg.min_dead_tuples_for_ratio and stats.dead_ratio > cfg.dead_ratio_threshold:
        reasons.append(f"dead ratio {stats.dead_ratio:.0%} > {cfg.dead_ratio_threshold:.0%}")
    if stats.xid_age > cfg.freeze_age_threshold:
        reasons.append(f"age(relfrozenxid) {stats.xid_age} > {cfg.freeze_age_threshold}")
    return reasons


def plan(stats: dict[tuple[str, str], TableStats], cfg: VacuumConfig, requested: list[tuple[str, str]],
         full: bool) -> list[VacuumTarget]:
    """Pure: which tables to vacuum and how. Requested tables must exist; FULL applies only to them."""
    missing = [f"{s}.{t}" for s, t in requested if (s, t) not in stats]
    if missing:
        raise ParamError("tables", f"no such table in the configured schemas: {', '.join(missing)}")
    targets = []
    for key in requested or sorted(stats):
        st = stats[key]
        reasons = _reasons(st, cfg)
        if requested:
            reasons.insert(0, "requested")
        if reasons:
            targets.append(VacuumTarget(st.schema, st.table, tuple(reasons),
                                        freeze=st.xid_age > cfg.freeze_age_threshold, full=full and bool(requested)))
    return targets


def run_vacuum(conn, cfg: VacuumConfig, actor: Actor, targets: list[VacuumTarget], dry_run: bool) -> list[dict]:
    """VACUUM each target (autocommit connection); dead tuples before and after, per table."""
    outcomes = []
    for target in targets:
        before = read_stats(conn, [target.schema])[(target.schema, target.table)].dead
        action = "vacuum_" + "_".join(target.options)
        with audited(conn, actor, action, target.name, dry_run) as record:
            record.details.update(reasons=list(target.reasons), dead_before=before)
            started = time.monotonic()
            if not dry_run:
                options = sql.SQL(", ").join(sql.SQL(opt) for opt in target.options)
                conn.execute(load_sql("vacuum_table.sql", options=options, table=(target.schema, target.table)))
            seconds = round(time.monotonic() - started, 3)
            after = before if dry_run else read_stats(conn, [target.schema])[(target.schema, target.table)].dead
            record.rows_affected = 0 if dry_run else max(before - after, 0)
            record.details.update(dead_after=after, seconds=seconds, options=target.options)
        outcomes.append({"table": target.name, "options": target.options, "reasons": list(target.reasons),
                         "dead_before": before, "dead_after": after, "seconds": seconds})
    return outcomes
