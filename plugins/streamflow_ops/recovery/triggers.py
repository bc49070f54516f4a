"""Trigger that waits for restore_drill's scratch CloudNativePG Cluster to recover and become ready."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from streamflow_ops.kubernetes.probes import KubeApiError
from streamflow_ops.recovery.drill import cluster_state, fetch_scratch_cluster


class ScratchClusterTrigger(BaseTrigger):
    """Polls the Cluster CR; one event: ready (with the CR and the seconds it took), failed (the CR is gone)
    or timeout (with the last state seen). Transient API errors are polled again until the deadline."""

    def __init__(self, name: str, namespace: str, conn_id: str, deadline: float, poll_interval_s: float = 30,
                 request_timeout_s: float = 10, started: float | None = None):
        super().__init__()
        self.name, self.namespace, self.conn_id = name, namespace, conn_id
        self.deadline, self.poll_interval_s, self.request_timeout_s = deadline, poll_interval_s, request_timeout_s
        self.started = time.time() if started is None else started

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"name": self.name, "namespace": self.namespace, "conn_id": self.conn_id, "deadline": self.deadline,
                 "poll_interval_s": self.poll_interval_s, "request_timeout_s": self.request_timeout_s,
                 "started": self.started})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last = "no answer from the Kubernetes API yet"
        while True:
            try:
                cluster = await asyncio.to_thread(fetch_scratch_cluster, self.conn_id, self.namespace, self.name,
                                                  self.request_timeout_s)
            except KubeApiError as exc:
                if exc.status == 404:
                    yield TriggerEvent({"status": "failed", "message": f"scratch Cluster {self.namespace}/{self.name} "
                                                                       "not found (deleted?)"})
                    return
                last = f"Kubernetes API error: {exc}"
                self.log.warning("reading Cluster %s/%s: %s", self.namespace, self.name, last)
            except Exception as exc:  # noqa: BLE001 - network trouble: keep polling until the deadline
                last = f"{type(exc).__name__}: {exc}"
                self.log.warning("reading Cluster %s/%s: %s", self.namespace, self.name, last)
            else:
                state, last = cluster_state(cluster)
                if state == "ready":
                    yield TriggerEvent({"status": "ready", "message": last,
                                        "seconds": round(time.time() - self.started, 1)})
                    return
                self.log.info("%s", last)
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "message": last})
                return
            await asyncio.sleep(min(self.poll_interval_s, max(self.deadline - time.time(), 0)))
