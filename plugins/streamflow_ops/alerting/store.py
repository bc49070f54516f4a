"""ops.alert_state on the warehouse connection: load every row, write or forget one, one session at a time."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streamflow_ops.alerting.state import AlertState, Key
from streamflow_ops.sqlfiles import load_sql


@contextmanager
def alert_session(conn) -> Iterator[None]:
    """Hold the alerting lock for this connection's session: deliveries of one owed item never overlap."""
    conn.execute(load_sql("alert_state_lock.sql"))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute(load_sql("alert_state_unlock.sql"))


def load_states(conn, ops_schema: str) -> dict[Key, AlertState]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(load_sql("alert_state_select.sql", ops=ops_schema)).fetchall()
    return {(r["check_name"], r["subject"]): AlertState.from_row(r) for r in rows}


def save_state(conn, state: AlertState, ops_schema: str) -> None:
    row = state.to_row()
    row["last_result"] = Jsonb(row["last_result"]) if row["last_result"] is not None else None
    conn.execute(load_sql("alert_state_upsert.sql", ops=ops_schema), row)


def delete_state(conn, key: Key, ops_schema: str) -> None:
    conn.execute(load_sql("alert_state_delete.sql", ops=ops_schema), {"check_name": key[0], "subject": key[1]})
