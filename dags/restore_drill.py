"""Weekly restore drill (SPEC "Backups"): only a restore proves a backup.

Runbook: Backup and Recovery > Recovery Procedures.
"""
from __future__ import annotations

from airflow.sdk import dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.recovery.tasks import cnpg_drill, file_drill


@dag(
    dag_id="restore_drill",
    schedule="0 4 * * 0",
    **COMMON_DAG_ARGS,
    tags=["streamflow", "backup", "recovery"],
    params={"dry_run": dry_run_param(False, "name the backups that would be restored and restore nothing")},
    doc_md="""
### restore_drill (Sunday 04:00 UTC; runbook: Backup and Recovery > Recovery Procedures)
Restores the newest backup of each method and compares it with what the backup recorded:
- `pg_dump`, `gold_export`: the newest finished folder in `backup.folder`, restored into a scratch
  database (dropped afterwards) and compared with its manifest (the nightly verification's code);
- `cnpg`: a scratch `Cluster` bootstrapped with `bootstrap.recovery` from the newest completed `Backup`
  (`recoveryTarget.targetImmediate`), waited for by a deferred sensor; gold views compared exactly with the
  live warehouse, bronze and silver must hold every live row written before the backup started. The
  scratch Cluster is **always deleted** (`cnpg_cleanup` runs whatever failed).
One `ops.maintenance_audit` row per drill (`action='restore_drill'`, outcome `passed`/`failed`, the backup,
the restore's duration and what was compared); `postgres.restore_drill_age` warns after 8 days and is
critical after 15 or when the last drill failed. A method without any backup is skipped. A mismatch fails,
naming the relation. docs/recovery.md tells the on-call how to use the drill's output.
""",
)
def restore_drill():
    for method in ("pg_dump", "gold_export"):
        file_drill(method)
    cnpg_drill()


restore_drill()
