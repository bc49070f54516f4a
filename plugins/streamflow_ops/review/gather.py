"""Gather the weekly review: every section for the week before the reference time.

The week is [reference - 7 days, reference) and last week the 7 days before it, half-open like every
window of the package: an alert created exactly at the reference time belongs to next week's review.
PostgreSQL is required (the report is stored there); Prometheus is not: without it the capacity parts
that need it read "not gathered: <reason>" and the rest is still gathered.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from streamflow_ops.business.probes import fraud_counts
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.kafka.probes import load_samples
from streamflow_ops.results import describe_error
from streamflow_ops.review import evaluators as ev
from streamflow_ops.review import probes
from streamflow_ops.store import ensure_ops_schema

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
RUNBOOK = {
    "review": "Maintenance Windows > Weekly Maintenance (Sunday 02:00 UTC)",
    "rules": "Alert Response Procedures > Alert: HighFraudRate",
    "pvc": "Alert Response Procedures > Alert: PostgresPVCNearlyFull",
    "resources": "Scaling Guide > Current Resource Allocation",
    "lag": "Alert Response Procedures > Alert: KafkaConsumerLagHigh",
    "tables": "PostgreSQL Operations > Check Table Sizes",
}
# PromQL over the configured namespaces ({scope}); max/sum by label so that a series scraped twice counts once.
# Capacities and requests change rarely: their last value within the hour before the reference time counts
# (an instant query sees only the last 5 minutes, and one missed scrape would read "no request").
PVC_USED = 'max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes{{namespace=~"{scope}"}})'
PVC_CAPACITY = ('max by (namespace, persistentvolumeclaim) '
                '(last_over_time(kubelet_volume_stats_capacity_bytes{{namespace=~"{scope}"}}[1h]))')
CPU_USED = ('sum by (namespace) (rate(container_cpu_usage_seconds_total{{namespace=~"{scope}",container!=""}}'
            '[15m]))')
MEMORY_USED = 'sum by (namespace) (container_memory_working_set_bytes{{namespace=~"{scope}",container!=""}})'
REQUESTS = ('sum by (namespace) (last_over_time(kube_pod_container_resource_requests'
            '{{namespace=~"{scope}",resource="{resource}"}}[1h]))')


def week_start(reference: datetime) -> str:
    return (reference - WEEK).date().isoformat()


def gather(config: StreamflowOpsConfig, reference: datetime) -> tuple[dict[str, Any], list[dict] | str]:
    """(the report, the PVC readings with their points for the chart, or the reason they are missing)."""
    this_since, last_since = reference - WEEK, reference - 2 * WEEK
    wh, ops = config.warehouse, config.warehouse.ops_schema
    with warehouse_connection(wh) as conn:
        ensure_ops_schema(conn, ops)
        rules = probes.fraud_by_rule(conn, config, last_since, this_since, reference)
        rates = {"this_week": ev.fraud_rate(*fraud_counts(conn, config, this_since, reference)),
                 "last_week": ev.fraud_rate(*fraud_counts(conn, config, last_since, this_since))}
        alerts = ev.alert_history(probes.answers(conn, ops, last_since, reference), probes.alert_states(conn, ops),
                                  this_since, reference, config.alerting.flap_threshold,
                                  config.alerting.flap_window, config.review.top_n)
        tables = [(wh.bronze_schema, wh.bronze_table), (wh.silver_schema, wh.silver_table),
                  (wh.silver_schema, wh.fraud_alerts_table)]
        capacity: dict[str, Any] = {
            "rows_per_day": {layer: probes.rows_per_day(conn, config, table, this_since, reference)
                             for layer, table in (("bronze", tables[0]), ("silver", tables[1]))},
            "table_sizes": probes.table_sizes(conn, tables),
            "kafka_lag_headroom": _lag_headroom(conn, config, this_since, reference),
        }
    pvcs = _prometheus(config, reference, capacity)
    report = {
        "week_start": week_start(reference), "reference_time": reference.isoformat(),
        "window": {"this_week": [this_since.isoformat(), reference.isoformat()],
                   "last_week": [last_since.isoformat(), this_since.isoformat()]},
        "runbook": RUNBOOK,
        "alerts": alerts,
        "fraud_by_rule": [{"rule_id": r["rule_id"], "this_week": r["this_week"], "last_week": r["last_week"]}
                          for r in rules],
        "fraud_rate": rates,
        "threshold_review": ev.threshold_review(rules, config.review.rule_change_ratio, RUNBOOK["rules"]),
        "rule_change_ratio": config.review.rule_change_ratio,
        "volume_note": ev.volume_note(rates),
        "capacity": capacity,
    }
    return report, pvcs


def _lag_headroom(conn, config: StreamflowOpsConfig, since: datetime, until: datetime) -> dict[str, Any]:
    groups = config.kafka.checkpoint_committing_groups or config.kafka.consumer_groups
    if not groups:
        return {"not_gathered": "no consumer group configured (kafka.consumer_groups)"}
    return ev.lag_headroom(load_samples(conn, groups[0], since, until, config.warehouse.ops_schema), groups[0])


def _prometheus(config: StreamflowOpsConfig, reference: datetime, capacity: dict[str, Any]) -> list[dict] | str:
    """PVCs, CPU and memory against requests into `capacity`; each reads "not gathered: reason" on failure."""
    conn_id = config.monitoring.prometheus_conn_id
    if not connection_defined(conn_id):
        reason = f"not gathered: connection {conn_id} is not defined"
        capacity.update(pvcs=reason, cpu=reason, memory=reason)
        return reason
    k8s, prometheus, since = config.kubernetes, probes.Prometheus(config.monitoring), reference - WEEK
    scope = "|".join(sorted(set(k8s.namespaces) | set(k8s.expected_workloads)))
    try:
        pvcs = ev.pvc_projection(prometheus.series(PVC_USED.format(scope=scope), since, reference),
                                 prometheus.instant(PVC_CAPACITY.format(scope=scope), reference))
    except Exception as exc:  # noqa: BLE001 - a probe that failed is reported, the rest still runs
        pvcs = f"not gathered: {describe_error(exc)}"
    capacity["pvcs"] = pvcs if isinstance(pvcs, str) else (
        [{k: v for k, v in p.items() if k != "points"} for p in pvcs]
        or "not gathered: Prometheus has no kubelet_volume_stats_used_bytes series for the week")
    for key, usage, resource in (("cpu", CPU_USED, "cpu"), ("memory", MEMORY_USED, "memory")):
        try:
            rows = ev.against_requests(prometheus.series(usage.format(scope=scope), since, reference),
                                       prometheus.instant(REQUESTS.format(scope=scope, resource=resource), reference))
            capacity[key] = rows or f"not gathered: Prometheus has no {key} usage series for the week"
        except Exception as exc:  # noqa: BLE001
            capacity[key] = f"not gathered: {describe_error(exc)}"
    if isinstance(capacity["pvcs"], str):
        log.warning("weekly review: PVCs %s", capacity["pvcs"])
    return pvcs
