"""Preflight of the maintenance window: is every service there, and is it safe to change data?

The gate (`gate_checks` / `evaluate_gate` / `blocking_reason`) is what every destructive step asks
right before it acts: PostgreSQL reachable, replication lag and connection usage under the critical
thresholds, no other maintenance run holding the advisory lock, and no backup running.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from streamflow_ops import registry
from streamflow_ops.backup.status import backup_in_progress
from streamflow_ops.config import PostgresChecksConfig, StreamflowOpsConfig
from streamflow_ops.flink.checks import job_running
from streamflow_ops.kafka.checks import broker_reachable
from streamflow_ops.postgres.checks import reachable
from streamflow_ops.postgres.evaluators import evaluate_connections, evaluate_replication_lag
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.maintenance.locks import lock_holder
from streamflow_ops.results import CheckResult, Status, describe_error
from streamflow_ops.sqlfiles import dict_rows

log = logging.getLogger(__name__)


def service_checks(config: StreamflowOpsConfig) -> list[CheckResult]:
    """Connect to each service; one failing never hides the others, an undefined one is skipped."""
    results: list[CheckResult] = []
    for spec, probe in ((registry.POSTGRES_REACHABLE, reachable), (registry.KAFKA_BROKER_REACHABLE, broker_reachable),
                        (registry.FLINK_JOB_RUNNING, job_running)):
        results += registry.run_guarded(config, [spec], lambda probe=probe: [probe(config)])
    return results


@dataclass(frozen=True)
class GateSnapshot:
    """What the gate saw on the warehouse (probe output, evaluated by `evaluate_gate`)."""

    connections: dict  # used, max_connections, superuser_reserved (health_connections.sql)
    replicas: list[dict] = field(default_factory=list)  # replica, state, lag_bytes (health_replication_lag.sql)
    lock_holder: str | None = None
    backup: str | None = None
    backup_error: str | None = None


def read_gate(conn, config: StreamflowOpsConfig, *, with_lock_holder: bool = True) -> GateSnapshot:
    """Probe: the health checks' connection and lag queries, the lock holder, and the backup hook."""
    backup = backup_error = None
    try:
        backup = backup_in_progress(config, conn)
    except Exception as exc:  # noqa: BLE001 - an unknown backup state must block, not crash
        backup_error = f"{type(exc).__name__}: {exc}"[:300]
    return GateSnapshot(connections=dict_rows(conn, "health_connections.sql")[0],
                        replicas=dict_rows(conn, "health_replication_lag.sql"),
                        lock_holder=lock_holder(conn) if with_lock_holder else None,
                        backup=backup, backup_error=backup_error)


def evaluate_gate(snap: GateSnapshot, cfg: PostgresChecksConfig) -> list[CheckResult]:
    """Pure: the gate's verdicts (the health checks' evaluators plus lock and backup).

    Critical or unknown blocks destructive steps: connections >= 95 %, lag > 100 MB by default.
    """
    results = [evaluate_connections(**snap.connections, cfg=cfg), evaluate_replication_lag(snap.replicas, cfg)]
    if snap.lock_holder:
        results.append(registry.MAINTENANCE_LOCK.result(
            Status.CRITICAL, f"another maintenance run holds the advisory lock: {snap.lock_holder}"))
    if snap.backup_error:
        results.append(registry.MAINTENANCE_BACKUP_RUNNING.unknown(
            f"cannot tell whether a backup is running: {snap.backup_error}"))
    elif snap.backup:
        results.append(registry.MAINTENANCE_BACKUP_RUNNING.result(Status.CRITICAL, f"a backup is running: {snap.backup}"))
    return results


def blocking_reason(results: list[CheckResult]) -> str | None:
    """Pure: why destructive steps must not run (critical or unknown verdicts), or None."""
    blockers = [r for r in results if r.status in (Status.CRITICAL, Status.UNKNOWN)]
    return "; ".join(f"{r.check_name}: {r.message}" for r in blockers) or None


def gate_checks(config: StreamflowOpsConfig) -> list[CheckResult]:
    """The gate as the window's preflight reports it; an unreachable warehouse is one critical result."""
    try:
        with warehouse_connection(config.warehouse, statement_timeout_s=config.warehouse.connect_timeout_s) as conn:
            snap = read_gate(conn, config)
    except Exception as exc:  # noqa: BLE001 - unreachable or failing: destructive steps must not run
        log.warning("maintenance gate probe failed: %s", exc)
        return [registry.MAINTENANCE_GATE.unknown(f"cannot read the maintenance gate from PostgreSQL "
                                                  f"({config.warehouse.conn_id}): {describe_error(exc)}")]
    return evaluate_gate(snap, config.postgres_checks)
