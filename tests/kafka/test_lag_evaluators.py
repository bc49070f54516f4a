"""The pure Kafka evaluators: bands, window rules, time lag and catch-up, metadata checks. No network."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from streamflow_ops.config import KafkaConfig
from streamflow_ops.kafka import evaluators
from streamflow_ops.kafka.model import (
    ClusterView,
    GroupOffsets,
    OffsetSample,
    PartitionInfo,
)
from streamflow_ops.results import Status

CFG = KafkaConfig()
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
GROUP = "orders-consumer"


def read(at: datetime, offsets: dict[int, tuple[int | None, int]], group: str = GROUP, topic: str = "orders",
         **kwargs) -> GroupOffsets:
    """One read: {partition: (committed, log_end)}."""
    return GroupOffsets(group, at, tuple(OffsetSample(at, group, topic, p, c, e) for p, (c, e) in offsets.items()),
                        **kwargs)


def judge(steps: list[dict[int, tuple[int | None, int]]], every: timedelta = timedelta(minutes=10),
          cfg: KafkaConfig = CFG, group: str = GROUP):
    """Evaluate the last step with the earlier ones as stored history."""
    reads = [read(T0 + i * every, step, group=group) for i, step in enumerate(steps)]
    history = [s for r in reads[:-1] for s in r.samples]
    return evaluators.consumer_lag(reads[-1], history, cfg, reads[-1].sampled_at)


@pytest.mark.parametrize("lag,status", [(0, Status.OK), (500, Status.OK), (999, Status.OK),
                                        (1_000, Status.WARNING), (5_000, Status.WARNING),
                                        (10_000, Status.WARNING), (10_001, Status.CRITICAL),
                                        (20_000, Status.CRITICAL)])
def test_runbook_bands(lag, status):
    result = judge([{0: (100_000 - lag, 100_000)}])
    assert (result.status, result.value, result.subject) == (status, lag, GROUP)
    assert "window rules need 3 samples" in result.message
    assert ("time lag needs a second sample" in result.message) == (lag > 0)


def test_stalled_consumer_with_backlog_is_critical_even_in_the_warning_band():
    result = judge([{0: (100, 3_000)}, {0: (100, 3_500)}, {0: (100, 4_100)}])
    assert result.status is Status.CRITICAL
    assert "stalled" in result.details["rules"] and "stalled: committed offsets unchanged for 20 min" in result.message


def test_unchanged_commits_with_a_small_lag_are_not_stalled():
    result = judge([{0: (100, 600)}, {0: (100, 600)}, {0: (100, 600)}])
    assert "stalled" not in result.details["rules"]


def test_growing_lag_warns_even_inside_the_ok_band():
    result = judge([{0: (0, 100), 1: (0, 0)}, {0: (50, 250), 1: (0, 0)}, {0: (100, 400), 1: (0, 0)}])
    assert result.status is Status.WARNING and result.details["rules"] == ["growing"]
    assert "100 -> 300" in result.message and "not catching up" in result.message


def test_a_sawtooth_is_not_growing():
    result = judge([{0: (0, 300)}, {0: (300, 500)}, {0: (300, 700)}, {0: (700, 900)}])
    assert result.status is Status.OK and result.details["rules"] == []


def test_rewind_warns():
    result = judge([{0: (1_000, 2_000)}, {0: (1_200, 2_000)}, {0: (400, 2_000)}])
    assert result.status is Status.WARNING
    assert "rewind" in result.details["rules"] and "orders[0] 1200->400" in result.message


def test_idle_topic_raises_no_lag_alarm():
    result = judge([{0: (100, 600)}, {0: (100, 600)}, {0: (100, 600)}])
    assert result.status is Status.OK and result.details["rules"] == ["idle"]
    assert "idle: no new messages for 20 min" in result.message


def test_samples_outside_the_window_are_not_judged():
    steps = [{0: (100, 3_000)}, {0: (100, 3_500)}, {0: (100, 4_000)}]
    # Samples 100 min apart: with the 180-min window only the last two are inside it.
    result = judge(steps, every=timedelta(minutes=100))
    assert result.details["window_samples"] == 2 and "stalled" not in result.details["rules"]


def test_time_lag_is_interpolated_from_log_end_samples():
    # log end 1000 at T0, 2000 at T0+60 s, 3000 at T0+120 s; offset 1500 was written at T0+30 s.
    result = judge([{0: (0, 1_000)}, {0: (0, 2_000)}, {0: (1_500, 3_000)}], every=timedelta(seconds=60))
    assert result.details["time_lag_s"] == pytest.approx(90) and result.details["time_lag_exact"]
    assert "time lag ~90 s" in result.message


def test_time_lag_older_than_the_samples_is_a_lower_bound():
    result = judge([{0: (0, 1_000)}, {0: (0, 2_000)}, {0: (500, 3_000)}], every=timedelta(seconds=60))
    assert result.details["time_lag_s"] == pytest.approx(120) and not result.details["time_lag_exact"]
    assert "time lag > 2 min" in result.message


def test_time_to_catch_up_comes_from_the_consumption_rate():
    # 1,000 consumed per minute, nothing produced: 3,000 left drain in 180 s.
    result = judge([{0: (0, 5_000)}, {0: (1_000, 5_000)}, {0: (2_000, 5_000)}], every=timedelta(minutes=1))
    assert result.details["catch_up_s"] == pytest.approx(180)
    assert result.details["consumption_per_s"] == pytest.approx(16.667, abs=0.01)
    assert "done in ~3 min" in result.message


def test_checkpoint_committing_groups_are_told_about_the_sawtooth():
    flink = judge([{0: (0, 10)}], group="flink-fraud-detector")
    other = judge([{0: (0, 10)}])
    assert "commits follow Flink checkpoints" in flink.message
    assert "checkpoint" not in other.message


def test_failed_read_is_unknown_never_ok():
    result = evaluators.consumer_lag(GroupOffsets(GROUP, T0, error="KafkaException: timed out"), [], CFG, T0)
    assert result.status is Status.UNKNOWN and "timed out" in result.message


def test_unreadable_partition_makes_a_low_lag_unknown():
    current = read(T0, {0: (10, 10)}, unavailable=("orders[1]: KafkaException: no leader",))
    result = evaluators.consumer_lag(current, [], CFG, T0)
    assert result.status is Status.UNKNOWN and "orders[1]" in result.message


def test_empty_group_and_uncommitted_and_deleted_topics():
    empty = evaluators.consumer_lag(GroupOffsets(GROUP, T0), [], CFG, T0)
    assert empty.status is Status.WARNING and "no committed offsets" in empty.message
    partial = evaluators.consumer_lag(read(T0, {0: (5, 10), 1: (None, 900)}, deleted_topics=("gone",)), [], CFG, T0)
    assert partial.value == 5 and partial.details["uncommitted_partitions"] == ["orders[1]"]
    assert "deleted topic(s) ignored: gone" in partial.message


def _view(*partitions: PartitionInfo, brokers: int = 1) -> ClusterView:
    topics: dict[str, tuple[PartitionInfo, ...]] = {}
    for p in partitions:
        topics[p.topic] = (*topics.get(p.topic, ()), p)
    return ClusterView(brokers, topics)


def test_metadata_evaluators():
    healthy = _view(PartitionInfo("a", 0, 1, (1, 2), (1, 2)), PartitionInfo("b", 0, 2, (1, 2), (2, 1)))
    assert evaluators.broker_reachable(healthy).status is Status.OK
    assert evaluators.topics_present(healthy, ["a", "b"]).status is Status.OK
    assert evaluators.partition_leaders(healthy).status is Status.OK
    assert evaluators.under_replicated(healthy).status is Status.OK
    sick = _view(PartitionInfo("a", 0, -1, (1, 2), (2,)))
    missing = evaluators.topics_present(sick, ["a", "fraud.alerts"])
    assert missing.status is Status.CRITICAL and "fraud.alerts" in missing.message
    assert evaluators.partition_leaders(sick).status is Status.CRITICAL
    under = evaluators.under_replicated(sick)
    assert under.status is Status.WARNING and "a[0] isr 1/2" in under.message


def test_sensor_timeout_message_gives_last_lag_and_trend():
    falling = [[0, 900], [10, 700], [20, 500]]
    message = evaluators.sensor_timeout_message("g", ["orders"], 0, falling, 20.4)
    assert message.startswith("consumer group g on orders still 500 behind after 20 s (threshold 0)")
    assert "falling at 20.0/s" in message
    assert "flat over 10 s, the consumer is not draining" in evaluators.lag_trend([[0, 5], [10, 5]])
    assert "rising" in evaluators.lag_trend([[0, 5], [10, 50]])
    assert "last read error: boom" in evaluators.sensor_timeout_message("g", None, 0, [], 3, "boom")
