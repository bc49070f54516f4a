"""Connections to the far ends: whether an Airflow connection is defined (a family without one reports
`skipped`, never `ok`), and warehouse connections through PostgresHook, always with connect, statement
and lock timeouts (every layer above uses this one helper)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from streamflow_ops.config import WarehouseConfig


def connection_defined(conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


@contextmanager
def warehouse_connection(cfg: WarehouseConfig, *, autocommit: bool = True,
                         statement_timeout_s: float | None = None, lock_timeout_s: float | None = None,
                         database: str | None = None, host: str | None = None, port: int | None = None) -> Iterator:
    """A psycopg 3 connection from the `streamflow_postgres` connection, closed on exit. `host`/`port`
    reach another server with the same credentials (restore_drill's recovered scratch cluster)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    # libpq reads PGCONNECT_TIMEOUT: an unreachable server fails in seconds instead of hanging.
    os.environ.setdefault("PGCONNECT_TIMEOUT", str(cfg.connect_timeout_s))
    statement_ms = int((statement_timeout_s or cfg.statement_timeout_s) * 1000)
    options = f"-c statement_timeout={statement_ms} -c application_name=streamflow_ops"
    if lock_timeout_s is not None:
        options += f" -c lock_timeout={int(lock_timeout_s * 1000)}"
    hook = PostgresHook(postgres_conn_id=cfg.conn_id, options=options, **({"database": database} if database else {}))
    if host or port:
        import copy

        elsewhere = copy.deepcopy(hook.connection)
        elsewhere.host, elsewhere.port = host or elsewhere.host, port or elsewhere.port
        hook.connection = elsewhere
    conn = hook.get_conn()
    conn.autocommit = True
    if conn.info.server_version >= 140000:
        # A client killed mid-statement (SIGKILL, a lost worker) leaves its backend running, locks held,
        # until the statement ends; with this the server notices the dead socket within seconds.
        conn.execute("select set_config('client_connection_check_interval', %s, false)",
                     (f"{CLIENT_CHECK_S}s",))
    conn.autocommit = autocommit
    try:
        yield conn
    finally:
        settle_interrupted(conn)
        conn.close()


CLIENT_CHECK_S = 5


def settle_interrupted(conn) -> None:
    """Cancel a statement this client stopped waiting for, so that the server stops it too.

    An exception raised inside psycopg's wait (a task's execution_timeout: the window's hard stop) leaves
    the statement running on the server, holding its locks (the maintenance advisory lock too), and the
    connection unusable ("another command is already in progress"). Cancel it, drain its result and roll
    back, so the connection can still write its audit row and closing it releases everything.
    """
    from psycopg.pq import TransactionStatus

    if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.ACTIVE:
        return
    conn.cancel_safe(timeout=5)
    while conn.pgconn.get_result() is not None:
        pass
    if conn.info.transaction_status == TransactionStatus.INERROR:
        conn.rollback()
