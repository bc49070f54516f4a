"""Pure verdicts on Kubernetes API documents (Pod, Deployment, Strimzi Kafka, CNPG Cluster, FlinkDeployment).

Input is the JSON the API returns; output is a CheckResult. No I/O, no Airflow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Iterable

from streamflow_ops.results import CheckResult, Status, worst
from streamflow_ops import registry
from streamflow_ops.config import ExpectedWorkload
from streamflow_ops.timeutil import human_duration, parse_time

PODS = registry.KUBERNETES_PODS
STRIMZI = registry.KUBERNETES_STRIMZI
CNPG = registry.KUBERNETES_CNPG
FLINK = registry.KUBERNETES_FLINK
PVC_USAGE = registry.KUBERNETES_PVC_USAGE
EXPECTED_WORKLOADS = registry.KUBERNETES_EXPECTED_WORKLOADS

# Container states that will not heal by waiting: the runbook's CrashLoopBackOff / Error / ImagePullBackOff
# and their siblings (the pull error before the back-off, a bad image name or config).
CRITICAL_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                    "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
CRITICAL_TERMINATED = {"Error", "OOMKilled", "ContainerCannotRun", "DeadlineExceeded"}
MAX_LISTED = 5


@dataclass(frozen=True)
class PodProblem:
    pod: str
    status: Status
    reason: str


@dataclass(frozen=True)
class PodRules:
    restart_warning: int
    restart_window: timedelta
    not_ready_grace: timedelta


def pod_problem(pod: dict[str, Any], rules: PodRules, now: datetime) -> PodProblem | None:
    """What is wrong with one pod, worst first; None for a healthy, finished or terminating pod."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    name, phase = meta.get("name", "?"), status.get("phase")
    if phase == "Succeeded" or meta.get("deletionTimestamp"):
        return None
    if phase == "Failed" and status.get("reason"):
        # An evicted pod has been replaced by its controller; it is a hint (node pressure), not an outage.
        level = Status.WARNING if status["reason"] == "Evicted" else Status.CRITICAL
        return PodProblem(name, level, f"pod {status['reason']}: {status.get('message', '')}".strip(": "))

    found: list[tuple[Status, str]] = []
    containers = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
    for container in containers:
        found.extend(_container_problems(container, rules, now))
    if phase == "Failed" and not any(level is Status.CRITICAL for level, _ in found):
        found.append((Status.CRITICAL, "pod Failed (Error)"))
    if not any(level is Status.CRITICAL for level, _ in found):
        not_ready = _not_ready(status, meta, rules, now)
        if not_ready:
            found.append((Status.WARNING, not_ready))
    if not found:
        return None
    return PodProblem(name, worst(level for level, _ in found), "; ".join(text for _, text in found))


def _container_problems(container: dict[str, Any], rules: PodRules, now: datetime) -> list[tuple[Status, str]]:
    name, restarts = container.get("name", "?"), container.get("restartCount", 0)
    state = container.get("state", {})
    waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
    problems = []
    if waiting.get("reason") in CRITICAL_WAITING:
        problems.append((Status.CRITICAL, f"{waiting['reason']} (container {name}, {restarts} restarts"
                                          f"{': ' + waiting['message'][:160] if waiting.get('message') else ''})"))
    elif terminated.get("reason") in CRITICAL_TERMINATED:
        problems.append((Status.CRITICAL, f"{terminated['reason']} (container {name}, "
                                          f"exit code {terminated.get('exitCode')})"))
    elif restarts >= rules.restart_warning:
        last = (container.get("lastState") or {}).get("terminated") or {}
        finished = parse_time(last.get("finishedAt"))
        if finished is None or now - finished <= rules.restart_window:
            when = f", last {human_duration((now - finished).total_seconds())} ago" if finished else ""
            problems.append((Status.WARNING, f"restarting: container {name} restarted {restarts} times"
                                             f" ({last.get('reason', 'unknown reason')}{when})"))
    return problems


