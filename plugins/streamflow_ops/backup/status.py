"""Is a backup running right now? For steps that must not overlap one (e.g. VACUUM FULL, restarts)."""
from __future__ import annotations

import logging
from contextlib import nullcontext

from streamflow_ops.backup.cnpg import running_backups
from streamflow_ops.backup.pg_dump import BACKUP_LOCK_KEY
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.sqlfiles import load_sql

log = logging.getLogger(__name__)


def backup_in_progress(config: StreamflowOpsConfig, conn=None) -> str | None:
    """A reason string while a backup runs, else None.

    Looks for a pg_dump or gold_export of ours (the backup advisory lock in the warehouse, visible from
    every worker) and, when the Kubernetes connection is defined, an unfinished CNPG Backup of the cluster. If a
    probe fails we cannot tell, and say so (a reason, not None): callers gate destructive work on it.
    `conn`: an open autocommit warehouse connection to ask on (the gate has one); else a short-lived one.
    """
    connect = nullcontext(conn) if conn is not None else warehouse_connection(
        config.warehouse, statement_timeout_s=config.warehouse.connect_timeout_s)
    try:
        with connect as warehouse:
            holder = warehouse.execute(load_sql("maintenance_lock_holder.sql"),
                                       {"classid": 0, "objid": BACKUP_LOCK_KEY, "objsubid": 1}).fetchone()
    except Exception as exc:  # noqa: BLE001 - unknown is reported, never read as "no backup"
        log.warning("backup lock probe failed", exc_info=True)
        return f"cannot tell whether a pg_dump/gold_export backup is running: {type(exc).__name__}: {exc}"
    if holder:
        pid, app, _, xact_start = holder
        return (f"pg_dump/gold_export backup in progress (backend pid {pid}, {app or 'no application name'}, "
                f"since {xact_start})")
    if not connection_defined(config.kubernetes.conn_id):
        return None
    try:
        running = running_backups(config)
    except Exception as exc:  # noqa: BLE001
        log.warning("CNPG backup probe failed", exc_info=True)
        return f"cannot tell whether a CNPG backup is running: {type(exc).__name__}: {exc}"
    if running:
        return (f"CNPG backup in progress for {config.backup.cnpg_namespace}/{config.backup.cnpg_cluster}: "
                f"{', '.join(running)}")
    return None
