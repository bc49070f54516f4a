"""Traces of killed runs: audit rows a step left `in progress` and nobody closed.

`store.audited` commits an `in progress` row before each destructive action, so a run killed mid-action
(SIGKILL, a lost worker, the hard stop) leaves one. The next real run of the same step holds the
maintenance advisory lock before it looks, so no live run owns such a row: it closes them as
`interrupted` (finished_at stays null: nobody knows when the run died) and reports them as a warning.
The sweep's `maintenance.last_success` reports them until then.
"""
from __future__ import annotations

from dataclasses import replace

from streamflow_ops.results import CheckResult, Status
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.store import Actor

INTERRUPTED = "interrupted"


def close_interrupted(conn, actor: Actor, capability: str) -> list[dict]:
    """Close the step's open real-run rows (caller holds the maintenance lock); what they said, oldest first."""
    rows = dict_rows(conn, "maintenance_close_interrupted.sql", {"run_id": actor.run_id, "pattern": f"{capability}%"},
                     ops=actor.ops_schema)
    return sorted(rows, key=lambda r: r["started_at"])


def _trace(row: dict) -> str:
    done = "" if row["rows_affected"] is None else f", {row['rows_affected']} rows affected when last recorded"
    return (f"{row['action']} on {row['target']} of run {row['run_id']} (started "
            f"{row['started_at']:%Y-%m-%d %H:%M:%S %Z}{done}) never finished")


def with_interrupted(result: CheckResult, interrupted: list[dict]) -> CheckResult:
    """Pure: the step's result, at least a warning, naming each killed run's half-done action."""
    status = result.status if result.status.severity >= Status.WARNING.severity else Status.WARNING
    message = (f"{result.message}. WARNING: a killed run left {'; '.join(_trace(r) for r in interrupted)} "
               f"(audit rows closed as '{INTERRUPTED}')")
    traces = [{**r, "started_at": r["started_at"].isoformat()} for r in interrupted]  # JSON-safe for XCom
    return replace(result, status=status, message=message, details={**result.details, INTERRUPTED: traces})
