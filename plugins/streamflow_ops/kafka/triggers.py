"""The trigger behind KafkaConsumerLagSensor: polls a group's lag in the triggerer until it is low enough."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from streamflow_ops.kafka.evaluators import remember
from streamflow_ops.kafka.probes import admin_client, group_lag


class KafkaConsumerLagTrigger(BaseTrigger):
    """Fires `success` once the lag is <= max_lag, or `timeout` at `deadline` (epoch seconds) with the
    readings so far, so that the sensor can say what the lag was doing. Client calls block, so they run
    in a thread: the triggerer's event loop serves every other deferred task meanwhile."""

    def __init__(self, group_id: str, max_lag: int, deadline: float, kafka_config_id: str = "streamflow_kafka",
                 topics: list[str] | None = None, poll_interval: float = 30.0, request_timeout_s: float = 10.0,
                 history: list[list[float]] | None = None) -> None:
        super().__init__()
        self.group_id = group_id
        self.max_lag = max_lag
        self.deadline = deadline
        self.kafka_config_id = kafka_config_id
        self.topics = list(topics) if topics else None
        self.poll_interval = poll_interval
        self.request_timeout_s = request_timeout_s
        self.history = [list(h) for h in history or []]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "group_id": self.group_id, "max_lag": self.max_lag, "deadline": self.deadline,
            "kafka_config_id": self.kafka_config_id, "topics": self.topics, "poll_interval": self.poll_interval,
            "request_timeout_s": self.request_timeout_s, "history": self.history})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        admin = await asyncio.to_thread(admin_client, self.kafka_config_id)
        while True:
            lag, error = await asyncio.to_thread(group_lag, admin, self.group_id, self.request_timeout_s, self.topics)
            now = time.time()
            if lag is not None:
                self.history = remember(self.history, now, lag)
                if lag <= self.max_lag:
                    yield TriggerEvent({"status": "success", "lag": lag, "history": self.history})
                    return
            if now >= self.deadline:
                yield TriggerEvent({"status": "timeout", "history": self.history, "error": error,
                                    "deadline": self.deadline})
                return
            await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - now)))
