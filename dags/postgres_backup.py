"""On-demand PostgreSQL backup with restore verification (runbook section 2.4)."""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.backup.taskgroups import backup_group
from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.maintenance.params import IDENTIFIER


@dag(
    dag_id="postgres_backup",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "postgres", "backup"],
    params={
        "dry_run": dry_run_param(False, "the backup is only planned (what would be dumped or created, "
                                        "which old folders retention would remove)"),
        "method": Param(
            None, type=["null", "string"], enum=[None, "cnpg", "pg_dump"], title="Method",
            description="cnpg: a CloudNativePG Backup CR (physical base backup of the whole cluster). "
                        "pg_dump: a logical dump of the schemas below into backup.folder. "
                        "Empty: the config's backup.method.",
        ),
        "schemas": Param(
            None, type=["null", "array"], items={"type": "string", "pattern": IDENTIFIER.pattern},
            title="Schemas (pg_dump)",
            description="Schemas to dump, e.g. [\"gold\"]. Schemas their views read from are added so that "
                        "the dump restores. Empty: the config's backup.schemas (default gold).",
        ),
        "verify": Param(
            True, type="boolean", title="Verify",
            description="pg_dump: restore into a scratch database (always dropped) and compare row and "
                        "object counts with the manifest. cnpg: check the Backup CR's WAL range and the "
                        "Cluster's last successful backup.",
        ),
    },
    doc_md="""
### postgres_backup (manual)
A backup you can trust, on demand. Runbook 2.4.

- **cnpg**: creates a `postgresql.cnpg.io/v1` `Backup` for the configured cluster (what
  `kubectl cnpg backup` does), waits in the triggerer for `status.phase == completed` (fails quoting
  `status.error`, times out after `backup.timeout_s`), then checks `beginWal`/`endWal` and the Cluster's
  `status.lastSuccessfulBackup`.
- **pg_dump**: dumps the schemas (plus what their views read) from one snapshot into
  `backup.folder/streamflow-backup-<UTC stamp>/` with a `manifest.json` (sizes, per-table and
  materialized-view row counts, sha256, server version); restores it into a scratch database and
  compares; then deletes folders older than `backup.keep_days`, never the newest good one.

Every successful backup is one `ops.maintenance_audit` row (`action = 'backup'`, `outcome = 'success'`),
which the `postgres.backup_age` health check reads. Bad input fails before any work, naming the param.
""",
)
def postgres_backup():
    backup_group()


postgres_backup()
