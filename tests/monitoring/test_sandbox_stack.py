"""The sandbox's monitoring stack: real Prometheus, Alertmanager and Pushgateway from Debian's packages."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from sandbox import monitoring
from sandbox.proc import Layout, group_alive, running_group


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_each_service_in_its_own_group_with_a_pid_file(monitoring_service):
    groups = {s: running_group(monitoring._paths(monitoring_service, s)[0]) for s in monitoring.SERVICES}
    assert all(groups.values()), groups
    assert len(set(groups.values())) == len(groups)  # four process groups, none shared
    assert all(os.getpgid(pgid) == pgid for pgid in groups.values())  # each leads its own group


def test_prometheus_scrapes_the_pushgateway_with_honor_labels_and_loads_the_rules(monitoring_service):
    targets = _get(monitoring.url(monitoring_service, "prometheus") + "/api/v1/targets?state=active")
    pools = {t["scrapePool"]: t for t in targets["data"]["activeTargets"]}
    assert pools["pushgateway"]["scrapeUrl"] == monitoring.url(monitoring_service, "pushgateway") + "/metrics"
    # honor_labels: the pushed job label survives (without it the series would read job="pushgateway")
    volumes = monitoring.wait_for(monitoring_service, 'kubelet_volume_stats_used_bytes{job="kubelet"}')
    expected = {(ns, pvc) for ns, pvc, _, _ in monitoring.SANDBOX_PVCS}
    assert {(s["metric"]["namespace"], s["metric"]["persistentvolumeclaim"]) for s in volumes} == expected
    rules = _get(monitoring.url(monitoring_service, "prometheus") + "/api/v1/rules")["data"]["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert names == {"StreamFlowOpsSweepMissing", "StreamFlowOpsWindowMissed", "StreamFlowOpsAlertsUndelivered"}
    assert all(r["health"] == "ok" for g in rules for r in g["rules"])


def test_backfill_hook_loads_a_week_of_history_before_prometheus_starts(sandbox_layout, tmp_path):
    """monitoring.backfill(): promtool imports OpenMetrics history; queries a week back find it."""
    layout = Layout(root=tmp_path / "backfill", port_base=sandbox_layout.port_base + 15)
    now = int(time.time())
    week = [now - 7 * 86400 + i * 3600 for i in range(7 * 24 - 2)]  # hourly samples, the newest 3 h old
    text = "# TYPE sandbox_backfill_probe gauge\n" + "".join(
        f'sandbox_backfill_probe{{pvc="p"}} {i} {ts}\n' for i, ts in enumerate(week)) + "# EOF\n"
    try:
        imported = monitoring.backfill(layout, text, "week")  # Prometheus not running: imported at once
        assert imported.exists() and not list(monitoring.backfill_dir(layout).glob("*.om"))
        monitoring.start(layout)
        at = week[24]  # six days ago
        answer = _get(monitoring.url(layout, "prometheus") + f"/api/v1/query?query=sandbox_backfill_probe&time={at}")
        assert [s["value"] for s in answer["data"]["result"]] == [[at, "24"]]
        # a second backfill while Prometheus runs restarts it with the new blocks
        later = "# TYPE sandbox_backfill_second gauge\n" + f"sandbox_backfill_second 7 {week[30]}\n# EOF\n"
        monitoring.backfill(layout, later, "second")
        answer = _get(monitoring.url(layout, "prometheus")
                      + f"/api/v1/query?query=sandbox_backfill_second&time={week[30]}")
        assert [s["value"][1] for s in answer["data"]["result"]] == ["7"]
    finally:
        pgids = [running_group(monitoring._paths(layout, s)[0]) for s in monitoring.SERVICES]
        monitoring.stop(layout)
    assert not any(p and group_alive(p) for p in pgids)


def test_backfill_refused_by_promtool_names_the_file(tmp_path, sandbox_layout):
    layout = Layout(root=tmp_path / "bad", port_base=sandbox_layout.port_base + 15)
    with pytest.raises(Exception, match=r"promtool refused .*broken\.om"):
        monitoring.backfill(layout, "not openmetrics at all {\n", "broken")
