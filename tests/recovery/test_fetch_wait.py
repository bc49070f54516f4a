"""The boundary reads against a broker that holds each fetch for its whole wait and answers it empty when it
cannot scan the partition within it (what Tansu 0.6 does on partitions of ~100,000 messages): the reader
moves to a longer fetch.wait.max.ms instead of stalling, and names the partition when even the longest
wait gets nothing."""
from __future__ import annotations

import pytest

from streamflow_ops.recovery import replay
from streamflow_ops.recovery.replay import FETCH_WAITS_MS, ReplayError, _Reader


def test_the_waits_grow_from_a_round_trip_to_seconds():
    assert FETCH_WAITS_MS[0] <= 20 and FETCH_WAITS_MS[-1] >= 2_000 and list(FETCH_WAITS_MS) == sorted(FETCH_WAITS_MS)


class Message:
    def __init__(self, partition, offset):
        self._partition, self._offset = partition, offset

    def error(self):
        return None

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def timestamp(self):
        return (1, 1_000 * self._offset + self._partition)


class SlowScanBroker:
    """A consumer of a broker that needs `scan_ms` to answer a fetch: with a shorter wait, poll() gets nothing."""

    built: list[int] = []

    def __init__(self, wait_ms, scan_ms):
        self.wait_ms, self.scan_ms, self.queue, self.closed = wait_ms, scan_ms, [], False
        SlowScanBroker.built.append(wait_ms)

    def assign(self, partitions):
        self.queue = [Message(tp.partition, tp.offset) for tp in partitions]

    def poll(self, timeout):
        if self.wait_ms >= self.scan_ms and self.queue:
            return self.queue.pop(0)
        return None

    def close(self):
        self.closed = True


@pytest.fixture
def broker(monkeypatch):
    SlowScanBroker.built = []
    monkeypatch.setattr(replay, "FETCH_PATIENCE_S", 0.05)
    monkeypatch.setattr(replay, "FETCH_WAITS_MS", (20, 100, 500))  # the real ladder's shape, with shorter patience

    def use(scan_ms):
        monkeypatch.setattr(replay, "replay_consumer", lambda conn_id, wait: SlowScanBroker(wait, scan_ms))
    return use


def test_a_broker_that_answers_short_fetches_empty_gets_a_longer_wait(broker):
    broker(scan_ms=300)
    reader = _Reader("streamflow_kafka", "transactions.raw", timeout_s=0.3)
    assert reader.timestamps({0: 7, 2: 11}) == {0: 7_000, 2: 11_002}
    assert SlowScanBroker.built == [20, 100, 500]
    # the wait found is kept: the next round (and the read) use it at once
    assert reader.timestamps({1: 5}) == {1: 5_001} and SlowScanBroker.built == [20, 100, 500]


def test_a_cached_read_is_not_fetched_again(broker):
    broker(scan_ms=0)
    reader = _Reader("streamflow_kafka", "transactions.raw", timeout_s=0.3)
    assert reader.timestamps({0: 3}) == {0: 3_000}
    reader.consumer.queue, reader.consumer.poll = [], None  # a fetch now would fail
    assert reader.timestamps({0: 3}) == {0: 3_000}


def test_no_answer_even_at_the_longest_wait_names_the_partition_and_offset(broker):
    broker(scan_ms=501)
    reader = _Reader("streamflow_kafka", "transactions.raw", timeout_s=0.2)
    with pytest.raises(ReplayError, match=r"no message within 0.2 s at partition 1 offset 4"):
        reader.timestamps({1: 4})
    assert SlowScanBroker.built == [20, 100, 500]


class OnePartitionStalls(SlowScanBroker):
    """Partition 0 answers at every wait (and keeps streaming); partition 1 never does."""

    def poll(self, timeout):
        if any(m.partition() == 0 for m in self.queue):
            return self.queue.pop(0)
        return Message(0, 1_000)  # prefetched messages of partition 0, without end


def test_a_stalled_partition_is_noticed_while_another_streams(monkeypatch):
    monkeypatch.setattr(replay, "FETCH_PATIENCE_S", 0.05)
    monkeypatch.setattr(replay, "FETCH_WAITS_MS", (20, 100))
    monkeypatch.setattr(replay, "replay_consumer", lambda conn_id, wait: OnePartitionStalls(wait, 0))
    reader = _Reader("streamflow_kafka", "transactions.raw", timeout_s=0.2)
    with pytest.raises(ReplayError, match=r"no message within 0.2 s at partition 1 offset 9"):
        reader.timestamps({0: 3, 1: 9})
