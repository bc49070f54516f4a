"""The audit rows of backups: outcomes `verified` (restored and compared), `completed` (a CNPG Backup that
completed: nothing was restored), `unverified` (verify=false, or verification pending after the window:
details.verification = "pending") and `failed`, plus `dry_run`. `postgres.backup_age` counts `verified`
and `completed` rows (GOOD)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.store import Actor
from streamflow_ops.store import AuditRecord, ensure_ops_schema, write_audit

VERIFIED, COMPLETED, UNVERIFIED, FAILED, DRY_RUN = "verified", "completed", "unverified", "failed", "dry_run"
GOOD = (VERIFIED, COMPLETED)
# Manifest status of a dump whose verification runs after the window (postgres_backup_verify).
PENDING = "pending"
BACKUP_ACTION = "backup"
SCRATCH_DROP_ACTION = "backup_scratch_drop"
RETENTION_ACTION = "backup_retention"


def record_backup(config: StreamflowOpsConfig, run: Actor, *, target: str, dry_run: bool, outcome: str,
                  started_at: datetime, details: dict[str, Any], rows: int | None = None,
                  action: str = BACKUP_ACTION) -> int:
    """Write one ops.maintenance_audit row for a backup (or its hygiene) on a short-lived connection."""
    ops = config.warehouse.ops_schema
    with warehouse_connection(config.warehouse) as conn:
        ensure_ops_schema(conn, ops)
        return write_audit(conn, AuditRecord(dag_id=run.dag_id, run_id=run.run_id, task_id=run.task_id,
                                             action=action, target=target, dry_run=dry_run, outcome=outcome,
                                             started_at=started_at, rows_affected=rows, details=details), ops)
