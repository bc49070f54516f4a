"""Kubernetes check family: pods, the runbook's expected workloads, PVC usage and the operators' resources."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.kubernetes import evaluators as ev
from streamflow_ops.kubernetes.probes import CNPG_CLUSTER, FLINK_DEPLOYMENT, STRIMZI_KAFKA, KubeProbe
from streamflow_ops.monitoring.probes import prometheus_query
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult
from streamflow_ops.timeutil import utcnow

PVC_METRICS = ("kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes")


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    """The API-server checks need `streamflow_kubernetes`; PVC usage needs only Prometheus."""
    now = utcnow(now)
    api_specs = [s for s in FAMILY.specs if s is not ev.PVC_USAGE]
    return (run_guarded(config, api_specs, lambda: _api_checks(config, now))
            + run_guarded(config, [ev.PVC_USAGE], lambda: pvc_usage(config)))


def _api_checks(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    k8s, probe = config.kubernetes, KubeProbe(config.kubernetes)
    rules = ev.PodRules(k8s.restart_warning, timedelta(hours=k8s.restart_window_h),
                        timedelta(seconds=k8s.not_ready_grace_s))
    pods = cache(probe.list_pods)  # one list per namespace feeds both pod checks
    results: list[CheckResult] = []
    for namespace in k8s.namespaces:
        results += ev.PODS.guarded(lambda ns=namespace: ev.evaluate_pods(ns, pods(ns), rules, now), subject=namespace)
    for namespace, expected in k8s.expected_workloads.items():
        results += ev.EXPECTED_WORKLOADS.guarded(
            lambda ns=namespace, wanted=expected: ev.evaluate_expected_workloads(ns, pods(ns), wanted,
                                                                                k8s.airflow_executor),
            subject=namespace)
    results += ev.STRIMZI.guarded(lambda: ev.evaluate_strimzi_kafka(
        k8s.kafka_cluster, k8s.kafka_namespace,
        probe.custom_object(STRIMZI_KAFKA, k8s.kafka_namespace, k8s.kafka_cluster)),
        subject=f"{k8s.kafka_namespace}/{k8s.kafka_cluster}")
    results += ev.CNPG.guarded(lambda: ev.evaluate_cnpg_cluster(
        k8s.cnpg_cluster, k8s.cnpg_namespace,
        probe.custom_object(CNPG_CLUSTER, k8s.cnpg_namespace, k8s.cnpg_cluster)),
        subject=f"{k8s.cnpg_namespace}/{k8s.cnpg_cluster}")
    results += ev.FLINK.guarded(lambda: flink_deployment(probe, config),
                                subject=f"{k8s.flink_namespace}/{k8s.flink_deployment}")
    return results


def pvc_usage(config: StreamflowOpsConfig) -> list[CheckResult]:
    """kubernetes.pvc_usage from the kubelet volume statistics Prometheus scrapes (one query per metric)."""
    k8s = config.kubernetes
    scope = "|".join(sorted(set(k8s.namespaces) | set(k8s.expected_workloads)))
    used, capacity = (prometheus_query(config.monitoring, f'{metric}{{namespace=~"{scope}"}}')
                      for metric in PVC_METRICS)
    return ev.evaluate_pvc_usage(used, capacity, scope.split("|"), k8s.pvc_warning_ratio, k8s.pvc_critical_ratio)


def flink_deployment(probe: KubeProbe, config: StreamflowOpsConfig) -> CheckResult:
    """The operator's FlinkDeployment if there is one, else the jobmanager/taskmanager Deployments."""
    k8s = config.kubernetes
    resource = probe.custom_object(FLINK_DEPLOYMENT, k8s.flink_namespace, k8s.flink_deployment)
    if resource is not None:
        return ev.evaluate_flink_deployment(k8s.flink_deployment, k8s.flink_namespace, resource)
    return ev.evaluate_flink_workloads(k8s.flink_deployment, k8s.flink_namespace, k8s.flink_fallback_selector,
                                       probe.list_deployments(k8s.flink_namespace, k8s.flink_fallback_selector))


FAMILY = register(Family("kubernetes", run_checks))
