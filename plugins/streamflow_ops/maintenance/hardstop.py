"""The window's hard stop (SPEC "The window's hard stop"): `maintenance_tasks` ends by
`maintenance.hard_stop_minutes` after it started, whatever hangs.

The scheduler enforces it twice: `dagrun_timeout` on the run, and an `execution_timeout` on every task
small enough that all of its attempts and the waits between them fit inside the hard stop, so a retried
hang (a VACUUM at its statement timeout, tried three times) cannot outlive the window on its own either.
A run that is cut never reaches its report step, so the DAG's failure callback tells Slack.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from streamflow_ops import registry
from streamflow_ops.config import StreamflowOpsConfig, get_config
from streamflow_ops.maintenance.window import notify_slack
from streamflow_ops.timeutil import human_duration

log = logging.getLogger(__name__)
# The failure callback's reason when a task failed and the run went on to its report (which posted).
REPORTED = "task_failure"


@dataclass(frozen=True)
class TaskBudget:
    """What one task may spend: each attempt, and each wait before a retry (also the backoff's cap)."""

    execution_timeout: timedelta
    retry_delay: timedelta

    def worst_case(self, retries: int) -> timedelta:
        """Every attempt timing out and every wait taken: what the task can cost the window at most."""
        return (retries + 1) * self.execution_timeout + retries * self.retry_delay


def task_budget(hard_stop: timedelta, retries: int, retry_delay: timedelta) -> TaskBudget:
    """Pure: the longest whole-second execution_timeout whose retries+1 attempts and waits fit the hard stop.

    The waits keep the task's retry_delay, capped so that together they take at most a tenth of the hard
    stop (a tiny hard stop keeps tiny waits instead of a negative timeout).
    """
    delay = min(retry_delay, hard_stop / (10 * max(retries, 1)))
    seconds = math.floor((hard_stop - retries * delay).total_seconds() / (retries + 1))
    return TaskBudget(timedelta(seconds=max(seconds, 1)), delay)


def apply_hard_stop(dag, hard_stop_minutes: float):
    """Wire the hard stop into a built DAG: dagrun_timeout, and every task's execution_timeout and waits.

    A task's own smaller execution_timeout stays. max_retry_delay caps the exponential backoff at the
    budgeted wait, so the arithmetic holds for every retry, not only the first.
    """
    hard_stop = timedelta(minutes=hard_stop_minutes)
    dag.dagrun_timeout = hard_stop
    for task in dag.tasks:
        budget = task_budget(hard_stop, task.retries, task.retry_delay)
        own = task.execution_timeout
        task.execution_timeout = budget.execution_timeout if own is None else min(own, budget.execution_timeout)
        task.retry_delay = task.max_retry_delay = budget.retry_delay
    return dag


def window_failed_text(dag_id: str, run_id: str | None, reason: str | None, hard_stop: timedelta | None) -> str:
    """Pure: what Slack hears when the window run failed; a cut (`timed_out`) says so and what it means."""
    limit = f"its hard stop ({human_duration(hard_stop.total_seconds())} after it started)" if hard_stop else \
        "its hard stop"
    if reason == "timed_out":
        what = (f"was CUT at {limit}: the step that was running was stopped, later steps did not run and the "
                f"window report was not sent. Look for ops.maintenance_audit rows still 'in progress'")
    else:
        what = f"failed ({reason or 'unknown reason'}; {limit}): read the window report and the failed step's log"
    return f"{dag_id} run {run_id} {what}. Runbook: {registry.MAINTENANCE_REPORT.runbook}"


def notify_window_failed(context) -> None:
    """The window DAG's on_failure_callback: tell Slack that the run was cut (or failed without its report).

    A plain callable, not a notifier: a DAG-level notifier fails in dag.test() on Airflow 3.3.2, while a
    callable runs under both dag.test() and the scheduler (which calls it with reason `timed_out` when the
    dagrun_timeout cuts the run, the case where the report step never ran).
    """
    dag = context["dag"]
    if context.get("reason") == REPORTED:
        return  # a step failed and the run went on: the report step (all_done) already told Slack
    text = window_failed_text(dag.dag_id, context.get("run_id"), context.get("reason"), dag.dagrun_timeout)
    try:
        alerting = get_config().alerting
    except Exception as exc:  # noqa: BLE001 - a bad Variable must not also silence this message
        log.warning("config unreadable (%s): Slack connection from the defaults", exc)
        alerting = StreamflowOpsConfig().alerting
    log.warning("%s - %s", text, notify_slack(alerting, text))
