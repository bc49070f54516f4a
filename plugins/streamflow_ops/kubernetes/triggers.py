"""The one polling loop for custom resources the package waits on (a CNPG Backup, restore_drill's scratch
Cluster): in the triggerer, off the worker, until the resource says it is done or the deadline passes."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from streamflow_ops.kubernetes.probes import KubeApiError


class CustomResourceTrigger(BaseTrigger):
    """Polls one custom resource; one event: what `judge` returns once it is done, `failed` when the resource
    is gone (404, final), or `timeout` with the last state seen. A transient API or network error is logged
    and polled again until the deadline. Subclasses say what to read (`fetch`) and when it is done (`judge`)."""

    kind = "resource"  # how messages name it, e.g. "CNPG Backup"

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

    def fetch(self) -> dict:
        """The resource as the Kubernetes API returns it (blocking; run in a thread)."""
        raise NotImplementedError

    def judge(self, resource: dict) -> tuple[dict | None, str]:
        """(the event's payload once done, else None; a line saying the state seen)."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last = "no answer from the Kubernetes API yet"
        while True:
            try:
                resource = await asyncio.to_thread(self.fetch)
            except KubeApiError as exc:
                if exc.status == 404:
                    yield TriggerEvent({"status": "failed", "message":
                                        f"{self.kind} {self.namespace}/{self.name} not found (deleted?)"})
                    return
                last = f"Kubernetes API error: {exc}"
                self.log.warning("reading %s %s/%s: %s", self.kind, self.namespace, self.name, last)
            except Exception as exc:  # noqa: BLE001 - network trouble: keep polling until the deadline
                last = f"{type(exc).__name__}: {exc}"
                self.log.warning("reading %s %s/%s: %s", self.kind, self.namespace, self.name, last)
            else:
                done, last = self.judge(resource)
                if done is not None:
                    yield TriggerEvent(done)
                    return
                self.log.info("%s", last)
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "message": last})
                return
            await asyncio.sleep(min(self.poll_interval_s, max(self.deadline - time.time(), 0)))
