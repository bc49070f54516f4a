"""The `ops` schema this package owns: bootstrap, the audit trail and stored check results."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from psycopg.types.json import Jsonb

from streamflow_ops.results import CheckResult
from streamflow_ops.sqlfiles import load_sql


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
