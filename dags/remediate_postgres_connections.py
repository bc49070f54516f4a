"""Runbook PostgresHighConnections: terminate idle / idle-in-transaction sessions, after approval."""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.remediation.flow import remediation_flow


@dag(
    dag_id="remediate_postgres_connections",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "remediation", "manual", "postgres"],
    params={
        "dry_run": dry_run_param(True, "list the sessions that would be terminated"),
        "idle_minutes": Param(30, type="integer", minimum=1, maximum=1440, title="Idle for at least (minutes)",
                              description="Terminate sessions idle or idle in transaction for at least this long."),
        "application": Param(None, type=["null", "string"], maxLength=63, title="Only this application",
                             description="Only sessions with this application_name (empty: any application)."),
        "include_superuser": Param(False, type="boolean", title="Include superuser sessions",
                                   description="Also terminate superusers' idle sessions (off: they are left alone)."),
    },
    doc_md="""
### Terminate idle PostgreSQL sessions (runbook: Alert Response Procedures > Alert: PostgresHighConnections)
Use when `postgres.connections` warns: connections near `max_connections`, usually idle sessions a
client forgot, or transactions left open (idle in transaction holds locks and blocks vacuum).

- **plan**: the client sessions of the warehouse database idle or idle in transaction for at least
  `idle_minutes` (optionally of one `application`), oldest first, with pid, user, application and age.
  Never a replication connection, never this package's own sessions (application_name `streamflow_ops*`),
  never a superuser's unless `include_superuser`. Refused if our user may not signal other backends, and
  `include_superuser` is refused unless our user is a superuser (PostgreSQL refuses the rest).
- **approve** (real runs only): the plan is shown in the approval form; Reject or no answer in 1 h: nothing done.
- **act**: `pg_terminate_backend` for each approved session that is still the same backend and still idle;
  the audit row lists the pids asked, terminated, failed and left. An approval is acted on once.
- **verify**: `postgres.connections` before and after. Audit: `ops.maintenance_audit` (`terminate_sessions`).
""",
)
def remediate_postgres_connections():
    remediation_flow("remediate_postgres_connections", "Terminate these idle PostgreSQL sessions?")


remediate_postgres_connections()
