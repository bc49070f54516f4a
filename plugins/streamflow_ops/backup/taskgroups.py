"""The backup step as a task group any DAG can use (postgres_backup, the nightly maintenance window).

Params read at run time when the DAG has them (method, schemas, verify, dry_run); otherwise the
config (backup.*) decides (request.py: cnpg when Kubernetes is defined, else gold_export or pg_dump).
Shape: validate -> [dump | cnpg_create -> cnpg_wait -> cnpg_verify] -> result. The branch not taken is
skipped; `result` runs when nothing failed and returns CheckResults, so the window's report shows an
unverified or slow backup as a warning. Input errors and verification mismatches fail without retries.
With `verify_after` (the window) a pg_dump's restore verification runs after the window: the dump task
updates BACKUP_ASSET, on which the DAG postgres_backup_verify is scheduled (`verify_pending_backups`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import Asset, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from streamflow_ops.backup.audit import COMPLETED, DRY_RUN, FAILED, record_backup, UNVERIFIED
from streamflow_ops.backup.cnpg import (
    backup_body,
    backup_details,
    backup_name,
    create_backup,
    fetch_cluster,
    verify_backup,
)
from streamflow_ops.backup.folder import (
    BackupInputError,
    check_share_marker,
    marker_token,
    remove_share_marker,
    write_share_marker,
)
from streamflow_ops.backup.outcome import backup_step_result
from streamflow_ops.backup.request import (
    BackupRequest,
    check_cnpg_ready,
    check_file_backup_ready,
    FILE_METHODS,
    resolve_request,
)
from streamflow_ops.backup.runner import run_file_backup, verify_pending
from streamflow_ops.backup.sensors import CnpgBackupSensor
from streamflow_ops.backup.verify import VerificationError
from streamflow_ops.config import get_config
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.dag_defaults import maintenance_task_args
from streamflow_ops.store import Actor
from streamflow_ops.timeutil import parse_time


# Updated by a window's dump whose verification is pending; postgres_backup_verify is scheduled on it.
BACKUP_ASSET = Asset("streamflow_ops_backup_pending_verification")


def _run_info():
    ctx = get_current_context()
    return Actor(dag_id=ctx["dag"].dag_id, run_id=ctx["run_id"], task_id=ctx["task_instance"].task_id)


def _share_token() -> str:
    """Validate and dump derive the same marker name for one run (any try, any worker)."""
    ctx = get_current_context()
    return marker_token(ctx["dag"].dag_id, ctx["run_id"])


def _fail_on_bad_input(fn, *args):
    try:
        return fn(*args)
    except BackupInputError as exc:
        raise AirflowFailException(str(exc)) from None


def backup_group(group_id: str = "backup", *, deferrable: bool = True, verify_after: bool = False):
    """Build the backup task group in the current DAG; returns the group (chain it like a task).

    :param verify_after: verify a pg_dump after the run (postgres_backup_verify, on BACKUP_ASSET) instead
        of inside it: the nightly window, where a full restore does not fit.
    """

    @task(task_id="validate")
    def validate() -> dict[str, Any]:
        """Refuse bad input (method, schemas, folder, Kubernetes connection) before any work."""
        config = get_config()
        request = _fail_on_bad_input(resolve_request, get_current_context()["params"], config)
        dump_schemas: list[str] = []
        if request.method in FILE_METHODS:
            with warehouse_connection(config.warehouse) as conn:
                dump_schemas = _fail_on_bad_input(check_file_backup_ready, request, config, conn)
            _fail_on_bad_input(write_share_marker, config.backup.folder, _share_token())
        else:
            _fail_on_bad_input(check_cnpg_ready, config)
        print(f"backup method {request.method}: {request.to_dict()}")
        return {**request.to_dict(), "dump_schemas": dump_schemas}

    @task(task_id="dump", outlets=[BACKUP_ASSET] if verify_after else [], **maintenance_task_args())
    def dump(request: dict[str, Any]) -> dict[str, Any]:
        """pg_dump or gold_export: dump, verify in a scratch database (or leave it pending for
        postgres_backup_verify), audit, then apply retention."""
        if request["method"] not in FILE_METHODS:
            raise AirflowSkipException(f"method is {request['method']}")
        config = get_config()
        marker = _fail_on_bad_input(check_share_marker, config.backup.folder, _share_token())
        print(f"backup.folder {config.backup.folder} is shared: marker from {marker['host']} read here")
        summary = run_file_backup(config, BackupRequest.from_dict(request), request["dump_schemas"], _run_info(),
                                  verify_after=verify_after)
        remove_share_marker(config.backup.folder, _share_token())
        return summary

    @task(task_id="cnpg_create", **maintenance_task_args())
    def cnpg_create(request: dict[str, Any]) -> str:
        """Create the CloudNativePG Backup CR (what `kubectl cnpg backup` does), or adopt this task's own."""
        if request["method"] != "cnpg":
            raise AirflowSkipException(f"method is {request['method']}")
        config = get_config()
        run = _run_info()
        now = datetime.now(timezone.utc)
        body = backup_body(backup_name(config.backup.cnpg_cluster, run.dag_id, run.run_id, run.task_id), config,
                           labels={"streamflow-ops/dag": run.dag_id[:63]})
        if request["dry_run"]:
            record_backup(config, run, target=body["metadata"]["name"], dry_run=True, outcome=DRY_RUN,
                          started_at=now, details={"method": "cnpg", "would_create": body})
            raise AirflowSkipException(f"dry run: would create {body}")
        try:
            created = create_backup(config, body)
        except Exception as exc:
            record_backup(config, run, target=body["metadata"]["name"], dry_run=False, outcome=FAILED,
                          started_at=now, details={"method": "cnpg", "backup": body["metadata"]["name"],
                                                   "error": f"creating the Backup failed: {type(exc).__name__}: "
                                                            f"{str(exc)[:1000]}"})
            raise
        print(f"CNPG Backup {config.backup.cnpg_namespace}/{created['metadata']['name']} "
              f"(phase {(created.get('status') or {}).get('phase') or 'new'})")
        return created["metadata"]["name"]

    @task(task_id="cnpg_verify")
    def cnpg_verify(request: dict[str, Any], backup: dict[str, Any]) -> dict[str, Any]:
        """The CR completed with a WAL range, and the Cluster records it; then the audit row, `completed`:
        nothing was restored, so never `verified` (only restore_drill's recovery cluster proves that)."""
        config = get_config()
        details = backup_details(backup)
        problems = verify_backup(backup, fetch_cluster(config)) if request["verify"] else []
        started_at = parse_time(details["startedAt"]) or datetime.now(timezone.utc)
        if problems:
            record_backup(config, _run_info(), target=details["location"], dry_run=False, outcome=FAILED,
                          started_at=started_at, details={**details, "problems": problems})
            raise VerificationError(f"CNPG backup {details['backup']} is not verified: " + "; ".join(problems))
        details.update(verified=False, checked=request["verify"],
                       outcome=COMPLETED if request["verify"] else UNVERIFIED)
        record_backup(config, _run_info(), target=details["location"], dry_run=False, outcome=details["outcome"],
                      started_at=started_at, details=details)
        return details

    @task(task_id="result", trigger_rule="none_failed")
    def result(dumped: dict[str, Any] | None, verified: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The step's CheckResult for the report; a skipped branch passes None."""
        check = backup_step_result(dumped or verified, get_config().postgres_checks.backup_duration_warning_s)
        print(f"{check.status.value}: {check.message}")
        return [check.to_dict()]

    @task_group(group_id=group_id)
    def backup():
        request = validate()
        dumped = dump(request)
        name = cnpg_create(request)
        waited = CnpgBackupSensor(task_id="cnpg_wait", backup_name=name, deferrable=deferrable)
        result(dumped, cnpg_verify(request, waited.output))

    return backup()


@task(task_id="verify", **maintenance_task_args())
def verify_pending_backups() -> list[dict[str, Any]]:
    """Restore every pending dump the window left into a scratch database and compare it with its snapshot;
    only then is it `verified` (audit row, manifest) and folder retention runs. A mismatch fails without
    retries naming the backup (which is removed); an unreachable server is retried, the dump stays pending."""
    done = verify_pending(get_config(), _run_info(), dry_run=bool(get_current_context()["params"].get("dry_run")))
    for summary in done:
        print(f"would verify {summary['location']}" if summary.get("dry_run") else
              f"verified {summary['location']}: {summary['verify_duration_s']} s, retention removed "
              f"{summary['removed']}")
    if not done:
        print(f"no backup pending verification in {get_config().backup.folder}")
    return done
