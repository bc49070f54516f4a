"""A week of kubelet and kube-state-metrics history for the sandbox's Prometheus (the weekly review's
capacity section): PVCs growing towards today's pushed reading, containers' CPU and memory, and the
namespaces' requests (the runbook's "Scaling Guide > Current Resource Allocation" table).

`openmetrics(end)` returns the series as OpenMetrics text for `sandbox.monitoring.backfill` (promtool
imports it before Prometheus starts); `load(layout)` does both. The series are exact by construction,
so a test can compute what the review must find: a PVC's growth per day is `GROWTH_PER_DAY`, its usage
at `end` is monitoring.SANDBOX_PVCS' used bytes, so days until full = (capacity - used) / growth.
"""
from __future__ import annotations

import math
import time

from sandbox import monitoring
from sandbox.proc import Layout

DAY = 86400
STEP_S = 300  # one sample every 5 minutes, as kube-prometheus-stack scrapes at most
GIB = 2**30
# PVC (namespace, claim) -> bytes it grew per day over the week.
GROWTH_PER_DAY = {("streamflow-data", "streamflow-postgres-1"): 0.25 * GIB,
                  ("streamflow-kafka", "data-streamflow-kafka-kafka-0"): 0.5 * GIB}
# namespace -> (CPU requested in cores, memory requested in bytes, average CPU used, average memory used):
# requests as the runbook's allocation table; streamflow-processing peaks over its CPU request.
NAMESPACES = {"streamflow-kafka": (1.0, 2 * 10**9, 0.45, 1.4 * 10**9),
              "streamflow-processing": (1.0, 2 * 10**9, 0.85, 1.7 * 10**9),
              "streamflow-data": (0.5, 1 * 10**9, 0.2, 0.6 * 10**9),
              "streamflow-orchestration": (0.5, 1 * 10**9, 0.3, 0.7 * 10**9),
              "streamflow-monitoring": (0.5, 1 * 10**9, 0.25, 0.8 * 10**9)}
DAILY_SWING = 0.3  # usage swings +-30 % around its average over each day


def _swing(t: float) -> float:
    return 1 + DAILY_SWING * math.sin(2 * math.pi * (t % DAY) / DAY)


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def openmetrics(end: float, days: int = 7, pvcs=monitoring.SANDBOX_PVCS) -> str:
    """The week before `end` (epoch seconds), sampled every STEP_S, as OpenMetrics ending in `# EOF`."""
    stamps = [end - days * DAY + i * STEP_S for i in range(days * DAY // STEP_S + 1)]
    lines: list[str] = []

    def family(name: str, kind: str, series: list[tuple[str, list[float]]], sample_name: str | None = None) -> None:
        lines.append(f"# TYPE {name} {kind}")
        for labels, values in series:
            lines.extend(f"{sample_name or name}{labels} {value:.6f} {t}" for t, value in zip(stamps, values))

    volume = {(ns, pvc): (used, capacity) for ns, pvc, used, capacity in pvcs}
    family("kubelet_volume_stats_used_bytes", "gauge", [
        (_labels(job=monitoring.KUBELET_JOB, namespace=ns, persistentvolumeclaim=pvc),
         [used - GROWTH_PER_DAY.get((ns, pvc), 0) * (end - t) / DAY for t in stamps])
        for (ns, pvc), (used, _) in volume.items()])
    family("kubelet_volume_stats_capacity_bytes", "gauge", [
        (_labels(job=monitoring.KUBELET_JOB, namespace=ns, persistentvolumeclaim=pvc), [capacity] * len(stamps))
        for (ns, pvc), (_, capacity) in volume.items()])
    cpu = []
    for ns, (_, _, average, _) in NAMESPACES.items():
        total, counter = 0.0, []
        for index, t in enumerate(stamps):
            total += average * _swing(t) * STEP_S if index else 0.0
            counter.append(total)
        cpu.append((_labels(namespace=ns, pod=f"{ns}-0", container="main"), counter))
    family("container_cpu_usage_seconds", "counter", cpu, "container_cpu_usage_seconds_total")
    family("container_memory_working_set_bytes", "gauge", [
        (_labels(namespace=ns, pod=f"{ns}-0", container="main"), [memory * _swing(t) for t in stamps])
        for ns, (_, _, _, memory) in NAMESPACES.items()])
    family("kube_pod_container_resource_requests", "gauge", [
        (_labels(namespace=ns, pod=f"{ns}-0", container="main", resource=resource, unit=unit), [value] * len(stamps))
        for ns, (cores, memory, _, _) in NAMESPACES.items()
        for resource, unit, value in (("cpu", "core", cores), ("memory", "byte", memory))])
    return "\n".join(lines) + "\n# EOF\n"


def load(layout: Layout, end: float | None = None) -> float:
    """Backfill the week before `end` (default: now, to the minute) into the profile's Prometheus; returns end."""
    end = float(end if end is not None else int(time.time()) // 60 * 60)
    monitoring.backfill(layout, openmetrics(end), "weekly_series")
    return end


def load_once(layout: Layout) -> float | None:
    """`load` into a profile whose Prometheus has no data yet (`python -m sandbox start`); None otherwise:
    a second week backfilled over the first would interleave two lines that end a start apart."""
    if monitoring.tsdb_dir(layout).exists():
        return None
    return load(layout)
