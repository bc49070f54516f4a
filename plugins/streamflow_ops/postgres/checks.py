"""PostgreSQL health checks, wired: probes fetch rows, evaluators (postgres/evaluators.py) judge them.

The sweep calls `run_checks`; the maintenance preflight imports `reachable`.
"""
from __future__ import annotations

from datetime import datetime

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.postgres.evaluators import (
    BACKUP_AGE,
    CONNECTIONS,
    LAST_SUCCESS,
    DEAD_TUPLES,
    LONG_QUERIES,
    REACHABLE,
    REPLICATION_LAG,
    RESTORE_DRILL_AGE,
    WRAPAROUND,
    evaluate_backup_age,
    evaluate_connections,
    evaluate_dead_tuples,
    evaluate_last_success,
    evaluate_long_queries,
    evaluate_replication_lag,
    evaluate_restore_drill_age,
    evaluate_txid_wraparound,
)
from streamflow_ops.postgres.probes import audit_backups, cnpg_last_backup, maintenance_runs, restore_drills
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult, Status, describe_error
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.timeutil import utcnow


def reachable(config: StreamflowOpsConfig) -> CheckResult:
    """postgres.reachable: a failed connection is critical here, because connecting is the check."""
    try:
        with warehouse_connection(config.warehouse, statement_timeout_s=config.warehouse.connect_timeout_s) as conn:
            version = conn.execute("show server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
        return REACHABLE.result(Status.CRITICAL,
                       message=f"cannot connect to PostgreSQL ({config.warehouse.conn_id}): "
                               f"{describe_error(exc)}")
    return REACHABLE.result(Status.OK, message=f"PostgreSQL {version} answers",
                   details={"server_version": version})


def _backup_age(conn, config: StreamflowOpsConfig, now: datetime) -> CheckResult:
    backups: dict[str, datetime | None] = {}
    errors: dict[str, str] = {}
    latest = None
    try:
        backups["ops.maintenance_audit"], latest = audit_backups(conn, config)
    except Exception as exc:  # noqa: BLE001 - one source failing leaves the other's answer
        errors["ops.maintenance_audit"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    if connection_defined(config.kubernetes.conn_id):
        try:
            backups["cnpg"] = cnpg_last_backup(config)
        except Exception as exc:  # noqa: BLE001
            errors["cnpg"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return evaluate_backup_age(backups, errors, now, config.postgres_checks, latest)


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    """Every PostgreSQL check; each query isolated and bounded by statement_timeout."""
    return run_guarded(config, FAMILY.specs, lambda: _run(config, utcnow(now)))


def _run(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    first = reachable(config)
    if first.status is not Status.OK:
        return [first] + [spec.unknown(f"not checked: {first.message}") for spec in FAMILY.specs[1:]]
    cfg = config.postgres_checks
    probes = {
        CONNECTIONS: lambda conn: evaluate_connections(**dict_rows(conn, "health_connections.sql")[0], cfg=cfg),
        REPLICATION_LAG: lambda conn: evaluate_replication_lag(dict_rows(conn, "health_replication_lag.sql"), cfg),
        DEAD_TUPLES: lambda conn: evaluate_dead_tuples(
            dict_rows(conn, "health_dead_tuples.sql", {"schemas": list(cfg.dead_tuples_schemas)}), cfg),
        LONG_QUERIES: lambda conn: evaluate_long_queries(dict_rows(conn, "health_long_queries.sql"), cfg),
        WRAPAROUND: lambda conn: evaluate_txid_wraparound(dict_rows(conn, "health_txid_wraparound.sql"), cfg),
        BACKUP_AGE: lambda conn: _backup_age(conn, config, now),
        RESTORE_DRILL_AGE: lambda conn: evaluate_restore_drill_age(restore_drills(conn, config), now, config.recovery),
        LAST_SUCCESS: lambda conn: evaluate_last_success(maintenance_runs(conn, config), now, config.maintenance,
                                                         config.maintenance.hard_stop_minutes / 60),
    }
    results = [first]
    try:
        with warehouse_connection(config.warehouse, statement_timeout_s=cfg.statement_timeout_s) as conn:
            for spec, probe in probes.items():
                results += spec.guarded(lambda probe=probe: probe(conn))
    except Exception as exc:  # noqa: BLE001 - the connection went away between checks
        done = {r.check_name for r in results}
        results += [spec.unknown(f"not checked: connection lost: {type(exc).__name__}: {exc}"[:500])
                    for spec in probes if spec.name not in done]
    return results


FAMILY = register(Family("postgres", run_checks))
