"""business.pipeline_latency names the cause of stale silver from the Flink group's stored Kafka lag (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from streamflow_ops.business.evaluators import KafkaBacklog, evaluate_pipeline_latency
from streamflow_ops.config import BusinessConfig
from streamflow_ops.results import Status

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
NEWEST = NOW - timedelta(minutes=8)  # warning band (5-15 min)
CFG = BusinessConfig()


@pytest.mark.parametrize("backlog, says, not_says", [
    (KafkaBacklog("flink-fraud-detector", 0, NOW - timedelta(minutes=1)), "no new events", "Flink stalled"),
    (KafkaBacklog("flink-fraud-detector", 4_800, NOW - timedelta(minutes=1)), "Flink stalled: 4,800 events",
     "no new events"),
    # A sample from before the newest silver row cannot tell: nothing is claimed.
    (KafkaBacklog("flink-fraud-detector", 0, NEWEST - timedelta(seconds=1)), "no Kafka offset sample since then",
     "Flink stalled:"),
    (None, "no Kafka offset sample since then", "no new events:"),
], ids=["idle", "stalled", "sample-too-old", "no-sample"])
def test_stale_silver_names_its_cause(backlog, says, not_says):
    result = evaluate_pipeline_latency(NEWEST, NOW, CFG, backlog)
    assert result.status is Status.WARNING
    assert says in result.message and not_says not in result.message


def test_fresh_silver_claims_no_cause():
    result = evaluate_pipeline_latency(NOW - timedelta(minutes=1), NOW, CFG,
                                       KafkaBacklog("flink-fraud-detector", 4_800, NOW))
    assert result.status is Status.OK
    assert "stalled" not in result.message and "kafka_lag" not in result.details
