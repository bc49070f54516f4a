"""Trigger that waits for a CloudNativePG Backup CR to finish, off the worker, in the triggerer."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from streamflow_ops.backup.cnpg import backup_outcome, fetch_backup
from streamflow_ops.kubernetes.probes import KubeApiError


class CnpgBackupTrigger(BaseTrigger):
    """Polls Backup.status.phase; one event: completed (with the CR), failed (with status.error) or timeout.

    A transient API error is logged and polled again until the deadline; a missing CR (404) is final.
    """

    def __init__(self, name: str, namespace: str, conn_id: str, deadline: float, poll_interval_s: float = 15,
                 request_timeout_s: float = 10):
        super().__init__()
        self.name, self.namespace, self.conn_id = name, namespace, conn_id
        self.deadline, self.poll_interval_s, self.request_timeout_s = deadline, poll_interval_s, request_timeout_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"name": self.name, "namespace": self.namespace, "conn_id": self.conn_id,
                 "deadline": self.deadline, "poll_interval_s": self.poll_interval_s,
                 "request_timeout_s": self.request_timeout_s})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last = "no answer from the Kubernetes API yet"
        while True:
            try:
                backup = await asyncio.to_thread(fetch_backup, self.conn_id, self.namespace, self.name,
                                                 self.request_timeout_s)
            except KubeApiError as exc:
                if exc.status == 404:
                    yield TriggerEvent({"status": "failed", "message":
                                        f"CNPG Backup {self.namespace}/{self.name} not found (deleted?)"})
                    return
                last = f"Kubernetes API error: {exc}"
                self.log.warning("reading Backup %s/%s: %s", self.namespace, self.name, last)
            except Exception as exc:  # noqa: BLE001 - network trouble: keep polling until the deadline
                last = f"{type(exc).__name__}: {exc}"
                self.log.warning("reading Backup %s/%s: %s", self.namespace, self.name, last)
            else:
                outcome, last = backup_outcome(backup)
                if outcome != "waiting":
                    yield TriggerEvent({"status": outcome, "message": last, "backup": backup})
                    return
                self.log.info("%s", last)
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "message": last})
                return
            await asyncio.sleep(min(self.poll_interval_s, max(self.deadline - time.time(), 0)))
