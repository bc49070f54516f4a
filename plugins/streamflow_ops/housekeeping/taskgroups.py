"""The housekeeping step as a task group any DAG can use (airflow_housekeeping, the nightly window).

Log cleanup reaches every worker by static fan-out: one task per worker queue, each routed with
`queue=` (Celery). The queues are deployment settings read at parse time from the Airflow config
`[streamflow_ops] worker_queues` (env AIRFLOW__STREAMFLOW_OPS__WORKER_QUEUES, comma-separated; one
queue per worker or worker pool); no queues means one task on the default queue (LocalExecutor,
a single worker). Every log task warns when the config's housekeeping.worker_queues names a queue
the DAG was not wired for.
"""
from __future__ import annotations

import re
import socket
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from airflow.sdk import conf, get_current_context, task, task_group

from streamflow_ops.config import get_config
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.dag_defaults import reference_time
from streamflow_ops.housekeeping.logs import clean_task_logs
from streamflow_ops.housekeeping.metadata import MetadataCleanupOperator
from streamflow_ops.report import format_checks
from streamflow_ops.results import CheckResult, Status, describe_error
from streamflow_ops.runbook import section
from streamflow_ops.store import Actor, audited, ensure_ops_schema

AUDIT_ACTION = "task_logs"
AUDITED_PATHS = 200  # the first paths removed go into the audit row's details; the count is always exact


def wired_queues() -> list[str]:
    raw = conf.get("streamflow_ops", "worker_queues", fallback="") or ""
    return [q.strip() for q in raw.split(",") if q.strip()]


@task
def task_logs(queue: str | None, wired: list[str]) -> dict[str, Any]:
    """Delete (or, dry run, list) task log files older than the retention on this worker.

    Like every destructive step, it leaves an ops.maintenance_audit row (also on a dry run) and does
    nothing when that row cannot be written: PostgreSQL unreachable means skipped, with the reason.
    """
    config = get_config()
    ctx = get_current_context()
    reference = reference_time(ctx)  # a future logical date is refused before anything is touched
    params = ctx["params"]
    days = params.get("log_retention_days") or config.housekeeping.log_retention_days
    dry_run = bool(params.get("dry_run", False))
    root = Path(config.housekeeping.log_folder)
    unreached = sorted(set(config.housekeeping.worker_queues) - set(wired))
    outcome = {"queue": queue, "dry_run": dry_run, "folder": str(root), "retention_days": days,
               "unreached_queues": unreached}
    ti = ctx["ti"]
    actor = Actor(ti.dag_id, ti.run_id, ti.task_id, config.warehouse.ops_schema)
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(warehouse_connection(config.warehouse))
        except Exception as exc:  # noqa: BLE001 - no audit trail, no deletion: skipped, with the reason
            reason = f"PostgreSQL ({config.warehouse.conn_id}) is unreachable: {describe_error(exc)}"
            print(f"skipped: {reason}")
            return {**outcome, "skipped": reason, "removed": [], "bytes": 0, "kept": 0}
        ensure_ops_schema(conn, config.warehouse.ops_schema)
        with audited(conn, actor, AUDIT_ACTION, f"{socket.gethostname()}:{root}", dry_run) as record:
            plan = clean_task_logs(root, reference, days, dry_run)
            record.rows_affected = len(plan.remove)
            record.details.update(retention_days=days, bytes=plan.bytes, kept=len(plan.keep),
                                  paths=[f.path for f in plan.remove[:AUDITED_PATHS]])
    if unreached:
        print(f"WARNING: housekeeping.worker_queues lists {unreached}, but this DAG has no log task for them; "
              f"set AIRFLOW__STREAMFLOW_OPS__WORKER_QUEUES on the DAG processor")
    verb = "would remove" if dry_run else "removed"
    for f in plan.remove:
        print(f"{verb}: {f.path}")
    print(f"{verb} {len(plan.remove)} files ({plan.bytes} bytes) older than {days} days under {root}; "
          f"kept {len(plan.keep)}")
    return {**outcome, "removed": [f.path for f in plan.remove], "bytes": plan.bytes, "kept": len(plan.keep)}


