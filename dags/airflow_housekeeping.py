"""Airflow's own housekeeping: old task logs and metadata.

Runbook: Maintenance Windows > Daily Maintenance (03:00 UTC).
"""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.housekeeping.taskgroups import housekeeping_group


@dag(
    dag_id="airflow_housekeeping",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "airflow"],
    params={
        "dry_run": dry_run_param(True, "log files that would be deleted are listed and `airflow db clean` "
                                       "runs with --dry-run"),
        "log_retention_days": Param(
            None, type=["null", "integer"], minimum=1, maximum=3650, title="Task log retention (days)",
            description="Delete task log files last written more than this many days before the run. "
                        "Empty: housekeeping.log_retention_days (default 30).",
        ),
        "metadata_retention_days": Param(
            None, type=["null", "integer"], minimum=1, maximum=3650, title="Metadata retention (days)",
            description="`airflow db clean --clean-before-timestamp` this many days before the run. "
                        "Empty: housekeeping.metadata_retention_days (default 90).",
        ),
    },
    doc_md="""
### airflow_housekeeping (manual; dry run by default)
Runbook: Maintenance Windows > Daily Maintenance (03:00 UTC).
Works on Airflow 3, where task code may not open the metadata database.

- **task_logs[_QUEUE]**: deletes `*.log` files under `dag_id=*/` in `housekeeping.log_folder` older
  than the retention, on the worker it runs on. One task per worker queue listed in the Airflow config
  `[streamflow_ops] worker_queues` (env `AIRFLOW__STREAMFLOW_OPS__WORKER_QUEUES`), so every Celery
  worker pool is reached. Dry run lists the files and changes nothing.
- **metadata_cleanup**: a KubernetesPodOperator running `airflow db clean --clean-before-timestamp ...
  --skip-archive --yes` (plus `--dry-run`) in the scheduler's image (`housekeeping.scheduler_image`),
  with `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN` from the `housekeeping.metadata_secret` secret.
""",
)
def airflow_housekeeping():
    housekeeping_group()


airflow_housekeeping()
