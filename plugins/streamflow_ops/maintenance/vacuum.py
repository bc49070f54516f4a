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
from streamflow_ops.sqlfiles import dict_rows, load_sql
from streamflow_ops.timeutil import human_duration


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
            held_back_by = xmin_holder(conn) if not dry_run and left_in_place(before, after) else None
            record.details.update(dead_after=after, seconds=seconds, options=target.options, held_back_by=held_back_by)
        outcomes.append({"table": target.name, "options": target.options, "reasons": list(target.reasons),
                         "dead_before": before, "dead_after": after, "seconds": seconds,
                         "held_back_by": held_back_by})
    return outcomes


def left_in_place(before: int, after: int) -> bool:
    """Pure: VACUUM left more dead tuples than it removed (something holds the xmin horizon back)."""
    return after > 0 and before - after < after


def xmin_holder(conn) -> str:
    """Who holds the xmin horizon back, as the warning names it (pid, application, age)."""
    rows = dict_rows(conn, "vacuum_xmin_holder.sql")
    if not rows:
        return ("no session holds an old xmin now: look at replication slots (pg_replication_slots.xmin) and "
                "prepared transactions (pg_prepared_xacts)")
    h = rows[0]
    return (f"the oldest xmin is held by pid {h['pid']} ({h['application_name']}, user {h['usename']}, {h['state']}, "
            f"xmin age {h['xmin_age']} transactions, transaction open for "
            f"{human_duration(h['xact_age'].total_seconds()) if h['xact_age'] is not None else 'unknown'})")
