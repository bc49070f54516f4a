"""On-demand PostgreSQL backup with restore verification (runbook "Backup and Recovery")."""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.backup.taskgroups import backup_group
from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.params import IDENTIFIER


@dag(
    dag_id="postgres_backup",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "postgres", "backup"],
    params={
        "dry_run": dry_run_param(False, "the backup is only planned (what would be dumped or created, "
                                        "which old folders retention would remove)"),
        "method": Param(
            None, type=["null", "string"], enum=[None, "cnpg", "pg_dump", "gold_export"], title="Method",
            description="cnpg: a CloudNativePG Backup CR (physical base backup of the whole cluster). "
                        "gold_export: every gold view's rows as data from one snapshot, restorable alone "
                        "(no silver). pg_dump: a logical dump of the schemas below (plus what their views "
                        "read) into backup.folder. Empty: cnpg when the Kubernetes connection is defined "
                        "and no schemas are given; without it, a pg_dump of bronze, silver and gold (bronze is "
                        "the archive); with schemas, gold_export for [\"gold\"], else pg_dump.",
        ),
        "schemas": Param(
            None, type=["null", "array"], items={"type": "string", "pattern": IDENTIFIER.pattern},
            title="Schemas (pg_dump, gold_export)",
            description="Schemas to back up, e.g. [\"gold\"]. pg_dump adds the schemas their views read "
                        "from so that the dump restores. Empty: with no method, the whole warehouse (see "
                        "Method); with a method, the config's backup.schemas (default gold).",
        ),
        "verify": Param(
            True, type="boolean", title="Verify",
            description="pg_dump/gold_export: restore into a scratch database (always dropped) and compare "
                        "with what the dump's snapshot held. cnpg: check the Backup CR's WAL range and the "
                        "Cluster's last successful backup (recorded 'completed': nothing restored). false: "
                        "recorded as 'unverified', which postgres.backup_age does not count.",
        ),
    },
    doc_md="""
### postgres_backup (manual)
A backup you can trust, on demand (runbook "Backup and Recovery").

- **cnpg**: creates a `postgresql.cnpg.io/v1` `Backup` for the configured cluster (what
  `kubectl cnpg backup` does; the name is stable per run and task, so a retry adopts it), waits in the
  triggerer for `status.phase == completed` (fails quoting `status.error`, times out after
  `backup.timeout_s`), then checks `beginWal`/`endWal` and the Cluster's `status.lastSuccessfulBackup`;
  recorded `completed` (nothing was restored: only `restore_drill` proves it restores).
- **pg_dump of bronze, silver and gold** (no method, no schemas, no Kubernetes: the standalone fallback).
- **gold_export** (`schemas: ["gold"]` without Kubernetes): every gold relation's rows as
  data, from one snapshot, with row counts and a checksum per view; restores alone into an empty
  database; verified by restoring into a scratch database and comparing exactly.
- **pg_dump**: dumps the schemas (plus what their views read) from one snapshot; verified by a restore:
  tables exactly, materialized views present, populated and refreshable.

Files go to `backup.folder/streamflow-backup-<UTC stamp>/` with a `manifest.json`; folders older than
`backup.keep_days` are deleted after a verified backup, never the newest verified one. Each backup is one
`ops.maintenance_audit` row (`action = 'backup'`, outcome `verified`, `completed`, `unverified` or
`failed`), committed `in progress` before the work; `postgres.backup_age` counts `verified` and `completed`.
Bad input fails before any work, naming the param. More: docs/backups.md.
""",
)
def postgres_backup():
    backup_group()


postgres_backup()
