"""KafkaConsumerLagSensor: wait until a consumer group has drained (before maintenance, or the
runbook's "drain consumer lag" step of a full platform restart)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from streamflow_ops.kafka.evaluators import remember, sensor_timeout_message
from streamflow_ops.kafka.probes import admin_client, group_lag
from streamflow_ops.kafka.triggers import KafkaConsumerLagTrigger


class KafkaConsumerLagSensor(BaseSensorOperator):
    """Succeeds once `group_id`'s total lag (over `topics`, or every committed topic) is <= `max_lag`.

    Deferrable by default: the wait costs no worker slot. `deferrable=False` pokes instead. On timeout
    it fails with the last lag and its trend, which is what the on-call engineer decides on.
    The XCom value is the final lag.

    :param group_id: the consumer group, e.g. ``flink-fraud-detector`` (templated).
    :param max_lag: succeed once the group's total lag is at most this many messages, >= 0 (templated;
        a rendered "500" is read as 500).
    :param topics: only these topics' partitions count; None: every topic the group has committed on
        (templated).
    :param kafka_config_id: the Kafka connection (librdkafka config in its extra) (templated).
    :param request_timeout_s: the timeout of each admin request to the brokers, in seconds.
    :param deferrable: wait in the triggerer (default) instead of poking in a worker slot.
    :param kwargs: BaseSensorOperator arguments; ``timeout``, ``poke_interval`` (default 30 s) and
        ``mode`` given here are used as given, in poke and in deferrable mode alike.
    """

    template_fields: Sequence[str] = ("group_id", "max_lag", "topics", "kafka_config_id")
    ui_color = "#e8f1fb"

    def __init__(self, *, group_id: str, max_lag: int = 0, topics: Sequence[str] | None = None,
                 kafka_config_id: str = "streamflow_kafka", request_timeout_s: float = 10.0,
                 deferrable: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.group_id = group_id
        self.max_lag = max_lag
        self.topics = list(topics) if topics else None
        self.kafka_config_id = kafka_config_id
        self.request_timeout_s = request_timeout_s
        self.deferrable = deferrable
        self._history: list[list[float]] = []
        self._error: str | None = None

    def _validate(self) -> None:
        if not isinstance(self.group_id, str) or not self.group_id.strip():
            raise AirflowFailException(f"group_id must be a non-empty consumer group name, got {self.group_id!r}")
        try:
            self.max_lag = int(self.max_lag)
        except (TypeError, ValueError):
            raise AirflowFailException(f"max_lag must be an integer >= 0, got {self.max_lag!r}") from None
        if self.max_lag < 0:
            raise AirflowFailException(f"max_lag must be an integer >= 0, got {self.max_lag}")

    def execute(self, context) -> Any:
        self._validate()
        started = time.time()
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                raise AirflowSensorTimeout(self._message(time.time() - started)) from None
        first = self.poke(context)  # often already drained: no deferral round trip then
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=KafkaConsumerLagTrigger(
                group_id=self.group_id, max_lag=self.max_lag, deadline=started + self.timeout,
                kafka_config_id=self.kafka_config_id, topics=self.topics, poll_interval=self.poke_interval,
                request_timeout_s=self.request_timeout_s, history=self._history),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 5 * self.request_timeout_s + 60))

    def poke(self, context) -> PokeReturnValue:
        lag, self._error = group_lag(admin_client(self.kafka_config_id), self.group_id, self.request_timeout_s,
                                     self.topics)
        if lag is None:
            self.log.warning("lag of %s not readable yet: %s", self.group_id, self._error)
            return PokeReturnValue(False)
        self._history = remember(self._history, time.time(), lag)
        self.log.info("consumer group %s lag %s (threshold %s)", self.group_id, lag, self.max_lag)
        return PokeReturnValue(lag <= self.max_lag, xcom_value=lag)

    def _message(self, waited_s: float) -> str:
        return sensor_timeout_message(self.group_id, self.topics, self.max_lag, self._history, waited_s, self._error)

    def execute_complete(self, context, event: dict[str, Any]) -> int:
        if event["status"] == "success":
            self.log.info("consumer group %s drained to %s", self.group_id, event["lag"])
            return event["lag"]
        self._history, self._error = event["history"], event.get("error")
        raise AirflowSensorTimeout(self._message(time.time() - (event["deadline"] - self.timeout)))
