"""Defaults every StreamFlow Ops DAG shares, so that DAG files stay pure wiring."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param, conf

OWNER = "streamflow-sre"
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
}


# Where destructive steps run on a distributed Airflow (CeleryExecutor): their own queue, so that a
# deployment can give them a dedicated worker, and a pool of one slot, so that the nightly window and a
# manual maintenance DAG never act on the warehouse at the same time. Deployment settings, read when the
# DAG is parsed from the Airflow config section [streamflow_ops] (env AIRFLOW__STREAMFLOW_OPS__<KEY>),
# like `worker_queues`. The queue defaults to Airflow's own default queue: a deployment that has not set up
# a worker for a dedicated queue must still get its nightly window run, not a window queued forever.
# Pools are created with airflow_settings.yaml. LocalExecutor ignores queues.
MAINTENANCE_POOL = "streamflow_maintenance"


def maintenance_task_args() -> dict[str, str]:
    """queue= and pool= of a destructive step (retention, vacuum, gold refresh, backup)."""
    default_queue = conf.get("operators", "default_queue", fallback="default")
    return {"queue": conf.get("streamflow_ops", "maintenance_queue", fallback=default_queue),
            "pool": conf.get("streamflow_ops", "maintenance_pool", fallback=MAINTENANCE_POOL)}


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
