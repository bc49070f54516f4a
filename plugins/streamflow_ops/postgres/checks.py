"""PostgreSQL health checks (probe + evaluator). The sweep and the maintenance preflight use them."""
from __future__ import annotations

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.postgres.connection import warehouse_connection
from streamflow_ops.results import CheckResult, Status
from streamflow_ops.runbook import section


def reachable(config: StreamflowOpsConfig) -> CheckResult:
    """postgres.reachable: a failed connection is critical here, because connecting is the check."""
    name = "postgres.reachable"
    try:
        with warehouse_connection(config.warehouse, statement_timeout_s=config.warehouse.connect_timeout_s) as conn:
            version = conn.execute("show server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
        return CheckResult(name, Status.CRITICAL, runbook=section(name),
                           message=f"cannot connect to PostgreSQL ({config.warehouse.conn_id}): "
                                   f"{type(exc).__name__}: {str(exc).strip()[:300]}")
    return CheckResult(name, Status.OK, message=f"PostgreSQL {version} answers", runbook=section(name),
                       details={"server_version": version})
