"""Sensor for a CloudNativePG Backup CR: deferrable by default, poke mode as a fallback.

A Backup that fails or times out leaves a `failed` audit row before the task fails: `postgres.backup_age`
and the audit trail see failed CNPG backups, not just missing ones.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.backup.audit import FAILED, record_backup
from streamflow_ops.backup.cnpg import backup_details, backup_outcome, fetch_backup
from streamflow_ops.backup.triggers import CnpgBackupTrigger
from streamflow_ops.config import get_config
from streamflow_ops.store import Actor
from streamflow_ops.timeutil import parse_time


def _record_failure(context, backup_name: str, message: str, backup: dict[str, Any] | None) -> None:
    config = get_config()
    details = backup_details(backup) if backup else {
        "method": "cnpg", "backup": f"{config.backup.cnpg_namespace}/{backup_name}",
        "location": f"cnpg://{config.backup.cnpg_namespace}/{backup_name}"}
    started = parse_time(details.get("startedAt")) or datetime.now(timezone.utc)
    run = Actor(context["dag"].dag_id, context["run_id"], context["task_instance"].task_id)
    record_backup(config, run, target=details["location"], dry_run=False, outcome=FAILED, started_at=started,
                  details={**details, "error": message})


class CnpgBackupSensor(BaseSensorOperator):
    """Waits for Backup `backup_name` to reach phase completed; fails on failed, quoting status.error.

    Namespace, connection, poll interval and timeout come from the config (backup.timeout_s,
    backup.poll_interval_s) at run time. Returns the finished Backup CR (XCom) for the verification.
    """

    template_fields: Sequence[str] = ("backup_name",)

    def __init__(self, *, backup_name: str, deferrable: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.backup_name = backup_name
        self.deferrable = deferrable

    def execute(self, context) -> Any:
        config = get_config()
        self.timeout = config.backup.timeout_s
        self.poke_interval = config.backup.poll_interval_s
        if not self.deferrable:
            return super().execute(context)
        trigger = CnpgBackupTrigger(
            name=self.backup_name, namespace=config.backup.cnpg_namespace, conn_id=config.kubernetes.conn_id,
            deadline=time.time() + config.backup.timeout_s, poll_interval_s=config.backup.poll_interval_s,
            request_timeout_s=config.kubernetes.request_timeout_s)
        # A little headroom: the trigger reports its own timeout with the last phase it saw.
        self.defer(trigger=trigger, method_name="execute_complete",
                   timeout=timedelta(seconds=config.backup.timeout_s + 60))

    def poke(self, context) -> PokeReturnValue:
        config = get_config()
        backup = fetch_backup(config.kubernetes.conn_id, config.backup.cnpg_namespace, self.backup_name,
                              config.kubernetes.request_timeout_s)
        outcome, message = backup_outcome(backup)
        self.log.info("%s", message)
        if outcome == "failed":
            _record_failure(context, self.backup_name, message, backup)
            raise AirflowFailException(message)
        return PokeReturnValue(is_done=outcome == "completed", xcom_value=backup)

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "completed":
            self.log.info("%s", event["message"])
            return event["backup"]
        message = event["message"]
        if event["status"] == "timeout":
            message = (f"CNPG Backup {self.backup_name} did not complete within "
                       f"{get_config().backup.timeout_s}s (backup.timeout_s); last seen: {event['message']}")
        _record_failure(context, self.backup_name, message, event.get("backup"))
        raise AirflowFailException(message)
