"""Sensor for restore_drill's scratch Cluster: waits, deferred, until the recovery has finished and the
Cluster is healthy; the worker slot is free meanwhile (a recovery can take as long as the backup's WAL)."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Sequence

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.config import get_config
from streamflow_ops.recovery.triggers import ScratchClusterTrigger


class ScratchClusterSensor(BaseSensorOperator):
    """Waits for the scratch Cluster `plan["cluster"]` to be ready; always deferrable.

    :param plan: the drill's plan (XCom of the plan step): namespace, cluster and the Backup it recovers.

    Timeout and poll interval come from recovery.drill_timeout_s / drill_poll_interval_s at run time. Returns
    the seconds the recovery took (XCom), for the drill's audit row; a timeout fails without retries (the
    cleanup step deletes the Cluster and records the failed drill).
    """

    template_fields: Sequence[str] = ("plan",)

    def __init__(self, *, plan: Any, **kwargs):
        super().__init__(**kwargs)
        self.plan = plan

    def execute(self, context) -> Any:
        config = get_config()
        settings = config.recovery
        trigger = ScratchClusterTrigger(
            name=self.plan["cluster"], namespace=self.plan["namespace"], conn_id=config.kubernetes.conn_id,
            deadline=time.time() + settings.drill_timeout_s, poll_interval_s=settings.drill_poll_interval_s,
            request_timeout_s=config.kubernetes.request_timeout_s)
        self.defer(trigger=trigger, method_name="execute_complete",
                   timeout=timedelta(seconds=settings.drill_timeout_s + 60))

    def execute_complete(self, context, event: dict[str, Any]) -> float:
        if event["status"] == "ready":
            self.log.info("%s (after %ss)", event["message"], event["seconds"])
            return event["seconds"]
        message = event["message"]
        if event["status"] == "timeout":
            message = (f"scratch Cluster {self.plan['cluster']} not ready within {get_config().recovery.drill_timeout_s}s "
                       f"(recovery.drill_timeout_s); last seen: {message}")
        raise AirflowFailException(message)
