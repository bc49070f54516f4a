"""The monitoring stack's HTTP APIs through HttpHook (connections streamflow_prometheus/alertmanager/grafana)."""
from __future__ import annotations

from typing import Any

from streamflow_ops.config import MonitoringConfig
from streamflow_ops.http_probe import HttpJson, ProbeError


def _client(config: MonitoringConfig, conn_id: str) -> HttpJson:
    return HttpJson(conn_id, config.connect_timeout_s, config.request_timeout_s)


def prometheus_targets(config: MonitoringConfig) -> dict[str, Any]:
    """GET /api/v1/targets?state=active: the scrape targets and their health."""
    return _client(config, config.prometheus_conn_id).get("/api/v1/targets", {"state": "active"})[1]


def prometheus_query(config: MonitoringConfig, promql: str) -> list[dict[str, Any]]:
    """GET /api/v1/query: the instant vector of `promql` (data.result); an error status raises."""
    body = _client(config, config.prometheus_conn_id).get("/api/v1/query", {"query": promql})[1]
    if body.get("status") != "success":
        raise ProbeError(f"Prometheus query {promql!r} failed: {body.get('errorType')}: {body.get('error')}")
    return list(body["data"]["result"])


def alertmanager_alerts(config: MonitoringConfig) -> list[dict[str, Any]]:
    """GET /api/v2/alerts: alerts that fire and page (not silenced, not inhibited)."""
    params = {"active": "true", "silenced": "false", "inhibited": "false", "unprocessed": "false"}
    return _client(config, config.alertmanager_conn_id).get("/api/v2/alerts", params)[1]


def grafana_health(config: MonitoringConfig) -> tuple[int, dict[str, Any]]:
    """GET /api/health: Grafana answers 503 with the same document when its database fails."""
    return _client(config, config.grafana_conn_id).get("/api/health", accept=(503,))
