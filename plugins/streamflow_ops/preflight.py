"""Preflight of the maintenance window: is every service there, and is it safe to change data?"""
from __future__ import annotations

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.flink.checks import job_running
from streamflow_ops.kafka.checks import broker_reachable
from streamflow_ops.postgres.checks import reachable
from streamflow_ops.results import CheckResult, guarded


def service_checks(config: StreamflowOpsConfig) -> list[CheckResult]:
    """Connect to each service; one failing never hides the others."""
    results: list[CheckResult] = []
    for name, probe in (("postgres.reachable", reachable), ("kafka.broker_reachable", broker_reachable),
                        ("flink.job_running", job_running)):
        results += guarded(name, lambda probe=probe: probe(config))
    return results
