"""FlinkCheckpointAgeSensor: wait for a recent (or brand-new) completed checkpoint of a Flink job, e.g.
before bronze retention deletes rows that only a checkpoint's Kafka offsets prove were consumed."""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from streamflow_ops.flink.evaluators import Freshness, describe_wanted, sensor_timeout_message
from streamflow_ops.flink.probes import read_freshness
from streamflow_ops.flink.triggers import FlinkCheckpointTrigger


class FlinkCheckpointAgeSensor(BaseSensorOperator):
    """Succeeds once `job_name`'s latest completed checkpoint is younger than `max_age_s`, and, with
    `new_checkpoint=True`, was triggered after this sensor started ("a fresh checkpoint from now on").

    Deferrable by default (no worker slot while waiting); `deferrable=False` pokes instead. On timeout
    it fails with the last checkpoint's age and Flink's latest failure message. XCom: the checkpoint
    id and age. The start time is this worker's clock, compared with the JobManager's timestamps.

    :param job_name: the Flink job's name; the newest live job of that name counts (templated).
    :param max_age_s: the latest completed checkpoint must be younger than this many seconds; None with
        ``new_checkpoint=True``: any age, as long as it was triggered after the sensor started
        (templated; a rendered "600" is read as 600).
    :param new_checkpoint: also require the checkpoint to be triggered after this sensor started.
    :param flink_conn_id: the http connection to the JobManager's REST API (templated).
    :param request_timeout_s: read timeout of each REST request, in seconds.
    :param connect_timeout_s: connect timeout of each REST request, in seconds.
    :param deferrable: wait in the triggerer (default) instead of poking in a worker slot.
    :param kwargs: BaseSensorOperator arguments; ``timeout``, ``poke_interval`` (default 30 s) and
        ``mode`` given here are used as given, in poke and in deferrable mode alike.
    """

    template_fields: Sequence[str] = ("job_name", "max_age_s", "flink_conn_id")
    ui_color = "#fbeee6"

    def __init__(self, *, job_name: str = "FraudDetectionJob", max_age_s: float | None = 600,
                 new_checkpoint: bool = False, flink_conn_id: str = "streamflow_flink",
                 request_timeout_s: float = 10.0, connect_timeout_s: float = 3.0, deferrable: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.job_name = job_name
        self.max_age_s = max_age_s
        self.new_checkpoint = new_checkpoint
        self.flink_conn_id = flink_conn_id
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.deferrable = deferrable
        self._triggered_after_ms: float | None = None
        self._last: Freshness | None = None
        self._error: str | None = None

    def _validate(self) -> None:
        if not isinstance(self.job_name, str) or not self.job_name.strip():
            raise AirflowFailException(f"job_name must be a non-empty Flink job name, got {self.job_name!r}")
        if self.max_age_s is not None:
            try:
                self.max_age_s = float(self.max_age_s)
            except (TypeError, ValueError):
                raise AirflowFailException(f"max_age_s must be a number of seconds > 0, got {self.max_age_s!r}") from None
            if self.max_age_s <= 0:
                raise AirflowFailException(f"max_age_s must be a number of seconds > 0, got {self.max_age_s}")
        elif not self.new_checkpoint:
            raise AirflowFailException("max_age_s is None and new_checkpoint is False: nothing to wait for")
        if self.new_checkpoint and not self.deferrable and self.mode == "reschedule":
            raise AirflowFailException("new_checkpoint needs one continuous wait: use deferrable=True or "
                                       "mode='poke' (reschedule would restart the clock at every poke)")

    def execute(self, context) -> Any:
        self._validate()
        started = time.time()
        self._triggered_after_ms = started * 1000 if self.new_checkpoint else None
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                raise AirflowSensorTimeout(self._message(time.time() - started)) from None
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=FlinkCheckpointTrigger(
                job_name=self.job_name, started=started, deadline=started + self.timeout, max_age_s=self.max_age_s,
                triggered_after_ms=self._triggered_after_ms, flink_conn_id=self.flink_conn_id,
                poll_interval=self.poke_interval, request_timeout_s=self.request_timeout_s,
                connect_timeout_s=self.connect_timeout_s),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 2 * (self.connect_timeout_s + self.request_timeout_s) + 60))

    def poke(self, context) -> PokeReturnValue:
        fresh, self._error = read_freshness(self.flink_conn_id, self.job_name, self.max_age_s,
                                            self._triggered_after_ms, self.connect_timeout_s, self.request_timeout_s)
        if fresh is None:  # a failed read means "not yet", retried until timeout
            self.log.warning("checkpoints of %s unreadable: %s", self.job_name, self._error)
            return PokeReturnValue(False)
        self._last = fresh
        self.log.info("%s: latest completed checkpoint %s, age %s s (wanted: %s)", self.job_name,
                      self._last.checkpoint_id, self._last.age_s, self._wanted())
        return PokeReturnValue(self._last.satisfied, xcom_value=self._last.to_dict())

    def _wanted(self) -> str:
        return describe_wanted(self.max_age_s, self._triggered_after_ms)

    def _message(self, waited_s: float) -> str:
        return sensor_timeout_message(self.job_name, self._last, self._wanted(), waited_s, self._error)

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "success":
            self.log.info("%s has checkpoint %s", self.job_name, event["freshness"]["checkpoint_id"])
            return event["freshness"]
        self._last = Freshness(**event["freshness"]) if event.get("freshness") else None
        self._error = event.get("error")
        self._triggered_after_ms = event["started"] * 1000 if self.new_checkpoint else None
        raise AirflowSensorTimeout(self._message(time.time() - event["started"]))
