"""Task factories for the window's own steps, so that the DAG file stays pure wiring."""
from __future__ import annotations

from airflow.sdk import get_current_context, task

from streamflow_ops.config import get_config
from streamflow_ops.maintenance.window import TITLE, notify_slack, preflight_results, step_results
from streamflow_ops.metrics import push_window_metrics
from streamflow_ops.report import format_checks
from streamflow_ops.results import Status


@task(task_id="preflight")
def preflight() -> list[dict]:
    """Reachability and the gate, for the report; destructive steps re-check the gate themselves."""
    results = preflight_results(get_config())
    print(format_checks("maintenance preflight", results))
    return [r.to_dict() for r in results]


def runs_after_anything(group):
    """A window step starts whatever happened before it: a failed vacuum must not stop the backup."""
    for root in group.roots:
        root.trigger_rule = "all_done"
    return group


@task(task_id="report", trigger_rule="all_done")
def report(step_ids: list[str]) -> str:
    """Collect every step's result into one report: task log, XCom and Slack. Fails if a step failed."""
    from airflow.sdk.exceptions import AirflowFailException

    ti = get_current_context()["ti"]
    steps = step_results({task_id: ti.xcom_pull(task_ids=task_id) for task_id in step_ids})
    text = format_checks(TITLE, step_results({"preflight": ti.xcom_pull(task_ids="preflight")}) + steps)
    print(text)
    print(notify_slack(get_config().alerting, text))
    print(push_window_metrics(get_config(), steps, get_current_context()))  # refused: fails, retried
    failed = [r.check_name for r in steps if r.status == Status.CRITICAL]
    if failed:
        raise AirflowFailException(f"maintenance steps failed: {', '.join(failed)} (report sent)")
    return text


def task_ids(*steps) -> list[str]:
    """The task ids whose XComs the report reads: operators, TaskFlow outputs, or a task group's leaves."""
    ids: list[str] = []
    for step in steps:
        if hasattr(step, "leaves"):  # a TaskGroup: its last tasks carry the step's result
            ids += [leaf.task_id for leaf in step.leaves]
        else:
            ids.append(getattr(step, "operator", step).task_id)
    return ids
