"""Monitoring check family: each API has its own connection, so each check is skipped on its own."""
from __future__ import annotations

from datetime import datetime

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.monitoring import evaluators as ev
from streamflow_ops.monitoring import probes
from streamflow_ops.results import CheckResult, guarded, skipped
from streamflow_ops.runbook import section


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    """`now` is accepted for the family interface; these checks read the current state only."""
    mon = config.monitoring
    checks = [
        (ev.TARGETS, mon.prometheus_conn_id, lambda: ev.evaluate_targets(probes.prometheus_targets(mon))),
        (ev.ALERTS, mon.alertmanager_conn_id, lambda: ev.evaluate_alerts(probes.alertmanager_alerts(mon))),
        (ev.GRAFANA, mon.grafana_conn_id, lambda: ev.evaluate_grafana(*probes.grafana_health(mon))),
    ]
    results: list[CheckResult] = []
    for name, conn_id, check in checks:
        if connection_defined(conn_id):
            results += guarded(name, check, runbook=section(name))
        else:
            results.append(skipped(name, conn_id, section(name)))
    return results
