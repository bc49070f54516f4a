"""Plain values the Kafka probes produce and the pure evaluators consume (no client objects)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OffsetSample:
    """One partition of one group at one instant; a row of ops.kafka_offset_samples."""

    sampled_at: datetime
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group has no commit on this partition
    log_end: int

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(0, self.log_end - self.committed)


@dataclass(frozen=True)
class GroupOffsets:
    """One read of one group. `error` set means the read failed and nothing may be concluded."""

    group: str
    sampled_at: datetime
    samples: tuple[OffsetSample, ...] = ()
    deleted_topics: tuple[str, ...] = ()  # committed offsets for topics the cluster no longer has
    unavailable: tuple[str, ...] = ()  # partitions whose log-end offset could not be read
    error: str | None = None

    @property
    def total_lag(self) -> int | None:
        """Sum over committed partitions; None when the group has no commit at all."""
        lags = [s.lag for s in self.samples if s.lag is not None]
        return sum(lags) if lags else None


@dataclass(frozen=True)
class PartitionInfo:
    topic: str
    partition: int
    leader: int  # -1: no leader
    replicas: tuple[int, ...]
    isrs: tuple[int, ...]


@dataclass(frozen=True)
class ClusterView:
    """Cluster metadata as the checks need it: broker count and each topic's partitions."""

    brokers: int
    topics: dict[str, tuple[PartitionInfo, ...]]
