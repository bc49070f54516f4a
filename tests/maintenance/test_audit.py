"""ops.maintenance_audit rows are committed as `in progress` before an action and closed after it; a killed
client leaves no statement behind on the server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from streamflow_ops.connections import CLIENT_CHECK_S
from streamflow_ops.store import IN_PROGRESS, audited
from tests.polling import wait_for

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


BLOCKED = textwrap.dedent("""
    from streamflow_ops.config import load_config
    from streamflow_ops.connections import warehouse_connection

    with warehouse_connection(load_config().warehouse, lock_timeout_s=600, statement_timeout_s=600) as conn:
        conn.execute("set application_name = 'h1_killed_client'")
        conn.execute("select count(*) from bronze.transactions")  # waits on the test's lock until killed
""")


def test_server_drops_the_statement_of_a_killed_client(warehouse_db):
    """SIGKILL while a statement waits on a lock: the backend goes within seconds (client_connection_check_
    interval), not when its 10-minute lock_timeout ends, so a cut step holds no lock into the morning."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{repo / 'plugins'}:{repo}"}
    with psycopg.connect(warehouse_db) as holder, psycopg.connect(warehouse_db, autocommit=True) as watch:
        holder.execute("lock table bronze.transactions in access exclusive mode")
        proc = subprocess.Popen([sys.executable, "-c", BLOCKED], env=env)
        try:
            backend = "select count(*) from pg_stat_activity where application_name = 'h1_killed_client'"
            wait_for("the client's statement to wait on the lock", lambda: watch.execute(
                backend + " and wait_event_type = 'Lock'").fetchone()[0] == 1, timeout=60)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            wait_for("the server to drop the dead client's backend",
                     lambda: watch.execute(backend).fetchone()[0] == 0, timeout=3 * CLIENT_CHECK_S)
        finally:
            proc.kill()
            proc.wait()
