"""The maintenance advisory lock: two runs (or a manual DAG during the window) never interleave.

A session-level lock held on the step's own connection for the whole step, taken with
pg_try_advisory_lock so that a second run is held off (skipped with a reason), never queued.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from streamflow_ops.sqlfiles import load_sql

# Two int4 keys: pg_locks shows them as classid/objid (objsubid 2), so the holder can be named.
LOCK_NAMESPACE = 0x5346  # "SF"
MAINTENANCE_KEY = 1


def lock_holder(conn) -> str | None:
    """Who holds the maintenance lock right now (application name, pid, session start), or None."""
    row = conn.execute(load_sql("maintenance_lock_holder.sql"),
                       {"classid": LOCK_NAMESPACE, "objid": MAINTENANCE_KEY, "objsubid": 2}).fetchone()
    if row is None:
        return None
    pid, app, since, _ = row
    return f"{app or 'unknown client'} (pid {pid}, session since {since:%Y-%m-%d %H:%M:%S %Z})"


@contextmanager
def maintenance_lock(conn, holder_name: str) -> Iterator[str | None]:
    """Try to take the lock; yields None when taken (released on exit), else who holds it."""
    # The holder's application_name is what a blocked run reports, so make it say who we are.
    conn.execute("select set_config('application_name', %s, false)", (holder_name[:63],))
    taken = conn.execute("select pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MAINTENANCE_KEY)).fetchone()[0]
    if not taken:
        yield lock_holder(conn) or "another session (it released the lock just now)"
        return
    try:
        yield None
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, MAINTENANCE_KEY))
