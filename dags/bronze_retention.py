"""Manual bronze retention: the window's step, on demand, dry run by default.

Runbook: Maintenance Windows > Daily Maintenance (03:00 UTC).
"""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.maintenance.operators import BronzeRetentionOperator


@dag(
    dag_id="bronze_retention",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "manual"],
    params={
        "dry_run": dry_run_param(True, "count the rows that would be deleted and kept"),
        "retention_days": Param(7, type="integer", minimum=1, maximum=365, title="Retention (days)",
                                description="Delete promoted bronze rows strictly older than the run's "
                                            "reference time minus this many days."),
        "batch_size": Param(10_000, type="integer", minimum=1, maximum=1_000_000, title="Batch size",
                            description="Rows per delete transaction: smaller batches hold locks for less time."),
    },
    doc_md="""
### Bronze retention (manual; runbook: Maintenance Windows > Daily Maintenance (03:00 UTC))
Deletes `bronze.transactions` rows whose `transaction_time` is strictly older than the run's reference
time (logical date, or run_after) minus `retention_days`, **and only rows already in
`silver.transactions_enriched`**. Older rows that never reached silver are kept and reported as a
warning with the oldest one: Kafka keeps 3 days, bronze is their last copy.

Deletes in batches of `batch_size`, each its own short transaction (lock_timeout, statement_timeout);
safe to kill and re-run. Range partitions wholly past the cutoff and fully promoted are detached and
dropped. **Dry run by default**: the log and XCom say `DRY RUN: would delete N rows (M unpromoted rows
older than cutoff kept)`. Skipped, with the reason, when the maintenance window (or another run) holds
the advisory lock, replication lag is over 100 MB or connections are at 95 %. Audit: `ops.maintenance_audit`.
""",
)
def bronze_retention():
    BronzeRetentionOperator(task_id="bronze_retention")


bronze_retention()