def _not_ready(status: dict[str, Any], meta: dict[str, Any], rules: PodRules, now: datetime) -> str | None:
    conditions = {c.get("type"): c for c in status.get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("status") == "True":
        return None
    since = parse_time(ready.get("lastTransitionTime")) or parse_time(meta.get("creationTimestamp"))
    if since is not None and now - since < rules.not_ready_grace:
        return None
    scheduled = conditions.get("PodScheduled", {})
    why = (f"{scheduled.get('reason')}: {scheduled.get('message', '')[:160]}" if scheduled.get("status") == "False"
           else ready.get("reason") or status.get("phase", "unknown phase"))
    duration = f" for {human_duration((now - since).total_seconds())}" if since else ""
    return f"not Ready{duration} ({why})"


def evaluate_pods(namespace: str, pods: list[dict[str, Any]], rules: PodRules, now: datetime) -> CheckResult:
    """One result per namespace: its worst pod decides, every unhealthy pod is listed.

    Pod names change with every rollout; a subject per namespace keeps alerts stable (one page per
    namespace going bad, one resolve when it recovers) while the details still name every pod.
    """
    problems = sorted(filter(None, (pod_problem(p, rules, now) for p in pods)),
                      key=lambda p: (-p.status.severity, p.pod))
    details = {"namespace": namespace, "pods_total": len(pods),
               "unhealthy": [{"pod": p.pod, "status": p.status.value, "reason": p.reason} for p in problems]}
    threshold = (f"critical: {'/'.join(sorted(CRITICAL_WAITING | CRITICAL_TERMINATED))}; warning: not Ready "
                 f"> {rules.not_ready_grace.total_seconds():.0f} s, >= {rules.restart_warning} restarts "
                 f"within {human_duration(rules.restart_window.total_seconds())}")
    result = dict(check_name=PODS.name, subject=namespace, value=len(problems), threshold=threshold,
                  runbook=PODS.runbook_for(namespace), details=details)
    if not pods:
        return CheckResult(status=Status.WARNING, **result,
                           message=f"no pods in namespace {namespace}: namespace missing, or its workloads "
                                   f"scaled to zero - kubectl get all -n {namespace}")
    if not problems:
        return CheckResult(status=Status.OK, **result,
                           message=f"{len(pods)} pods in {namespace}, all running and Ready")
    listed = "; ".join(f"{p.pod}: {p.reason}" for p in problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more (see details)" if len(problems) > MAX_LISTED else ""
    return CheckResult(status=worst(p.status for p in problems), **result,
                       message=f"{len(problems)} of {len(pods)} pods unhealthy in {namespace}: {listed}{more} - "
                               f"kubectl describe pod / kubectl logs --previous -n {namespace}")


def _conditions(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (resource.get("status") or {}).get("conditions", [])}


def evaluate_strimzi_kafka(name: str, namespace: str, kafka: dict[str, Any] | None) -> CheckResult:
    """Strimzi reports Ready=True when reconciled, or NotReady=True (or Ready=False) with the reason."""
    subject = f"{namespace}/{name}"
    base = dict(check_name=STRIMZI.name, subject=subject, runbook=STRIMZI.runbook,
                threshold="critical: Ready=False / NotReady")
    if kafka is None:
        return CheckResult(status=Status.CRITICAL, **base,
                           message=f"Kafka CR {subject} not found (kafka.strimzi.io/v1beta2): the cluster is gone, "
                                   f"or kubernetes.kafka_cluster/kafka_namespace are wrong")
    status, conditions = kafka.get("status") or {}, _conditions(kafka)
    ready, not_ready = conditions.get("Ready", {}), conditions.get("NotReady", {})
    warnings = [f"{c.get('reason')}: {c.get('message', '')}" for c in status.get("conditions", [])
                if c.get("type") == "Warning" and c.get("status") == "True"]
    details = {"conditions": status.get("conditions", []), "kafkaVersion": status.get("kafkaVersion"),
               "observedGeneration": status.get("observedGeneration"),
               "generation": kafka.get("metadata", {}).get("generation")}
    if ready.get("status") == "True":
        note = f"; {len(warnings)} operator warning(s): {' | '.join(warnings)[:300]}" if warnings else ""
        return CheckResult(status=Status.OK, details=details, **base,
                           message=f"Kafka {subject} Ready (Kafka {status.get('kafkaVersion', '?')}){note}")
    failing = not_ready if not_ready.get("status") == "True" else ready
    if failing.get("status") in ("True", "False"):
        return CheckResult(status=Status.CRITICAL, details=details, **base,
                           message=f"Kafka {subject} not Ready: {failing.get('reason', '?')}: "
                                   f"{failing.get('message', 'no message')[:300]} - "
                                   f"kubectl describe kafka {name} -n {namespace}; check the operator log")
    return CheckResult(status=Status.WARNING, details=details, **base,
                       message=f"Kafka {subject} has no Ready condition yet (operator has not reconciled it) - "
                               f"check the Strimzi cluster operator")


CNPG_HEALTHY = "Cluster in healthy state"
CNPG_CRITICAL_PHASES = {"Failing over", "Cluster is in an unrecoverable state, needs manual intervention"}


def evaluate_cnpg_cluster(name: str, namespace: str, cluster: dict[str, Any] | None) -> CheckResult:
    """Healthy phase is ok; a primary that is missing, failing or unhealthy is critical; anything else warns."""
    subject = f"{namespace}/{name}"
    base = dict(check_name=CNPG.name, subject=subject, runbook=CNPG.runbook,
                threshold=f"ok: phase '{CNPG_HEALTHY}'; critical: primary down, failover, unrecoverable")
    if cluster is None:
        return CheckResult(status=Status.CRITICAL, **base,
                           message=f"CNPG Cluster {subject} not found (postgresql.cnpg.io/v1): the database is "
                                   f"gone, or kubernetes.cnpg_cluster/cnpg_namespace are wrong")
    status = cluster.get("status") or {}
    phase, primary = status.get("phase", "no phase"), status.get("currentPrimary")
    ready, instances = status.get("readyInstances", 0), status.get("instances", 0)
    by_state = status.get("instancesStatus") or {}
    details = {key: status.get(key) for key in ("phase", "phaseReason", "currentPrimary", "targetPrimary",
                                                "currentPrimaryFailingSinceTimestamp", "readyInstances",
                                                "instances", "instancesStatus", "conditions")}
    summary = f"phase '{phase}', primary {primary or 'NONE'}, {ready}/{instances} instances ready"
    reason = f" ({status['phaseReason']})" if status.get("phaseReason") else ""

    primary_down = [why for failing, why in [
        (not primary, "no current primary"),
        (bool(status.get("currentPrimaryFailingSinceTimestamp")),
         f"primary failing since {status.get('currentPrimaryFailingSinceTimestamp')}"),
        (bool(by_state) and primary not in by_state.get("healthy", []), f"primary {primary} is not healthy"),
        (instances > 0 and ready == 0, "no instance ready"),
        (phase in CNPG_CRITICAL_PHASES, phase),
    ] if failing]
    if primary_down:
        return CheckResult(status=Status.CRITICAL, value=ready, details=details, **base,
                           message=f"CNPG {subject} primary down/degraded: {'; '.join(primary_down)} - {summary}"
                                   f"{reason}; kubectl cnpg status {name} -n {namespace}")
    if phase == CNPG_HEALTHY and ready >= instances:
        return CheckResult(status=Status.OK, value=ready, details=details, **base, message=f"CNPG {subject}: {summary}")
    return CheckResult(status=Status.WARNING, value=ready, details=details, **base,
                       message=f"CNPG {subject} not fully healthy: {summary}{reason} - "
                               f"kubectl cnpg status {name} -n {namespace}")


FLINK_JM = {"READY": Status.OK, "DEPLOYING": Status.WARNING, "DEPLOYED_NOT_READY": Status.WARNING,
            "MISSING": Status.CRITICAL, "ERROR": Status.CRITICAL}
FLINK_LIFECYCLE = {"STABLE": Status.OK, "DEPLOYED": Status.OK, "CREATED": Status.WARNING,
                   "UPGRADING": Status.WARNING, "ROLLING_BACK": Status.WARNING, "ROLLED_BACK": Status.WARNING,
                   "SUSPENDED": Status.CRITICAL, "FAILED": Status.CRITICAL}
FLINK_TRANSITIONAL = {"CREATED", "UPGRADING", "ROLLING_BACK"}
FLINK_JOB = {"RUNNING": Status.OK, "CREATED": Status.WARNING, "INITIALIZING": Status.WARNING,
             "RECONCILING": Status.WARNING, "RESTARTING": Status.WARNING, "CANCELLING": Status.CRITICAL,
             "CANCELED": Status.CRITICAL, "FAILING": Status.CRITICAL, "FAILED": Status.CRITICAL,
             "FINISHED": Status.CRITICAL, "SUSPENDED": Status.CRITICAL}


def evaluate_flink_deployment(name: str, namespace: str, deployment: dict[str, Any]) -> CheckResult:
    """JobManager deployment status, lifecycle state and job state: the worst of the three decides."""
    subject, status = f"{namespace}/{name}", deployment.get("status") or {}
    job = status.get("jobStatus") or {}
    observed = [("jobManagerDeploymentStatus", status.get("jobManagerDeploymentStatus"), FLINK_JM),
                ("lifecycleState", status.get("lifecycleState"), FLINK_LIFECYCLE),
                ("job", job.get("state"), FLINK_JOB)]
    # A value the operator has not written yet says nothing; an unfamiliar one is worth a look.
    levels = [table.get(value, Status.WARNING) for _, value, table in observed if value]
    level = worst(levels) if levels else Status.WARNING
    if status.get("lifecycleState") in FLINK_TRANSITIONAL:
        # A savepoint upgrade stops the job (FINISHED) and replaces the JobManager (MISSING) on purpose.
        level = Status.WARNING
    summary = ", ".join(f"{label} {value}" for label, value, _ in observed if value) or "no status yet"
    error = f"; error: {str(status['error'])[:300]}" if status.get("error") else ""
    details = {"jobManagerDeploymentStatus": status.get("jobManagerDeploymentStatus"),
               "lifecycleState": status.get("lifecycleState"), "jobStatus": job,
               "taskManager": status.get("taskManager"), "error": status.get("error")}
    hint = "" if level is Status.OK else f" - kubectl describe flinkdeployment {name} -n {namespace}"
    return CheckResult(FLINK.name, level, subject=subject, runbook=FLINK.runbook, details=details,
                       threshold="ok: JM READY, STABLE/DEPLOYED, job RUNNING",
                       message=f"FlinkDeployment {subject}: {summary}{error}{hint}")


def evaluate_flink_workloads(name: str, namespace: str, selector: str,
                             deployments: Iterable[dict[str, Any]]) -> CheckResult:
    """Without the operator's CR: the jobmanager and taskmanager Deployments' ready replicas."""
    subject = f"{namespace}/{name}"
    base = dict(check_name=FLINK.name, subject=subject, runbook=FLINK.runbook,
                threshold="ok: all replicas ready; warning: some; critical: none, or a component missing")
    by_component: dict[str, list[tuple[str, int, int]]] = {}
    for item in deployments:
        component = item.get("metadata", {}).get("labels", {}).get("component", "other")
        desired = (item.get("spec") or {}).get("replicas", 1)
        ready = (item.get("status") or {}).get("readyReplicas", 0)
        by_component.setdefault(component, []).append((item["metadata"]["name"], ready, desired))
    details = {"source": "deployments", "selector": selector,
               "deployments": {c: [{"name": n, "ready": r, "desired": d} for n, r, d in v]
                               for c, v in by_component.items()}}
    summary = ", ".join(f"{n} {r}/{d} ready" for v in by_component.values() for n, r, d in v)
    missing = [c for c in ("jobmanager", "taskmanager") if c not in by_component]
    if missing:
        return CheckResult(status=Status.CRITICAL, details=details, **base,
                           message=f"no FlinkDeployment {subject} and no {'/'.join(missing)} Deployment matching "
                                   f"'{selector}' in {namespace}{': ' + summary if summary else ''}")
    counts = [(r, d) for v in by_component.values() for _, r, d in v]
    if any(r == 0 and d > 0 for r, d in counts):
        level = Status.CRITICAL
    elif any(r < d for r, d in counts):
        level = Status.WARNING
    else:
        level = Status.OK
    hint = "" if level is Status.OK else f" - kubectl get deploy,pods -l '{selector}' -n {namespace}"
    return CheckResult(status=level, details=details, **base, message=f"Flink {subject} (Deployments): {summary}{hint}")


# --- kubernetes.expected_workloads ---------------------------------------------------------------------

def _pod_serving(pod: dict[str, Any]) -> bool:
    """Running and Ready: a pod that counts as one replica of what the runbook expects."""
    status = pod.get("status") or {}
    ready = {c.get("type"): c.get("status") for c in status.get("conditions", [])}.get("Ready")
    return status.get("phase") == "Running" and ready == "True" and not pod["metadata"].get("deletionTimestamp")


def _matches(pod: dict[str, Any], workload: ExpectedWorkload) -> bool:
    name, labels = pod["metadata"]["name"], pod["metadata"].get("labels") or {}
    if not any(fnmatchcase(name, pattern) for pattern in (workload.pod, *workload.alternatives)):
        return False
    if workload.label:
        key, _, value = workload.label.partition("=")
        return labels.get(key) == value
    return True


def evaluate_expected_workloads(namespace: str, pods: list[dict[str, Any]], expected: Iterable[ExpectedWorkload],
                                executor: str) -> CheckResult:
    """The runbook's inventory of one namespace against its pods: every workload present with its replicas.

    Counted are Running and Ready pods. Fewer than expected is a warning; a single-instance core workload
    (broker, JobManager, PostgreSQL primary, scheduler) with no serving pod is critical. An empty
    namespace is therefore a finding, never silence.
    """
    wanted = [w for w in expected if w.executor in (None, executor)]
    counts = [(w, sum(1 for p in pods if _matches(p, w) and _pod_serving(p))) for w in wanted]
    short = [(w, n) for w, n in counts if n < w.replicas]
    details = {"namespace": namespace, "pods_total": len(pods), "executor": executor,
               "workloads": [{"pod": w.pod, "alternatives": w.alternatives, "label": w.label,
                              "description": w.description, "expected": w.replicas, "serving": n, "core": w.core}
                             for w, n in counts]}
    threshold = "warning: fewer serving pods than expected; critical: a core single-instance workload absent"

    def name(w: ExpectedWorkload) -> str:
        return " or ".join((w.pod, *w.alternatives)) + (f" [{w.label}]" if w.label else "")

    if not short:
        return EXPECTED_WORKLOADS.result(Status.OK, subject=namespace, value=0, threshold=threshold, details=details,
                                         message=f"all {len(wanted)} expected workloads of {namespace} serving "
                                                 f"({len(pods)} pods)")
    core_absent = [w for w, n in short if w.core and n == 0]
    listed = "; ".join(f"{w.description or name(w)} ({name(w)}): {n}/{w.replicas} serving" for w, n in short)
    empty = f"namespace {namespace} has no pods at all: " if not pods else ""
    return EXPECTED_WORKLOADS.result(
        Status.CRITICAL if core_absent else Status.WARNING, subject=namespace, value=len(short),
        threshold=threshold, details=details,
        message=f"{empty}{len(short)} of {len(wanted)} expected workloads short in {namespace}: {listed}",
        step=EXPECTED_WORKLOADS.first_step.replace("<namespace>", namespace))


# --- kubernetes.pvc_usage ------------------------------------------------------------------------------

def _series(vector: list[dict[str, Any]], namespaces: set[str]) -> dict[tuple[str, str], float]:
    """A Prometheus instant vector -> {(namespace, pvc): value}, streamflow namespaces only."""
    out = {}
    for sample in vector:
        labels = sample.get("metric") or {}
        key = (labels.get("namespace", ""), labels.get("persistentvolumeclaim", ""))
        if key[0] in namespaces and key[1]:
            out[key] = float(sample["value"][1])
    return out


def evaluate_pvc_usage(used: list[dict[str, Any]], capacity: list[dict[str, Any]], namespaces: Iterable[str],
                       warning_ratio: float, critical_ratio: float) -> list[CheckResult]:
    """kubelet_volume_stats_used_bytes / capacity_bytes per PVC: warning from `warning_ratio`, critical
    above `critical_ratio` (runbook PostgresPVCNearlyFull: > 80 % warning, > 95 % critical).

    No series at all for the streamflow namespaces means Prometheus does not see the kubelet's volume
    statistics: unknown, because a full disk would go unseen."""
    scope = set(namespaces)
    used_by, capacity_by = _series(used, scope), _series(capacity, scope)
    threshold = f"warning >= {warning_ratio:.0%}, critical > {critical_ratio:.0%} used"
    if not used_by:
        return [PVC_USAGE.unknown(f"Prometheus has no kubelet_volume_stats_used_bytes series for "
                                  f"{', '.join(sorted(scope))}: is the kubelet scraped (kube-prometheus-stack)?")]
    results = []
    for (namespace, pvc), used_bytes in sorted(used_by.items()):
        subject, total = f"{namespace}/{pvc}", capacity_by.get((namespace, pvc))
        if not math.isfinite(used_bytes) or (total is not None and not math.isfinite(total)):
            # Prometheus answers NaN/Inf as numbers; every band comparison with NaN is False, so it read ok.
            results.append(PVC_USAGE.unknown(f"{subject}: no usable reading (used {used_bytes}, capacity {total})",
                                             subject=subject))
            continue
        if not total:
            results.append(PVC_USAGE.unknown(f"{subject}: {used_bytes / 2**30:.1f} GiB used, capacity unknown "
                                             f"(no kubelet_volume_stats_capacity_bytes)", subject=subject))
            continue
        ratio = used_bytes / total
        status = (Status.CRITICAL if ratio > critical_ratio else Status.WARNING if ratio >= warning_ratio
                  else Status.OK)
        step = ("Kafka: delete old log segments, then expand the PVC" if namespace == "streamflow-kafka"
                else None)
        results.append(PVC_USAGE.result(
            status, subject=subject, value=round(ratio * 100, 1), threshold=threshold, step=step,
            details={"used_bytes": used_bytes, "capacity_bytes": total},
            message=f"{subject}: {ratio:.0%} used ({used_bytes / 2**30:.1f} of {total / 2**30:.1f} GiB)"))
    return results
