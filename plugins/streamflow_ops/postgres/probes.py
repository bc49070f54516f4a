"""PostgreSQL reads for the checks: the backup audit (through the warehouse connection) and the CNPG
Cluster's last backup (through the Kubernetes client). Rows come back as the SQL returns them."""
from __future__ import annotations

from datetime import datetime

import psycopg

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.kubernetes.probes import CNPG_CLUSTER, KubeProbe
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.timeutil import parse_time


def audit_backups(conn, config: StreamflowOpsConfig) -> tuple[datetime | None, dict | None]:
    """(newest verified backup's finish time, newest finished backup of any outcome) from the audit."""
    try:
        rows = dict_rows(conn, "health_backup_audit.sql", ops=config.warehouse.ops_schema)
    except psycopg.errors.UndefinedTable:  # ops schema not bootstrapped yet: nothing was ever recorded
        return None, None
    by_kind = {row.pop("kind"): row for row in rows}
    verified = by_kind.get("verified")
    return (verified["finished_at"] if verified else None), by_kind.get("latest")


def maintenance_runs(conn, config: StreamflowOpsConfig) -> list[dict]:
    """Per window step, its newest real run (outcome, when, a note) and newest success, from the audit."""
    try:
        return dict_rows(conn, "maintenance_last_runs.sql", ops=config.warehouse.ops_schema)
    except psycopg.errors.UndefinedTable:  # ops schema not bootstrapped yet: no step ever ran
        return []


def cnpg_last_backup(config: StreamflowOpsConfig) -> datetime | None:
    """status.lastSuccessfulBackup of the CloudNativePG Cluster the backups are taken of."""
    cluster = KubeProbe(config.kubernetes).custom_object(CNPG_CLUSTER, config.backup.cnpg_namespace,
                                                         config.backup.cnpg_cluster, missing_ok=False)
    return parse_time((cluster.get("status") or {}).get("lastSuccessfulBackup"))


def restore_drills(conn, config: StreamflowOpsConfig) -> list[dict]:
    """Per backup method, its newest restore_drill (outcome, when, error) and newest passed one."""
    try:
        return dict_rows(conn, "drill_status.sql", ops=config.warehouse.ops_schema)
    except psycopg.errors.UndefinedTable:  # ops schema not bootstrapped yet: nothing was ever drilled
        return []
