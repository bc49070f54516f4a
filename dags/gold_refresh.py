"""Manual gold refresh: the window's step, on demand.

Runbook: Maintenance Windows > Daily Maintenance (03:00 UTC).
"""
from __future__ import annotations

from airflow.sdk import dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.maintenance.operators import GoldRefreshOperator


@dag(
    dag_id="gold_refresh",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "manual"],
    params={"dry_run": dry_run_param(False, "list the views, their order and refresh method")},
    doc_md="""
### Gold refresh (manual; runbook: Maintenance Windows > Daily Maintenance (03:00 UTC))
Finds the materialized views in the gold schema, orders them by their dependencies (pg_depend /
pg_rewrite: a view is refreshed after every view it reads) and refreshes each one: `CONCURRENTLY`
when the view is populated and has a usable unique index (readers are not blocked), otherwise a plain
refresh bounded by lock_timeout. Reports the time per view; one `ops.maintenance_audit` row per view.
""",
)
def gold_refresh():
    GoldRefreshOperator(task_id="gold_refresh")


gold_refresh()
