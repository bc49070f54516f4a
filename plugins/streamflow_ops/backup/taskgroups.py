"""The backup step as a task group any DAG can use (postgres_backup, the nightly maintenance window).

Params read at run time when the DAG has them (method, schemas, verify, dry_run); otherwise the
config (backup.*) decides. Shape: validate -> [pg_dump | cnpg_create -> cnpg_wait -> cnpg_verify]
-> result. The branch not taken is skipped; `result` runs when nothing failed, so a DAG can chain
further steps after the group.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import get_current_context, task, task_group

from streamflow_ops.kubernetes.cnpg_backup_sensor import CnpgBackupSensor


def _run_info():
    from streamflow_ops.maintenance.audit import Actor

    ctx = get_current_context()
    return Actor(dag_id=ctx["dag"].dag_id, run_id=ctx["run_id"], task_id=ctx["task_instance"].task_id)


def _fail_on_bad_input(fn, *args):
    from airflow.sdk.exceptions import AirflowFailException

    from streamflow_ops.backup.request import BackupInputError

    try:
        return fn(*args)
    except BackupInputError as exc:
        raise AirflowFailException(str(exc)) from None


def backup_group(group_id: str = "backup", *, deferrable: bool = True):
    """Build the backup task group in the current DAG; returns the group (chain it like a task)."""

    @task(task_id="validate")
    def validate() -> dict[str, Any]:
        """Refuse bad input (method, schemas, folder, Kubernetes connection) before any work."""
        from streamflow_ops.backup.request import check_cnpg_ready, check_pg_dump_ready, resolve_request
        from streamflow_ops.config import get_config
        from streamflow_ops.postgres.connection import warehouse_connection

        config = get_config()
        request = _fail_on_bad_input(resolve_request, get_current_context()["params"], config)
        dump_schemas: list[str] = []
        if request.method == "pg_dump":
            with warehouse_connection(config.warehouse) as conn:
                dump_schemas = _fail_on_bad_input(check_pg_dump_ready, request, config, conn)
        else:
            _fail_on_bad_input(check_cnpg_ready, config)
        return {**request.to_dict(), "dump_schemas": dump_schemas}

    @task(task_id="pg_dump")
    def pg_dump(request: dict[str, Any]) -> dict[str, Any]:
        """Dump, verify in a scratch database, audit, then apply retention."""
        from airflow.sdk.exceptions import AirflowSkipException

        from streamflow_ops.backup.request import BackupRequest
        from streamflow_ops.backup.runner import run_pg_dump
        from streamflow_ops.config import get_config

        if request["method"] != "pg_dump":
            raise AirflowSkipException(f"method is {request['method']}")
        return run_pg_dump(get_config(), BackupRequest.from_dict(request), request["dump_schemas"], _run_info())

    @task(task_id="cnpg_create")
    def cnpg_create(request: dict[str, Any]) -> str:
        """Create the CloudNativePG Backup CR (what `kubectl cnpg backup` does); returns its name."""
        from airflow.sdk.exceptions import AirflowSkipException

        from streamflow_ops.backup.cnpg import backup_body, backup_name, create_backup
        from streamflow_ops.backup.runner import record_backup
        from streamflow_ops.config import get_config

        if request["method"] != "cnpg":
            raise AirflowSkipException(f"method is {request['method']}")
        config = get_config()
        ctx = get_current_context()
        now = datetime.now(timezone.utc)
        body = backup_body(backup_name(config.backup.cnpg_cluster, ctx["run_id"], now), config,
                           labels={"streamflow-ops/dag": ctx["dag"].dag_id[:63]})
        if request["dry_run"]:
            record_backup(config, _run_info(), target=body["metadata"]["name"], dry_run=True, outcome="dry_run",
                          started_at=now, details={"method": "cnpg", "would_create": body})
            raise AirflowSkipException(f"dry run: would create {body}")
        created = create_backup(config, body)
        print(f"created CNPG Backup {config.backup.cnpg_namespace}/{created['metadata']['name']}")
        return created["metadata"]["name"]

    @task(task_id="cnpg_verify")
    def cnpg_verify(request: dict[str, Any], backup: dict[str, Any]) -> dict[str, Any]:
        """The CR completed with a WAL range, and the Cluster records it; then the audit row."""
        from streamflow_ops.backup.cnpg import backup_details, fetch_cluster, verify_backup
        from streamflow_ops.backup.runner import record_backup
        from streamflow_ops.backup.verify import VerificationError
        from streamflow_ops.config import get_config
        from streamflow_ops.timeutil import parse_time

        config = get_config()
        details = backup_details(backup)
        problems = verify_backup(backup, fetch_cluster(config)) if request["verify"] else []
        started_at = parse_time(details["startedAt"]) or datetime.now(timezone.utc)
        if problems:
            record_backup(config, _run_info(), target=details["location"], dry_run=False, outcome="failed",
                          started_at=started_at, details={**details, "problems": problems})
            raise VerificationError(f"CNPG backup {details['backup']} is not verified: " + "; ".join(problems))
        details["verified"] = request["verify"]
        record_backup(config, _run_info(), target=details["location"], dry_run=False, outcome="success",
                      started_at=started_at, details=details)
        return details

    @task(task_id="result", trigger_rule="none_failed")
    def result(dumped: dict[str, Any] | None, verified: dict[str, Any] | None) -> str:
        """One line for the run's report; a skipped branch passes None."""
        outcome = dumped or verified
        if outcome is None:
            return "backup: dry run (see the validate/pg_dump/cnpg_create logs for what would happen)"
        if outcome.get("dry_run"):
            return (f"backup (dry run): would dump {outcome['would_dump']} into {outcome['folder']}; "
                    f"retention would remove {outcome['would_remove']}")
        return (f"backup ({outcome['method']}): {outcome['location']}, {outcome.get('size_bytes')} bytes, "
                f"{outcome.get('duration_s')} s, verified={outcome.get('verified')}")

    @task_group(group_id=group_id)
    def backup():
        request = validate()
        dumped = pg_dump(request)
        name = cnpg_create(request)
        waited = CnpgBackupSensor(task_id="cnpg_wait", backup_name=name, deferrable=deferrable)
        result(dumped, cnpg_verify(request, waited.output))

    return backup()
