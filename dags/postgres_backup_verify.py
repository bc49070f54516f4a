"""Restore verification of the nightly window's pg_dump, right after the window (SPEC "Backups")."""
from __future__ import annotations

from airflow.sdk import dag

from streamflow_ops.backup.taskgroups import BACKUP_ASSET, verify_pending_backups
from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param


@dag(
    dag_id="postgres_backup_verify",
    schedule=[BACKUP_ASSET],
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "postgres", "backup"],
    params={"dry_run": dry_run_param(False, "the pending backups are only listed (nothing restored)")},
    doc_md="""
### postgres_backup_verify (on the window's backup asset)
Runs when the nightly window's backup step has left a `pg_dump` (bronze, silver and gold: the standalone
fallback without Kubernetes) whose verification is pending. At production volume that restore roughly
doubles the backup step (bench/results/window_scale.md), so it runs here, after the window, instead of
inside it.

For every folder in `backup.folder` whose `manifest.json` says `pending` (oldest first): sha256, a full
`pg_restore` into a scratch database (`streamflow_verify_*`, given the source's TimeZone and DateStyle,
always dropped), every table's row count against the dump's own snapshot, materialized views present,
populated and refreshable, object counts. Only then is the backup `verified` (manifest, and an
`ops.maintenance_audit` row `action='backup'`, `outcome='verified'`) and folder retention runs. Until then
it is `unverified` with `details.verification = "pending"`, and `postgres.backup_age` warns. A mismatch
fails without retries, naming the relation; that backup is `failed` and its folder removed. An
unreachable server is retried; the dump stays pending. Nothing pending: nothing to do. Trigger it by hand
(`dry_run` lists what is pending) after a window whose verification did not run.
""",
)
def postgres_backup_verify():
    verify_pending_backups()


postgres_backup_verify()
