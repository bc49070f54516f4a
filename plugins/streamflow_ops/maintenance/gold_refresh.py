"""Gold refresh: every materialized view of the gold schema, dependencies first.

CONCURRENTLY keeps the view readable but needs a populated view and a usable unique index; the
others get a plain refresh, bounded by lock_timeout so a reader holding the view cannot stall the window.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from graphlib import TopologicalSorter

from streamflow_ops.store import Actor, audited
from streamflow_ops.sqlfiles import load_sql


@dataclass(frozen=True)
class GoldView:
    name: str
    populated: bool
    has_unique_index: bool

    @property
    def concurrently(self) -> bool:
        return self.populated and self.has_unique_index


def refresh_order(views: list[str], depends_on: list[tuple[str, str]]) -> list[str]:
    """Pure: views in dependency order (a view after every view it reads); ties alphabetical."""
    graph: dict[str, set[str]] = {v: set() for v in views}
    for view, source in depends_on:
        if view in graph and source in graph:
            graph[view].add(source)
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order


def discover(conn, schema: str) -> list[GoldView]:
    """The schema's materialized views, in the order they must be refreshed."""
    views = {name: GoldView(name, populated, unique)
             for name, populated, unique in conn.execute(load_sql("gold_views.sql"), {"schema": schema})}
    deps = conn.execute(load_sql("gold_dependencies.sql"), {"schema": schema}).fetchall()
    return [views[name] for name in refresh_order(list(views), deps)]


def run_refresh(conn, schema: str, actor: Actor, dry_run: bool) -> list[dict]:
    """Refresh each view in its own statement (autocommit connection); time per view."""
    outcomes = []
    for view in discover(conn, schema):
        method = "concurrently" if view.concurrently else "plain"
        with audited(conn, actor, f"gold_refresh_{method}", f"{schema}.{view.name}", dry_run) as record:
            started = time.monotonic()
            if not dry_run:
                statement = "gold_refresh_concurrently.sql" if view.concurrently else "gold_refresh.sql"
                conn.execute(load_sql(statement, view=(schema, view.name)))
            seconds = round(time.monotonic() - started, 3)
            record.details.update(method=method, seconds=seconds, populated_before=view.populated)
        outcomes.append({"view": f"{schema}.{view.name}", "method": method, "seconds": seconds})
    return outcomes
