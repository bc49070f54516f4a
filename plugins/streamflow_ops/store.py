"""The `ops` schema this package owns: bootstrap, the audit trail and stored check results."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from psycopg.types.json import Jsonb

from streamflow_ops.connections import settle_interrupted
from streamflow_ops.results import CheckResult
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)


def ensure_ops_schema(conn, ops_schema: str = "ops") -> None:
    """Create or migrate the ops tables; idempotent, so every writer may call it first."""
    with conn.transaction():
        # Serialise concurrent bootstraps: CREATE ... IF NOT EXISTS races on the catalog otherwise.
        conn.execute("select pg_advisory_xact_lock(hashtext('streamflow_ops.ops_schema'))")
        conn.execute(load_sql("ops_schema.sql", ops=ops_schema))


IN_PROGRESS = "in progress"  # an audited action that started and was not closed (running, or killed)


@dataclass
class AuditRecord:
    """One destructive or maintenance action, as ops.maintenance_audit stores it."""

    dag_id: str
    run_id: str
    task_id: str
    action: str
    target: str
    dry_run: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished_at: datetime | None = None
    rows_affected: int | None = None
    outcome: str = IN_PROGRESS
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # the ops.maintenance_audit row, once written


def write_audit(conn, record: AuditRecord, ops_schema: str = "ops") -> int:
    """Insert the record in its own transaction (commit even if the action's transaction failed)."""
    return _insert_audit(conn, record, record.finished_at or datetime.now(timezone.utc), ops_schema)


def _insert_audit(conn, record: AuditRecord, finished_at: datetime | None, ops_schema: str) -> int:
    params = {**asdict(record), "finished_at": finished_at, "details": Jsonb(record.details)}
    with conn.transaction():
        record.id = conn.execute(load_sql("insert_audit.sql", ops=ops_schema), params).fetchone()[0]
    return record.id


@dataclass(frozen=True)
class Actor:
    """Who acts: the DAG run and task that the audit rows name."""

    dag_id: str
    run_id: str
    task_id: str
    ops_schema: str = "ops"

    @property
    def holder_name(self) -> str:
        """How this actor appears as the advisory lock's holder (application_name)."""
        return f"streamflow_ops:{self.dag_id}/{self.task_id}/{self.run_id}"


@contextmanager
def audited(conn, actor: Actor, action: str, target: str, dry_run: bool) -> Iterator[AuditRecord]:
    """Yield the action's record to fill in (rows_affected, details); close it when the action ends.

    Every maintenance action leaves one ops.maintenance_audit row, also when it fails, and also when its
    process is killed: the row is committed as `in progress` (finished_at null) BEFORE the action
    starts and updated when it ends, so a SIGKILL between two committed deletes leaves a trace that the
    next run and the `maintenance.last_success` check report. No row, no action: if the opening row
    cannot be written, the action does not start. `conn` must be autocommit or idle (the opening row
    has to be committed, not held in the caller's transaction)."""
    from psycopg.pq import TransactionStatus

    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError(f"audited({action}) inside an open transaction: its in-progress row would not be "
                           "committed before the action")
    record = AuditRecord(dag_id=actor.dag_id, run_id=actor.run_id, task_id=actor.task_id, action=action,
                         target=target, dry_run=dry_run)
    _insert_audit(conn, record, None, actor.ops_schema)
    try:
        yield record
    except BaseException as exc:
        record.outcome = "failed"
        record.details["error"] = f"{type(exc).__name__}: {exc}"[:1000]
        settle_interrupted(conn)  # cut inside a statement (execution_timeout): stop it, then close the row
        _close(conn, record, actor)
        raise
    if record.outcome == IN_PROGRESS:
        record.outcome = "dry_run" if dry_run else "success"
    _close(conn, record, actor)


def note_progress(conn, record: AuditRecord, ops_schema: str = "ops") -> None:
    """Store rows_affected so far on the open row, inside the caller's transaction: it commits with the rows
    it counts, so a killed run's `in progress` row says exactly what is already gone."""
    conn.execute(load_sql("progress_audit.sql", ops=ops_schema), {"id": record.id,
                                                                  "rows_affected": record.rows_affected})


def _close(conn, record: AuditRecord, actor: Actor) -> None:
    record.finished_at = datetime.now(timezone.utc)
    params = {"id": record.id, "finished_at": record.finished_at, "outcome": record.outcome,
              "rows_affected": record.rows_affected, "details": Jsonb(record.details)}
    try:
        with conn.transaction():
            conn.execute(load_sql("close_audit.sql", ops=actor.ops_schema), params)
    except Exception as exc:  # noqa: BLE001 - a failed action must surface its own error, not this one
        if record.outcome != "failed":
            raise
        log.error("could not close the audit row %s of the failed action %s on %s (it stays 'in progress'): "
                  "%s", record.id, record.action, record.target, exc)


def write_results(conn, sweep_id: str, results: Iterable[CheckResult], checked_at: datetime | None = None,
                  ops_schema: str = "ops") -> int:
    """Store one sweep's results, each with the runbook heading the on-call should open (not null)."""
    checked_at = checked_at or datetime.now(timezone.utc)
    rows = []
    for result in results:
        row = result.to_dict()
        row.update(sweep_id=sweep_id, checked_at=checked_at, details=Jsonb(result.details))
        rows.append(row)
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(load_sql("insert_health_result.sql", ops=ops_schema), rows)
    return len(rows)
