"""The trigger behind FlinkCheckpointAgeSensor: polls the job's checkpoints in the triggerer."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from streamflow_ops.flink.evaluators import Freshness
from streamflow_ops.flink.probes import read_freshness


class FlinkCheckpointTrigger(BaseTrigger):
    """Fires `success` once `job_name` has the wanted completed checkpoint (see checkpoint_freshness),
    or `timeout` at `deadline` (epoch seconds) with the last reading and read error. Events carry
    `started` (the sensor's start, epoch seconds): dag.test() resumes the sensor with the event alone.
    HttpHook blocks, so each poll runs in a thread and the triggerer's event loop stays free."""

    def __init__(self, job_name: str, started: float, deadline: float, max_age_s: float | None = None,
                 triggered_after_ms: float | None = None, flink_conn_id: str = "streamflow_flink",
                 poll_interval: float = 30.0, request_timeout_s: float = 10.0, connect_timeout_s: float = 3.0) -> None:
        super().__init__()
        self.job_name = job_name
        self.started = started
        self.deadline = deadline
        self.max_age_s = max_age_s
        self.triggered_after_ms = triggered_after_ms
        self.flink_conn_id = flink_conn_id
        self.poll_interval = poll_interval
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "job_name": self.job_name, "started": self.started, "deadline": self.deadline, "max_age_s": self.max_age_s,
            "triggered_after_ms": self.triggered_after_ms, "flink_conn_id": self.flink_conn_id,
            "poll_interval": self.poll_interval, "request_timeout_s": self.request_timeout_s,
            "connect_timeout_s": self.connect_timeout_s})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last: Freshness | None = None
        while True:
            fresh, error = await asyncio.to_thread(
                read_freshness, self.flink_conn_id, self.job_name, self.max_age_s, self.triggered_after_ms,
                self.connect_timeout_s, self.request_timeout_s)
            if fresh is not None:  # a failed read keeps the last reading and is retried until the deadline
                last = fresh
                if fresh.satisfied:
                    yield TriggerEvent({"status": "success", "freshness": fresh.to_dict(), "started": self.started})
                    return
            now = time.time()
            if now >= self.deadline:
                yield TriggerEvent({"status": "timeout", "freshness": last.to_dict() if last else None,
                                    "error": error, "started": self.started})
                return
            await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - now)))
