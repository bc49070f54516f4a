"""The `ops` schema this package owns: bootstrap, the audit trail and stored check results."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from psycopg.types.json import Jsonb

from streamflow_ops.results import CheckResult
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)


def ensure_ops_schema(conn, ops_schema: str = "ops") -> None:
    """Create or migrate the ops tables; idempotent, so every writer may call it first."""
    with conn.transaction():
        # Serialise concurrent bootstraps: CREATE ... IF NOT EXISTS races on the catalog otherwise.
        conn.execute("select pg_advisory_xact_lock(hashtext('streamflow_ops.ops_schema'))")
        conn.execute(load_sql("ops_schema.sql", ops=ops_schema))


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
    outcome: str = "running"
    details: dict[str, Any] = field(default_factory=dict)


def write_audit(conn, record: AuditRecord, ops_schema: str = "ops") -> int:
    """Insert the record in its own transaction (commit even if the action's transaction failed)."""
    params = asdict(record)
    params["finished_at"] = record.finished_at or datetime.now(timezone.utc)
    params["details"] = Jsonb(record.details)
    with conn.transaction():
        return conn.execute(load_sql("insert_audit.sql", ops=ops_schema), params).fetchone()[0]


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
    """Yield the action's record to fill in (rows_affected, details); write it when the action ends.

    Every maintenance action leaves one ops.maintenance_audit row, also when it fails."""
    record = AuditRecord(dag_id=actor.dag_id, run_id=actor.run_id, task_id=actor.task_id, action=action,
                         target=target, dry_run=dry_run)
    try:
        yield record
    except BaseException as exc:
        record.outcome = "failed"
        record.details["error"] = f"{type(exc).__name__}: {exc}"[:1000]
        _write_closing(conn, record, actor)
        raise
    if record.outcome == "running":
        record.outcome = "dry_run" if dry_run else "success"
    _write_closing(conn, record, actor)


def _write_closing(conn, record: AuditRecord, actor: Actor) -> None:
    record.finished_at = datetime.now(timezone.utc)
    try:
        write_audit(conn, record, actor.ops_schema)
    except Exception as exc:  # noqa: BLE001 - a failed action must surface its own error, not this one
        if record.outcome != "failed":
            raise
        log.error("could not write the audit row for the failed action %s on %s: %s",
                  record.action, record.target, exc)


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