def housekeeping_group(group_id: str = "housekeeping", *, queues: list[str] | None = None,
                       metadata_optional: bool = False, fail_on_problem: bool = True):
    """Build the group: task_logs per queue (None: from the Airflow config) and metadata_cleanup.

    metadata_optional: report metadata cleanup as skipped, not failed, where it is not configured.
    fail_on_problem: the summary fails when a part failed, so that a DAG whose last task is the summary
    ends red (airflow_housekeeping). The nightly window passes False: its report fails the run instead,
    after reading the summary's results.
    """
    queues = wired_queues() if queues is None else queues

    @task_group(group_id=group_id)
    def housekeeping():
        if queues:
            logs = [task_logs.override(task_id=f"task_logs_{re.sub(r'[^A-Za-z0-9_]', '_', q)}", queue=q)(q, queues)
                    for q in queues]
        else:
            logs = [task_logs.override(task_id="task_logs")(None, queues)]
        metadata = MetadataCleanupOperator(task_id="metadata_cleanup", skip_when_unconfigured=metadata_optional)
        done = summary([log.operator.task_id for log in logs], metadata.task_id, fail_on_problem)
        [*logs, metadata] >> done

    return housekeeping()


def part_results(log_outcomes: dict[str, dict[str, Any] | None], metadata_task_id: str,
                 metadata: dict[str, Any] | None) -> list[CheckResult]:
    """Pure: the log tasks' outcomes by task id and the metadata cleanup's CheckResult -> one CheckResult
    per part. A part without a result failed or did not run (critical); a log task that found configured
    worker queues this DAG has no task for is a warning (their logs are never cleaned)."""
    name = "maintenance.housekeeping"
    results = []
    for task_id, outcome in log_outcomes.items():
        if outcome is None:
            results.append(CheckResult(name, Status.CRITICAL, subject=task_id, runbook=section(name),
                                       message=f"{task_id} failed or did not run: see its task log"))
            continue
        if outcome.get("skipped"):
            results.append(CheckResult(name, Status.SKIPPED, subject=outcome["queue"] or "task logs",
                                       runbook=section(name), message=f"skipped: {outcome['skipped']}"))
            continue
        verb = "would remove" if outcome["dry_run"] else "removed"
        message = (f"{verb} {len(outcome['removed'])} task log files ({outcome['bytes']} bytes) "
                   f"older than {outcome['retention_days']} days under {outcome['folder']}")
        unreached = outcome.get("unreached_queues") or []
        if unreached:
            message += (f"; housekeeping.worker_queues lists {unreached} but this DAG has no log task for them "
                        f"(set AIRFLOW__STREAMFLOW_OPS__WORKER_QUEUES on the DAG processor)")
        results.append(CheckResult(name, Status.WARNING if unreached else Status.OK,
                                   subject=outcome["queue"] or "task logs", runbook=section(name), message=message))
    results.append(CheckResult.from_dict(metadata) if metadata else CheckResult(
        name, Status.CRITICAL, subject="metadata", runbook=section(name),
        message=f"{metadata_task_id} failed or did not run: see its task log"))
    return results


@task(task_id="summary", trigger_rule="all_done")
def summary(log_task_ids: list[str], metadata_task_id: str, fail_on_problem: bool) -> list[dict[str, Any]]:
    """One CheckResult per part, for the window's report; a part without a result failed or did not run.

    With fail_on_problem, a failed part fails this task after the results are logged: a trigger rule of
    all_done must not turn a failed cleanup into a green run.
    """
    from airflow.sdk.exceptions import AirflowFailException

    ti = get_current_context()["ti"]
    results = part_results({task_id: ti.xcom_pull(task_ids=task_id) for task_id in log_task_ids},
                           metadata_task_id, ti.xcom_pull(task_ids=metadata_task_id))
    print(format_checks("airflow housekeeping", results))
    failed = [r.subject for r in results if r.status == Status.CRITICAL]
    if fail_on_problem and failed:
        raise AirflowFailException(f"housekeeping failed: {', '.join(failed)} (see the summary above)")
    return [r.to_dict() for r in results]
