"""Defaults every StreamFlow Ops DAG shares, so that DAG files stay pure wiring."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param, conf

from streamflow_ops.params import undeclared_keys

OWNER = "streamflow-sre"
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def refuse_undeclared_conf(context) -> None:
    """Every task's pre_execute (DEFAULT_ARGS): a run whose conf has keys its DAG does not declare is refused.

    Airflow merges undeclared conf keys into the params without a schema (a Param schema cannot reject
    extra keys), so a typo or a key meant for another DAG would silently change nothing, or something.
    Every task refuses, not only the first: steps that run after anything (trigger_rule all_done) must not
    act on a run that was refused. AirflowFailException: retrying cannot fix the conf.
    """
    from airflow.sdk.exceptions import AirflowFailException

    dag = context["dag"]
    unknown = undeclared_keys(context["dag_run"].conf, dag.params)
    if unknown:
        raise AirflowFailException(f"conf keys {unknown} are not params of {dag.dag_id} (it takes "
                                   f"{sorted(dag.params) or 'none'}): refused, nothing was done")


DEFAULT_ARGS = {
    "owner": OWNER,
    "pre_execute": refuse_undeclared_conf,
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
    """SPEC: a run's reference time is its logical date, or its run_after where the logical date is null.

    A logical date later than run_after is refused (AirflowFailException: no retries): Airflow 3.3 accepts
    a future date at trigger time, and a year typed ahead would move every cutoff into the kept days.
    Every caller asks for the reference time before any destructive work, so the refusal changes nothing.
    """
    from airflow.sdk.exceptions import AirflowFailException

    logical, run_after = context.get("logical_date"), context["dag_run"].run_after
    if logical is not None and run_after is not None and logical > run_after:
        raise AirflowFailException(
            f"logical date {logical.isoformat()} is later than this run's run_after {run_after.isoformat()}: "
            f"refused before any work, nothing was changed. Trigger again without a future logical date.")
    return logical or run_after
