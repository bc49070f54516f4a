"""The live pipeline against real Tansu and PostgreSQL: it flows, commits in a sawtooth, obeys its
controls, and the health checks tell an idle topic from a stalled consumer on it."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from itertools import pairwise

import psycopg
import pytest
from streamflow_ops.business import checks as business
from streamflow_ops.config import load_config
from streamflow_ops.kafka import checks as kafka_checks
from streamflow_ops.results import Status

from sandbox import pipeline
from tests.polling import wait_for

pytestmark = [pytest.mark.postgres]


def committed_total(layout) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": pipeline.kafka.bootstrap(layout), "group.id": pipeline.GROUP})
    try:
        parts = consumer.committed([TopicPartition(pipeline.TOPIC, p) for p in range(pipeline.kafka.PARTITIONS)], 5)
    finally:
        consumer.close()
    return sum(max(p.offset, 0) for p in parts)


def live_counts(dsn: str) -> dict[str, int]:
    """Live rows (the static seed has none with this prefix), and what the threshold says alerts must be."""
    with psycopg.connect(dsn) as conn:
        return dict(zip(("bronze", "silver", "fraudulent", "alerts"), conn.execute(
            "select (select count(*) from bronze.transactions where transaction_id like 'live-%'),"
            " (select count(*) from silver.transactions_enriched where transaction_id like 'live-%'),"
            " (select count(*) from silver.transactions_enriched where transaction_id like 'live-%'"
            "    and fraud_score >= 0.7),"
            " (select count(*) from silver.fraud_alerts where transaction_id like 'live-%')").fetchone()))


def test_pipeline_flows_commits_in_a_sawtooth_and_obeys_its_controls(live_pipeline, warehouse_db):
    layout = live_pipeline
    # Commits come every few seconds, not per message: sampled twice a second, the committed offset
    # holds still between commits and jumps at them.
    readings = []
    for _ in range(16):
        readings.append(committed_total(layout))
        time.sleep(0.5)
    steps = [b - a for a, b in pairwise(readings)]
    assert sum(1 for s in steps if s > 0) >= 2, readings
    assert sum(1 for s in steps if s == 0) >= len(steps) // 2, readings
    assert max(steps) >= 20, readings  # a commit carries a few seconds of events (20/s)

    # Slowed to 5/s against 20/s produced: the consumer still advances, the lag grows slowly.
    pipeline.slow(layout, events_per_s=5)
    wait_for("slow rate", lambda: pipeline.stats(layout, "consumer").get("rate_per_s", 99) < 8, timeout=30)
    lag_before, committed_before = pipeline.lag(layout), committed_total(layout)
    time.sleep(6.5)
    lag_after, committed_after = pipeline.lag(layout), committed_total(layout)
    assert committed_after > committed_before and lag_after > lag_before + 30, (lag_before, lag_after)

    # Paused: nothing is read or committed.
    pipeline.pause(layout)
    wait_for("paused", lambda: pipeline.stats(layout, "consumer").get("paused"), timeout=30)
    frozen = committed_total(layout)
    silver_frozen = live_counts(warehouse_db)["silver"]
    time.sleep(3.5)  # longer than the commit interval
    assert committed_total(layout) == frozen and live_counts(warehouse_db)["silver"] == silver_frozen

    # Producer stopped, consumer resumed: it drains everything; bronze, silver and alerts all agree.
    pipeline.stop_producer(layout)
    pipeline.resume(layout)
    wait_for("lag 0 after resume", lambda: pipeline.lag(layout) == 0, timeout=30)
    counts = live_counts(warehouse_db)
    produced = pipeline.stats(layout, "producer")["produced"]
    assert counts["bronze"] == counts["silver"] == produced > silver_frozen
    assert counts["alerts"] == counts["fraudulent"] > 0
    consumer = pipeline.stats(layout, "consumer")
    assert consumer["error_count"] == 0, consumer["errors"]
    assert "producer stopped" in pipeline.status(layout)


def test_lag_and_latency_tell_an_idle_topic_from_a_stalled_consumer(live_pipeline, warehouse_db):
    """Short windows through config overrides: samples seconds apart instead of an hourly sweep."""
    layout = live_pipeline
    config = load_config({"kafka": {"lag_warning": 100, "window_minutes": 1, "min_window_samples": 3,
                                    "request_timeout_s": 3},
                          "business": {"pipeline_latency_warning_s": 5, "pipeline_latency_critical_s": 600}})

    def sweep(samples: int = 3):
        for _ in range(samples):
            lag = [r for r in kafka_checks.run_checks(config) if r.check_name == "kafka.consumer_lag"]
            time.sleep(1)
        [latency] = [r for r in business.run_checks(config) if r.check_name == business.PIPELINE_LATENCY.name]
        return lag[0], latency

    def newest_silver_age() -> float:
        with psycopg.connect(warehouse_db) as conn:
            newest = conn.execute("select max(transaction_time) from silver.transactions_enriched").fetchone()[0]
        return datetime.now(timezone.utc).timestamp() - newest

    # Producer stopped: the consumer drains and commits everything; the topic goes quiet.
    pipeline.stop_producer(layout)
    wait_for("lag 0 after the producer stopped", lambda: pipeline.lag(layout) == 0, timeout=30)
    wait_for("stale silver", lambda: newest_silver_age() > 6, timeout=15)
    lag, latency = sweep()
    assert lag.status is Status.OK and "idle" in lag.details["rules"], lag.message
    assert "stalled" not in lag.details["rules"]
    assert latency.status is Status.WARNING, latency.message
    assert "no new events" in latency.message and "Flink stalled" not in latency.message

    # Consumer paused, producer back: events pile up behind a committed offset that does not move.
    pipeline.pause(layout)
    wait_for("paused", lambda: pipeline.stats(layout, "consumer").get("paused"), timeout=30)
    pipeline.start_producer(layout)
    wait_for("lag above the warning band", lambda: (pipeline.lag(layout) or 0) > 120, timeout=30)
    lag, latency = sweep()
    assert lag.status is Status.CRITICAL and "stalled" in lag.details["rules"], lag.message
    assert "idle" not in lag.details["rules"]
    assert latency.status is Status.WARNING, latency.message
    assert "Flink stalled" in latency.message and "no new events" not in latency.message
    assert latency.details["kafka_lag"]["lag"] >= 100

    # Resumed: silver is fresh again and the latency check says nothing about causes.
    pipeline.resume(layout)
    wait_for("fresh silver", lambda: newest_silver_age() < 3, timeout=30)
    [latency] = [r for r in business.run_checks(config) if r.check_name == business.PIPELINE_LATENCY.name]
    assert latency.status is Status.OK and "kafka_lag" not in latency.details, latency.message


def test_pipeline_cli_refuses_incomplete_controls_and_reports_a_stopped_pipeline(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "STREAMFLOW_SANDBOX_DIR": str(tmp_path), "STREAMFLOW_SANDBOX_PORT_BASE": "1000"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sandbox", *args], env=env, capture_output=True, text=True,
                              cwd=pipeline.REPO, timeout=60)

    slow = cli("pipeline", "slow")
    assert slow.returncode == 2 and "needs --rate" in slow.stderr
    bare = cli("pipeline")
    assert bare.returncode == 2 and "needs an action" in bare.stderr
    start = cli("pipeline", "start-producer")
    assert start.returncode == 2 and "not started" in start.stderr
    status = cli("status", "--only", "postgres")
    assert status.returncode == 0 and "pipeline: stopped" in status.stdout
