"""The weekly review on a crafted warehouse: exact counts per rule and both weeks' fraud rates against SQL,
the flagged rules, the alert history replayed from sweep results, valid PNG charts, Slack (webhook and
file upload) only on a real run and never twice, and the capacity section without Prometheus."""
from __future__ import annotations

import json
import struct
from datetime import timedelta

import psycopg
import pytest

from streamflow_ops.config import load_config
from streamflow_ops.review import evaluators as ev
from streamflow_ops.review.gather import gather
from tests.dagfiles import load_repo_dag
from tests.fakes.http_api import http_connection, unused_port
from tests.review.conftest import REFERENCE, WEEK, expected_counts

pytestmark = pytest.mark.postgres
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; refuses anything that is not a PNG."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


def sql_counts(dsn: str) -> dict[str, tuple[int, int]]:
    """Independent of the product: one filter per week, written out here."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select rule_id, sum((created_at >= %(r)s - interval '7 days' and created_at < %(r)s)::int),"
            " sum((created_at >= %(r)s - interval '14 days' and created_at < %(r)s - interval '7 days')::int)"
            " from silver.fraud_alerts group by rule_id", {"r": REFERENCE}).fetchall()
    return {rule: (this, last) for rule, this, last in rows if this or last}


def sql_rate(dsn: str, since, until) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select count(*), count(*) filter (where fraud_score >= 0.7) from "
                            "silver.transactions_enriched where transaction_time >= extract(epoch from %s::timestamptz)"
                            " and transaction_time < extract(epoch from %s::timestamptz)", (since, until)).fetchone()


def test_fraud_by_rule_rates_and_flagged_rules_match_sql(crafted_warehouse):
    report, _ = gather(load_config(), REFERENCE)
    got = {r["rule_id"]: (r["this_week"], r["last_week"]) for r in report["fraud_by_rule"]}
    assert got == expected_counts() == sql_counts(crafted_warehouse)
    assert got["velocity_check"] == (12, 6)  # 10 + ref-1µs, ref-7d, and not ref itself; 4 + ref-7d-1µs, ref-14d
    for week, since, until in (("this_week", REFERENCE - WEEK, REFERENCE),
                               ("last_week", REFERENCE - 2 * WEEK, REFERENCE - WEEK)):
        total, flagged = sql_rate(crafted_warehouse, since, until)
        assert total > 0 and report["fraud_rate"][week] == {"transactions": total, "flagged": flagged,
                                                            "rate": flagged / total}
    # 0.5 by default: exact_half (6 vs 4, +50 %) and amount_threshold (5 vs 5) are not flagged.
    flagged = {r["rule_id"]: (r["last_week"], r["this_week"], r["change_ratio"], r["direction"])
               for r in report["threshold_review"]}
    assert flagged == {"velocity_check": (6, 12, 1.0, "up"), "geo_anomaly": (6, 1, round(-5 / 6, 4), "down"),
                       "blacklist_match": (0, 3, None, "up"), "gone_quiet": (2, 0, -1.0, "down")}
    assert {r["runbook"] for r in report["threshold_review"]} == {"Alert Response Procedures > Alert: HighFraudRate"}
    # The seeded warehouse has 9 days: last week holds about one day of transactions, and the report says so.
    this_total, last_total = (report["fraud_rate"][w]["transactions"] for w in ("this_week", "last_week"))
    assert last_total < this_total / 2
    assert report["volume_note"] == (f"last week holds {last_total:,} transactions against {this_total:,} this week: "
                                     f"a rule's change may reflect the volume of data rather than the rule")
    assert ev.volume_note({"this_week": {"transactions": 100}, "last_week": {"transactions": 50}}) is None
    lag = report["capacity"]["kafka_lag_headroom"]
    assert (lag["samples"], lag["peak_input_per_s"], lag["best_consumer_per_s"], lag["headroom"]) == (3, 4.0, 8.0, 2.0)
    stricter = gather(load_config({"review": {"rule_change_ratio": 0.4}}), REFERENCE)[0]["threshold_review"]
    assert {r["rule_id"] for r in stricter} == set(flagged) | {"exact_half"}


def test_without_prometheus_capacity_says_why_and_the_rest_is_gathered(crafted_warehouse, monkeypatch):
    report, pvcs = gather(load_config(), REFERENCE)
    reason = "not gathered: connection streamflow_prometheus is not defined"
    assert pvcs == reason and {report["capacity"][k] for k in ("pvcs", "cpu", "memory")} == {reason}
    with psycopg.connect(crafted_warehouse) as conn:
        per_day = conn.execute(
            "select (to_timestamp(transaction_time) at time zone 'UTC')::date::text, count(*) from bronze.transactions"
            " where transaction_time >= %s and transaction_time < %s group by 1 order by 1",
            ((REFERENCE - WEEK).timestamp(), REFERENCE.timestamp())).fetchall()
    bronze = report["capacity"]["rows_per_day"]["bronze"]
    assert [(r["day"], r["rows"]) for r in bronze] == per_day and len(per_day) >= 7
    assert all(t["bytes"] > 0 for t in report["capacity"]["table_sizes"])
    # Defined but unreachable: each part says what failed, fast (one timeout for all: the client remembers).
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_PROMETHEUS", http_connection(f"http://127.0.0.1:{unused_port()}"))
    report, _ = gather(load_config(), REFERENCE)
    for part in ("pvcs", "cpu", "memory"):
        assert report["capacity"][part].startswith("not gathered: ProbeError: GET http://127.0.0.1:"), part
        assert "no answer" in report["capacity"][part]
    assert report["fraud_by_rule"] and report["capacity"]["rows_per_day"]["silver"]


def at(hours: float):
    return REFERENCE - WEEK + timedelta(hours=hours)


def test_alert_history_replays_the_week_with_the_alerting_rules():
    """Slack hears every change, PagerDuty a turn to critical while no incident is open; a de-escalation to
    warning keeps it open; time to resolve runs from the first problem to the ok; before the week only sets
    where a subject stood, at `until` is next week."""
    lag = [(-5, "critical"), (1, "ok"), (2, "warning"), (3, "critical"), (4, "warning"), (5, "critical"), (7, "ok"),
           (10, "critical"), (14, "ok"), (168, "critical")]
    flappy = [(h, "ok" if h % 2 else "warning") for h in range(20, 28)]
    answers = ([ev.Answer("kafka.consumer_lag", "g", at(h), s) for h, s in lag]
               + [ev.Answer("flink.checkpoint_age", "", at(h), s) for h, s in flappy])
    states = [{"check_name": "postgres.connections", "subject": "", "incident_open": True, "flapping": False}]
    history = ev.alert_history(answers, states, at(0), at(168), flap_threshold=3, flap_window=6, top_n=2)
    checks = {c["check_name"]: c for c in history["checks"]}
    assert checks["kafka.consumer_lag"] == {
        "check_name": "kafka.consumer_lag", "slack_messages": 8, "pages_sent": 2, "resolved": 3, "open_incidents": 0,
        "flapping": ["g"], "median_time_to_resolve_s": 5 * 3600}  # 6 h (from before the week), 5 h, 4 h
    assert checks["flink.checkpoint_age"]["flapping"] == [""] and checks["flink.checkpoint_age"]["slack_messages"] == 8
    assert checks["postgres.connections"]["open_incidents"] == 1
    assert history["noisiest"] == ["kafka.consumer_lag", "flink.checkpoint_age"]
    assert history["totals"] == {"slack_messages": 16, "pages_sent": 2, "open_incidents": 1}


def test_pvc_projection_and_lag_headroom_by_hand():
    day = 86400
    used = [{"metric": {"namespace": "streamflow-data", "persistentvolumeclaim": "pg"},
             "values": [[i * 3600, str(10e9 + 1e9 * i / 24)] for i in range(169)]}]
    capacity = [{"metric": {"namespace": "streamflow-data", "persistentvolumeclaim": "pg"}, "value": [0, "50e9"]}]
    pvc, = ev.pvc_projection(used, capacity)
    assert pvc["used_bytes"] == 17e9 and pvc["growth_bytes_per_day"] == pytest.approx(1e9)
    assert pvc["days_until_full"] == pytest.approx(33) and pvc["usage_ratio"] == 17 / 50
    # Prometheus answers NaN/Inf as numbers: never a reading (report.json and jsonb refuse NaN)
    broken = [{**capacity[0], "value": [0, "NaN"]}]
    assert ev.pvc_projection(used, broken)[0] | {"points": None} == {
        "pvc": "streamflow-data/pg", "used_bytes": 17e9, "capacity_bytes": None, "usage_ratio": None,
        "growth_bytes_per_day": pytest.approx(1e9), "days_until_full": None, "points": None}
    nan_used = [{**used[0], "values": used[0]["values"] + [[169 * 3600, "NaN"]]}]
    assert ev.pvc_projection(nan_used, capacity)[0]["used_bytes"] == 17e9
    assert ev.against_requests([{"metric": {"namespace": "n"}, "values": [[0, "1"], [1, "+Inf"]]}],
                               [{"metric": {"namespace": "n"}, "value": [0, "NaN"]}]) == [
        {"namespace": "n", "average": 1.0, "peak": 1.0, "requested": None, "peak_over_request": None,
         "average_over_request": None}]
    flat = [{**used[0], "values": [[i * day, "5e9"] for i in range(8)]}]
    assert ev.pvc_projection(flat, capacity)[0]["days_until_full"] is None
    from datetime import datetime, timezone

    from streamflow_ops.kafka.model import OffsetSample

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    samples = [OffsetSample(t0 + timedelta(minutes=m), "g", "transactions.raw", p, c, e)
               for m, rows in ((0, [(0, 0), (0, 0)]), (10, [(600, 1200), (600, 1200)]),
                               (20, [(3000, 2400), (3000, 2400)]))
               for p, (c, e) in enumerate(rows)]
    headroom = ev.lag_headroom(samples, "g")
    assert (headroom["peak_input_per_s"], headroom["best_consumer_per_s"], headroom["headroom"]) == (4.0, 8.0, 2.0)


@pytest.mark.airflow
def test_dry_run_posts_nothing_then_the_real_run_posts_once(crafted_warehouse, slack_far_ends, airflow_db, tmp_path,
                                                          monkeypatch):
    webhook, slack_api = slack_far_ends
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"reports": {"folder": str(tmp_path)}}))
    week_start = (REFERENCE - WEEK).date().isoformat()
    folder = tmp_path / "weekly" / week_start
    dry_reference = REFERENCE - timedelta(days=1)  # its own logical date: a run of its own

    dr = load_repo_dag("weekly_review").test(logical_date=dry_reference, run_conf={"dry_run": True})
    assert dr.state == "success"
    assert webhook.requests == [] and slack_api.api.requests == []
    with psycopg.connect(crafted_warehouse) as conn:
        assert conn.execute("select count(*) from ops.weekly_review").fetchone()[0] == 0
    assert (tmp_path / "weekly" / (dry_reference - WEEK).date().isoformat() / "report.md").exists()

    dr = load_repo_dag("weekly_review").test(logical_date=REFERENCE, run_conf={"dry_run": False})
    assert dr.state == "success"
    charts = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    assert set(charts) == {"alerts_per_check.png", "fraud_by_rule.png", "rows_per_day.png"}  # no PVCs: no Prometheus
    for data in charts.values():
        assert png_size(data) == (800, 450)
    post, = webhook.requests
    body = post.json()
    assert f"Week of {week_start}: 4 alert messages, 1 pages" in body["text"] and "4 rule(s) to review" in body["text"]
    assert "rule velocity_check: 6 -> 12 alerts" in json.dumps(body["blocks"])
    complete, = slack_api.completed
    assert complete["channel_id"] == slack_api.CHANNEL_ID
    assert {f["filename"]: f["data"] for f in slack_api.uploaded.values()} == charts
    with psycopg.connect(crafted_warehouse) as conn:
        (report,), = conn.execute("select report from ops.weekly_review where week_start = %s",
                                  (week_start,)).fetchall()
    assert report["delivery"] == {"webhook": "sent", "charts": "uploaded 3 file(s): F00000001, F00000002, F00000003"}
    assert json.loads((folder / "report.json").read_text())["fraud_by_rule"] == report["fraud_by_rule"]
    assert report["alerts"]["totals"] == {"slack_messages": 4, "pages_sent": 1, "open_incidents": 0}

    # A retry of post (the task, with the stored report) sends nothing twice.
    from streamflow_ops.review.run import post as post_again

    post_again(load_config({"reports": {"folder": str(tmp_path)}}), week_start, dry_run=False)
    assert len(webhook.requests) == 1 and len(slack_api.completed) == 1


@pytest.mark.timeout(300)
def test_capacity_matches_a_week_loaded_into_the_real_prometheus(crafted_warehouse, sandbox_layout, tmp_path,
                                                                 monkeypatch):
    """sandbox/weekly_series.py's week, backfilled with promtool into a Prometheus of its own, ending 10
    minutes before the reference time (the requests are not scraped since: their last value counts), then
    the live pushed PVC readings: PVC usage, growth and days until full, CPU and memory against requests."""
    import time
    from datetime import datetime, timezone

    from sandbox import monitoring, weekly_series
    from sandbox.connections import monitoring_env
    from sandbox.proc import Layout

    layout = Layout(root=tmp_path / "prometheus", port_base=sandbox_layout.port_base + 10)
    try:
        weekly_series.load(layout, end=int(time.time()) - 600)
        monitoring.start(layout)
        monitoring.wait_for(layout, 'kubelet_volume_stats_used_bytes{job="kubelet"}')  # the live pushed reading
        key = "AIRFLOW_CONN_STREAMFLOW_PROMETHEUS"
        monkeypatch.setenv(key, monitoring_env(layout)[key])
        report, pvcs = gather(load_config(), datetime.now(timezone.utc))  # not truncated: after the live sample
    finally:
        monitoring.stop(layout)
    got = {p["pvc"]: p for p in report["capacity"]["pvcs"]}
    assert set(got) == {f"{ns}/{pvc}" for ns, pvc, _, _ in monitoring.SANDBOX_PVCS}
    for ns, pvc, used, capacity in monitoring.SANDBOX_PVCS:
        reading, growth = got[f"{ns}/{pvc}"], weekly_series.GROWTH_PER_DAY[(ns, pvc)]
        assert reading["used_bytes"] == used and reading["capacity_bytes"] == capacity
        # the live reading is the series' last value, ~10 minutes of growth below the line: a small bend
        assert reading["growth_bytes_per_day"] == pytest.approx(growth, rel=1e-3)
        assert reading["days_until_full"] == pytest.approx((capacity - used) / growth, rel=1e-3)
    assert [p["pvc"] for p in report["capacity"]["pvcs"]][0] == "streamflow-kafka/data-streamflow-kafka-kafka-0"
    cpu = {r["namespace"]: r for r in report["capacity"]["cpu"]}
    memory = {r["namespace"]: r for r in report["capacity"]["memory"]}
    assert set(cpu) == set(memory) == set(weekly_series.NAMESPACES)
    for ns, (cores, mem_request, cpu_average, mem_average) in weekly_series.NAMESPACES.items():
        assert cpu[ns]["requested"] == cores and memory[ns]["requested"] == mem_request
        assert cpu[ns]["average"] == pytest.approx(cpu_average, rel=0.05)
        assert cpu[ns]["peak"] == pytest.approx(cpu_average * (1 + weekly_series.DAILY_SWING), rel=0.05)
        assert memory[ns]["peak"] == pytest.approx(mem_average * (1 + weekly_series.DAILY_SWING), rel=0.01)
    assert len(pvcs) == 2 and all(len(p["points"]) == 7 * 24 + 1 for p in pvcs)
    from streamflow_ops.review import charts

    assert png_size(charts.pvc_usage(pvcs, tmp_path / "pvc.png").read_bytes()) == (800, 450)


@pytest.mark.airflow
def test_a_logical_date_ahead_of_run_after_is_refused_and_nothing_is_written(crafted_warehouse, slack_far_ends,
                                                                            airflow_db, tmp_path, monkeypatch):
    webhook, slack_api = slack_far_ends
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"reports": {"folder": str(tmp_path)}}))
    dag = load_repo_dag("weekly_review")
    for task in dag.tasks:
        task.retries = 0  # refused with AirflowFailException anyway; no retry delay to wait out
    dr = dag.test(logical_date=REFERENCE + timedelta(days=365), run_conf={"dry_run": False})
    assert dr.state == "failed"
    assert list(tmp_path.iterdir()) == [] and webhook.requests == [] and slack_api.api.requests == []
    with psycopg.connect(crafted_warehouse) as conn:
        assert conn.execute("select to_regclass('ops.weekly_review') is null or "
                            "(select count(*) = 0 from ops.weekly_review)").fetchone()[0]


def test_a_failed_upload_is_retried_alone_the_webhook_is_not_posted_again(crafted_warehouse, slack_far_ends,
                                                                         tmp_path):
    from streamflow_ops.review.run import post, prepare

    webhook, slack_api = slack_far_ends
    config = load_config({"reports": {"folder": str(tmp_path)}})
    week_start = prepare(config, REFERENCE, dry_run=False)["week_start"]
    refusals = iter([(200, {"ok": False, "error": "internal_error"})])
    complete = slack_api._complete
    slack_api.api.route("POST", r"/api/files\.completeUploadExternal",
                        lambda req: next(refusals, None) or complete(req))
    with pytest.raises(RuntimeError, match=r"charts via slack_streamflow_api: SlackApiError.*internal_error"):
        post(config, week_start, dry_run=False)
    assert len(webhook.requests) == 1 and slack_api.completed == []
    delivery = post(config, week_start, dry_run=False)
    assert len(webhook.requests) == 1 and len(slack_api.completed) == 1
    assert delivery["webhook"] == "sent" and delivery["charts"].startswith("uploaded 3 file(s)")
    with psycopg.connect(crafted_warehouse) as conn:
        stored = conn.execute("select report -> 'delivery' from ops.weekly_review where week_start = %s",
                              (week_start,)).fetchone()[0]
    assert stored == delivery
