"""Every maintenance action leaves one ops.maintenance_audit row, also when it fails."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from streamflow_ops.store import AuditRecord, write_audit

log = logging.getLogger(__name__)


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
    """Yield the action's record to fill in (rows_affected, details); write it when the action ends."""
    record = AuditRecord(dag_id=actor.dag_id, run_id=actor.run_id, task_id=actor.task_id, action=action,
                         target=target, dry_run=dry_run)
    try:
        yield record
    except BaseException as exc:
        record.outcome = "failed"
        record.details["error"] = f"{type(exc).__name__}: {exc}"[:1000]
        _write(conn, record, actor)
        raise
    if record.outcome == "running":
        record.outcome = "dry_run" if dry_run else "success"
    _write(conn, record, actor)


def _write(conn, record: AuditRecord, actor: Actor) -> None:
    record.finished_at = datetime.now(timezone.utc)
    try:
        write_audit(conn, record, actor.ops_schema)
    except Exception as exc:  # noqa: BLE001 - a failed action must surface its own error, not this one
        if record.outcome != "failed":
            raise
        log.error("could not write the audit row for the failed action %s on %s: %s",
                  record.action, record.target, exc)
