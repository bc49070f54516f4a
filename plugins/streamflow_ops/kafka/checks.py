"""Kafka health checks (probe + evaluator)."""
from __future__ import annotations

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.results import CheckResult, Status
from streamflow_ops.runbook import section


def broker_reachable(config: StreamflowOpsConfig) -> CheckResult:
    """kafka.broker_reachable: metadata from the cluster through KafkaAdminClientHook."""
    from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

    name = "kafka.broker_reachable"
    try:
        admin = KafkaAdminClientHook(kafka_config_id=config.kafka.conn_id).get_conn
        metadata = admin.list_topics(timeout=config.kafka.request_timeout_s)
    except Exception as exc:  # noqa: BLE001 - no answer is the finding
        return CheckResult(name, Status.CRITICAL, runbook=section(name),
                           message=f"KafkaBrokerDown: no answer from {config.kafka.conn_id}: "
                                   f"{type(exc).__name__}: {str(exc)[:300]}")
    return CheckResult(name, Status.OK, value=len(metadata.brokers), runbook=section(name),
                       message=f"{len(metadata.brokers)} broker(s) answer, {len(metadata.topics)} topics")
