"""Monitoring check family: each API has its own connection, so each check is skipped on its own."""
from __future__ import annotations

from datetime import datetime

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.monitoring import evaluators as ev
from streamflow_ops.monitoring import probes
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    """`now` is accepted for the family interface; these checks read the current state only."""
    mon = config.monitoring
    checks = [
        (ev.TARGETS, lambda: ev.evaluate_targets(probes.prometheus_targets(mon))),
        (ev.ALERTS, lambda: ev.evaluate_alerts(probes.alertmanager_alerts(mon))),
        (ev.GRAFANA, lambda: ev.evaluate_grafana(*probes.grafana_health(mon))),
    ]
    return [r for spec, check in checks for r in run_guarded(config, [spec], lambda check=check: [check()])]


FAMILY = register(Family("monitoring", run_checks))
