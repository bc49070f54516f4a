"""What the window and the alert state push, rendered (pure) and parsed back with Prometheus' own parser."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from streamflow_ops.alerting.state import AlertState
from streamflow_ops.metrics import owed_deliveries, render_alert_metrics, render_window_metrics
from streamflow_ops.results import CheckResult, Status


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


OWING = [AlertState("postgres.backup_age", pending_page="trigger", pending_slack=("change",)),
         AlertState("kafka.consumer_lag", subject="g1", pending_slack=("change",)),
         AlertState("flink.job_running")]


def test_owed_deliveries_count_only_configured_channels():
    assert owed_deliveries(OWING, ["pagerduty", "slack"]) == {"pagerduty": 1, "slack": 2}
    # no PagerDuty connection: a page that can never be delivered is not "undelivered"
    assert owed_deliveries(OWING, ["slack"]) == {"pagerduty": 0, "slack": 2}
    assert owed_deliveries([], ["slack"]) == {"pagerduty": 0, "slack": 0}  # 0, never absent
    parsed = samples(render_alert_metrics(OWING, ["slack"]))
    assert parsed[("streamflow_ops_alert_owed_deliveries", (("channel", "pagerduty"),))] == 0
    assert parsed[("streamflow_ops_alert_owed_deliveries", (("channel", "slack"),))] == 2


def test_window_metrics_worst_status_per_step_and_success_time_only_on_success():
    steps = [CheckResult("maintenance.vacuum", Status.OK, "vacuumed", subject="silver.t"),
             CheckResult("maintenance.vacuum", Status.WARNING, "skipped: lock held", subject="gold.v"),
             CheckResult("maintenance.backup", Status.CRITICAL, "pg_dump failed"),
             CheckResult("maintenance.housekeeping", Status.SKIPPED, "no Kubernetes")]
    failed = samples(render_window_metrics(steps, {"vacuum": 12.5}, 300.0, 1_800_000_000, succeeded=False))
    assert failed[("streamflow_ops_window_step_status", (("step", "vacuum"),))] == 1
    assert failed[("streamflow_ops_window_step_status", (("step", "backup"),))] == 2
    assert ("streamflow_ops_window_step_status", (("step", "housekeeping"),)) not in failed  # skipped: no series
    assert failed[("streamflow_ops_window_step_duration_seconds", (("step", "vacuum"),))] == 12.5
    assert failed[("streamflow_ops_window_last_run_timestamp_seconds", ())] == 1_800_000_000
    assert ("streamflow_ops_window_last_success_timestamp_seconds", ()) not in failed
    ok = samples(render_window_metrics(steps[:2], {}, 300.0, 1_800_000_000, succeeded=True))
    assert ok[("streamflow_ops_window_last_success_timestamp_seconds", ())] == 1_800_000_000
