"""Trigger that waits for restore_drill's scratch CloudNativePG Cluster to recover and become ready."""
from __future__ import annotations

import time
from typing import Any

from streamflow_ops.kubernetes.triggers import CustomResourceTrigger
from streamflow_ops.recovery.drill import cluster_state, fetch_scratch_cluster


class ScratchClusterTrigger(CustomResourceTrigger):
    """Polls the Cluster CR; one event: ready (with the CR and the seconds it took since `started`), failed
    (the CR is gone) or timeout (with the last state seen). Transient API errors are polled again until the
    deadline."""

    kind = "scratch Cluster"

    def __init__(self, name: str, namespace: str, conn_id: str, deadline: float, poll_interval_s: float = 30,
                 request_timeout_s: float = 10, started: float | None = None):
        super().__init__(name, namespace, conn_id, deadline, poll_interval_s, request_timeout_s)
        self.started = time.time() if started is None else started

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "started": self.started}

    def fetch(self) -> dict:
        return fetch_scratch_cluster(self.conn_id, self.namespace, self.name, self.request_timeout_s)

    def judge(self, resource: dict) -> tuple[dict | None, str]:
        state, last = cluster_state(resource)
        if state != "ready":
            return None, last
        return {"status": "ready", "message": last, "seconds": round(time.time() - self.started, 1)}, last
