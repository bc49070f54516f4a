"""Trigger that waits for a CloudNativePG Backup CR to finish, off the worker, in the triggerer."""
from __future__ import annotations

from streamflow_ops.backup.cnpg import backup_outcome, fetch_backup
from streamflow_ops.kubernetes.triggers import CustomResourceTrigger


class CnpgBackupTrigger(CustomResourceTrigger):
    """Polls Backup.status.phase; one event: completed (with the CR), failed (with status.error) or timeout.

    A transient API error is logged and polled again until the deadline; a missing CR (404) is final.
    """

    kind = "CNPG Backup"

    def fetch(self) -> dict:
        return fetch_backup(self.conn_id, self.namespace, self.name, self.request_timeout_s)

    def judge(self, resource: dict) -> tuple[dict | None, str]:
        outcome, last = backup_outcome(resource)
        return (None if outcome == "waiting" else {"status": outcome, "message": last, "backup": resource}), last
