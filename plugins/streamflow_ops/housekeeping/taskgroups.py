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
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import conf, get_current_context, task, task_group

from streamflow_ops.housekeeping.metadata import MetadataCleanupPodOperator


def wired_queues() -> list[str]:
    raw = conf.get("streamflow_ops", "worker_queues", fallback="") or ""
    return [q.strip() for q in raw.split(",") if q.strip()]


def reference_time(context) -> datetime:
    """The run's logical date, or its run_after when the logical date is null (SPEC)."""
    return context.get("logical_date") or context["dag_run"].run_after or datetime.now(timezone.utc)


@task
def task_logs(queue: str | None, wired: list[str]) -> dict[str, Any]:
    """Delete (or, dry run, list) task log files older than the retention on this worker."""
    from pathlib import Path

    from streamflow_ops.config import get_config
    from streamflow_ops.housekeeping.logs import clean_task_logs

    config = get_config()
    ctx = get_current_context()
    params = ctx["params"]
    days = params.get("log_retention_days") or config.housekeeping.log_retention_days
    dry_run = bool(params.get("dry_run", False))
    root = Path(config.housekeeping.log_folder)
    plan = clean_task_logs(root, reference_time(ctx), days, dry_run)
    unreached = sorted(set(config.housekeeping.worker_queues) - set(wired))
    if unreached:
        print(f"WARNING: housekeeping.worker_queues lists {unreached}, but this DAG has no log task for them; "
              f"set AIRFLOW__STREAMFLOW_OPS__WORKER_QUEUES on the DAG processor")
    verb = "would remove" if dry_run else "removed"
    for f in plan.remove:
        print(f"{verb}: {f.path}")
    print(f"{verb} {len(plan.remove)} files ({plan.bytes} bytes) older than {days} days under {root}; "
          f"kept {len(plan.keep)}")
    return {"queue": queue, "dry_run": dry_run, "folder": str(root), "retention_days": days,
            "removed": [f.path for f in plan.remove], "bytes": plan.bytes, "kept": len(plan.keep),
            "unreached_queues": unreached}


def housekeeping_group(group_id: str = "housekeeping", *, queues: list[str] | None = None):
    """Build the group: task_logs per queue (None: from the Airflow config) and metadata_cleanup."""
    queues = wired_queues() if queues is None else queues

    @task_group(group_id=group_id)
    def housekeeping():
        if queues:
            for queue in queues:
                slug = re.sub(r"[^A-Za-z0-9_]", "_", queue)
                task_logs.override(task_id=f"task_logs_{slug}", queue=queue)(queue, queues)
        else:
            task_logs.override(task_id="task_logs")(None, queues)
        MetadataCleanupPodOperator(task_id="metadata_cleanup")

    return housekeeping()
