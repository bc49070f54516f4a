"""Defaults every StreamFlow Ops DAG shares, so that DAG files stay pure wiring."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param

OWNER = "streamflow-sre"
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
}


# What every StreamFlow Ops DAG shares: one run at a time, no catchup, the same owner and retries.
COMMON_DAG_ARGS = {"start_date": START_DATE, "catchup": False, "max_active_runs": 1, "default_args": DEFAULT_ARGS}


def dry_run_param(default: bool, what: str) -> Param:
    return Param(
        default, type="boolean", title="Dry run",
        description=f"When on, {what}: report exactly what would happen and change nothing.",
    )


def reference_time(context) -> datetime:
    """SPEC: a run's reference time is its logical date, or its run_after where the logical date is null."""
    return context.get("logical_date") or context["dag_run"].run_after
