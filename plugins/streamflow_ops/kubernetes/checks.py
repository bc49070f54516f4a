"""Kubernetes check family: pods in the streamflow-* namespaces and the operators' custom resources."""
from __future__ import annotations

from datetime import datetime, timedelta

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.kubernetes import evaluators as ev
from streamflow_ops.kubernetes.probes import CNPG_CLUSTER, FLINK_DEPLOYMENT, STRIMZI_KAFKA, KubeProbe
from streamflow_ops.results import CheckResult, guarded, skipped
from streamflow_ops.runbook import section
from streamflow_ops.timeutil import utcnow

CHECKS = (ev.PODS, ev.STRIMZI, ev.CNPG, ev.FLINK)


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    k8s = config.kubernetes
    if not connection_defined(k8s.conn_id):
        return [skipped(name, k8s.conn_id, section(name)) for name in CHECKS]
    now, probe = utcnow(now), KubeProbe(k8s)
    rules = ev.PodRules(k8s.restart_warning, timedelta(hours=k8s.restart_window_h),
                        timedelta(seconds=k8s.not_ready_grace_s))
    results: list[CheckResult] = []
    for namespace in k8s.namespaces:
        results += guarded(ev.PODS, lambda ns=namespace: ev.evaluate_pods(ns, probe.list_pods(ns), rules, now),
                           subject=namespace, runbook=section(ev.PODS))
    results += guarded(ev.STRIMZI, lambda: ev.evaluate_strimzi_kafka(
        k8s.kafka_cluster, k8s.kafka_namespace,
        probe.custom_object(STRIMZI_KAFKA, k8s.kafka_namespace, k8s.kafka_cluster)),
        subject=f"{k8s.kafka_namespace}/{k8s.kafka_cluster}", runbook=section(ev.STRIMZI))
    results += guarded(ev.CNPG, lambda: ev.evaluate_cnpg_cluster(
        k8s.cnpg_cluster, k8s.cnpg_namespace,
        probe.custom_object(CNPG_CLUSTER, k8s.cnpg_namespace, k8s.cnpg_cluster)),
        subject=f"{k8s.cnpg_namespace}/{k8s.cnpg_cluster}", runbook=section(ev.CNPG))
    results += guarded(ev.FLINK, lambda: flink_deployment(probe, config),
                       subject=f"{k8s.flink_namespace}/{k8s.flink_deployment}", runbook=section(ev.FLINK))
    return results


def flink_deployment(probe: KubeProbe, config: StreamflowOpsConfig) -> CheckResult:
    """The operator's FlinkDeployment if there is one, else the jobmanager/taskmanager Deployments."""
    k8s = config.kubernetes
    resource = probe.custom_object(FLINK_DEPLOYMENT, k8s.flink_namespace, k8s.flink_deployment)
    if resource is not None:
        return ev.evaluate_flink_deployment(k8s.flink_deployment, k8s.flink_namespace, resource)
    return ev.evaluate_flink_workloads(k8s.flink_deployment, k8s.flink_namespace, k8s.flink_fallback_selector,
                                       probe.list_deployments(k8s.flink_namespace, k8s.flink_fallback_selector))
