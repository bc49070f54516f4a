"""The nightly maintenance window, one run at a time.

Runbook: Maintenance Windows > Daily Maintenance (03:00 UTC).
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, chain, dag

from streamflow_ops.config import parse_time_config
from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.maintenance.deadline import notify_slack_overdue
from streamflow_ops.maintenance.hardstop import apply_hard_stop, notify_window_failed
from streamflow_ops.maintenance.operators import BronzeRetentionOperator, GoldRefreshOperator, VacuumOperator
from streamflow_ops.backup.taskgroups import backup_group
from streamflow_ops.housekeeping.taskgroups import housekeeping_group
from streamflow_ops.maintenance.steps import preflight, report, runs_after_anything, task_ids

# Expected 20-30 min: 45 min after the run was queued, #streamflow-alerts hears about it.
WINDOW_DEADLINE = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_QUEUED_AT,
    interval=timedelta(minutes=45),
    callback=AsyncCallback(notify_slack_overdue, kwargs={
        "slack_webhook_conn_id": "slack_streamflow_alerts",
        "text": ":warning: maintenance_tasks has run for 45 minutes (expected 20-30): check the window "
                "before it collides with the morning load (runbook: "
                "Maintenance Windows > Daily Maintenance (03:00 UTC)).",
    }),
)

DOC = """
### Nightly maintenance window (03:00 UTC)
The runbook's manual nightly routine (Maintenance Windows > Daily Maintenance (03:00 UTC)), automatic,
safe and audited. One run at a time (`max_active_runs=1`), no catchup, a deadline alert to Slack 45 minutes
after the run was queued, and a **hard stop**: the run ends `maintenance.hard_stop_minutes` (120) after it
started (`dagrun_timeout`; every task's `execution_timeout` fits its retries inside it), and a cut run
(which never reaches its report) is posted to Slack by the DAG's failure callback (see docs/maintenance.md).
Trigger with `{"dry_run": true}` to see what every step would do without changing anything.

| step | what | runbook |
|---|---|---|
| `preflight` | PostgreSQL, Kafka and Flink reachable; the gate: replication lag <= 100 MB, connections < 95 %, no other maintenance run holding the advisory lock, no backup running | Maintenance Windows > Daily Maintenance (03:00 UTC) |
| `bronze_retention` | deletes promoted `bronze.transactions` rows older than 7 days (from the logical date); whole partitions when partitioned; unpromoted rows are kept and reported | Maintenance Windows > Daily Maintenance (03:00 UTC) |
| `vacuum` | `VACUUM (ANALYZE)` on the tables with many dead tuples; `FREEZE` near wraparound | PostgreSQL Operations > Manual Vacuum |
| `gold_refresh` | refreshes the gold materialized views in dependency order, `CONCURRENTLY` where possible | Maintenance Windows > Daily Maintenance (03:00 UTC) |
| `backup` | a CloudNativePG `Backup` (the full backup; recorded `completed`) when `streamflow_kubernetes` is defined, else a `pg_dump` of bronze, silver and gold whose restore verification runs right after the window (`postgres_backup_verify`, on the backup's asset: `unverified`, pending, until it passes); an audit row per backup; an unverified (verify=false) or > 10 min backup is a warning in the report (docs/backups.md) | Backup and Recovery > Manual Backup Procedures |
| `housekeeping` | task logs older than `housekeeping.log_retention_days` on every worker queue; `airflow db clean` in a pod (skipped, with the reason, where no scheduler image or Kubernetes connection is configured) | Maintenance Windows > Daily Maintenance (03:00 UTC) |
| `report` | one report of every step: task log, XCom `return_value`, Slack `slack_streamflow_alerts` | Maintenance Windows > Daily Maintenance (03:00 UTC) |

Each destructive step re-checks the gate and takes the PostgreSQL advisory lock itself; when it
cannot, it is **skipped** with the reason in the report, and changes nothing. Every action writes a
row to `ops.maintenance_audit`. The same operators run the manual DAGs `bronze_retention`,
`postgres_vacuum` and `gold_refresh`. A failed step fails the run after the report is sent.
"""


def build(deadline: DeadlineAlert | None = WINDOW_DEADLINE):
    """The window DAG. Tests build it without the deadline: dag.test() on 3.3.2 crashes on a DAG with one.

    The hard stop (dagrun_timeout, every task's execution_timeout) is read at parse time:
    `maintenance.hard_stop_minutes` from the defaults or the Variable held in the environment."""

    @dag(
        dag_id="maintenance_tasks",
        schedule="0 3 * * *",
        **COMMON_DAG_ARGS,
        deadline=deadline,
        on_failure_callback=notify_window_failed,
        tags=["streamflow", "maintenance"],
        params={"dry_run": dry_run_param(False, "every step only reports")},
        doc_md=DOC,
    )
    def maintenance_tasks():
        retention = BronzeRetentionOperator(task_id="bronze_retention")
        vacuum = VacuumOperator(task_id="vacuum", trigger_rule="all_done")
        gold = GoldRefreshOperator(task_id="gold_refresh", trigger_rule="all_done")
        backup = runs_after_anything(backup_group(verify_after=True))
        housekeeping = runs_after_anything(housekeeping_group(metadata_optional=True, fail_on_problem=False))
        steps = [retention, vacuum, gold, backup, housekeeping]
        chain(preflight(), *steps, report(task_ids(*steps)))

    return apply_hard_stop(maintenance_tasks(), parse_time_config().maintenance.hard_stop_minutes)


maintenance_window = build()
