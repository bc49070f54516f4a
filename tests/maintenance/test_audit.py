"""ops.maintenance_audit rows are committed as `in progress` before an action and closed after it."""
from __future__ import annotations

import psycopg
import pytest

from streamflow_ops.store import IN_PROGRESS, audited

pytestmark = pytest.mark.postgres


def _rows(dsn: str, action: str) -> list[tuple]:
    """What another session sees (committed rows only)."""
    with psycopg.connect(dsn) as other:
        return other.execute("select outcome, finished_at is null, rows_affected from ops.maintenance_audit "
                             "where action = %s order by id", (action,)).fetchall()


def test_row_is_committed_before_the_action_and_closed_after(conn, warehouse_db, actor):
    with audited(conn, actor, "test.act", "x", dry_run=False) as record:
        assert _rows(warehouse_db, "test.act") == [(IN_PROGRESS, True, None)]
        record.rows_affected = 3
    assert _rows(warehouse_db, "test.act") == [("success", False, 3)]  # the same row, closed


def test_failed_action_closes_its_row_as_failed(conn, warehouse_db, actor):
    with pytest.raises(ZeroDivisionError):
        with audited(conn, actor, "test.fail", "x", dry_run=False):
            1 / 0
    [(outcome, open_, _)] = _rows(warehouse_db, "test.fail")
    assert (outcome, open_) == ("failed", False)


def test_no_opening_row_no_action(conn, actor):
    """The ops table is gone: the opening insert fails and the action never starts."""
    conn.execute("drop table ops.maintenance_audit")
    ran = []
    with pytest.raises(psycopg.errors.UndefinedTable):
        with audited(conn, actor, "test.act", "x", dry_run=False):
            ran.append(True)
    assert ran == []


def test_refused_inside_an_open_transaction(warehouse_db, actor):
    """A caller's transaction would hold the opening row back until after the action: refused."""
    with psycopg.connect(warehouse_db) as conn:  # not autocommit
        conn.execute("select 1")
        with pytest.raises(RuntimeError, match="open transaction"):
            with audited(conn, actor, "test.act", "x", dry_run=False):
                pass
