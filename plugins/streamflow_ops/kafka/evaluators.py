"""Pure Kafka evaluators: cluster metadata or offset samples + config + now -> CheckResult. No I/O.

Consumer lag is judged like the runbook says (bands), then over a window of stored samples the way
Burrow does (stalled, growing, rewind, idle), and turned into seconds the way kafka-lag-exporter does
(interpolating log-end-offset samples over time).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from streamflow_ops.config import KafkaConfig
from streamflow_ops.kafka.model import ClusterView, GroupOffsets, OffsetSample
from streamflow_ops.results import CheckResult, Status, worst
from streamflow_ops import registry
from streamflow_ops.registry import CheckSpec
from streamflow_ops.timeutil import human_duration

LAG = registry.KAFKA_CONSUMER_LAG


def _result(spec: CheckSpec, status: Status, message: str, **kwargs) -> CheckResult:
    return spec.result(status, message, **kwargs)


# --- cluster metadata -----------------------------------------------------------------------------
def broker_unreachable(conn_id: str, error: str) -> CheckResult:
    return _result(registry.KAFKA_BROKER_REACHABLE, Status.CRITICAL,
                   f"KafkaBrokerDown: no answer from {conn_id}: {error}")


def broker_reachable(view: ClusterView) -> CheckResult:
    status = Status.OK if view.brokers else Status.CRITICAL
    return _result(registry.KAFKA_BROKER_REACHABLE, status, value=view.brokers,
                   message=f"{view.brokers} broker(s) answer, {len(view.topics)} topics")


def topics_present(view: ClusterView, expected: Sequence[str]) -> CheckResult:
    missing = [t for t in expected if t not in view.topics]
    if missing:
        return _result(registry.KAFKA_TOPICS_PRESENT, Status.CRITICAL, value=len(missing),
                       message=f"{len(missing)} of {len(expected)} topics missing: {', '.join(missing)}",
                       details={"missing": missing})
    return _result(registry.KAFKA_TOPICS_PRESENT, Status.OK, value=0, message=f"all {len(expected)} topics present")


def partition_leaders(view: ClusterView) -> CheckResult:
    leaderless = [f"{p.topic}[{p.partition}]" for parts in view.topics.values() for p in parts if p.leader < 0]
    total = sum(len(parts) for parts in view.topics.values())
    if leaderless:
        return _result(registry.KAFKA_PARTITION_LEADERS, Status.CRITICAL, value=len(leaderless),
                       message=f"{len(leaderless)} of {total} partitions have no leader: "
                               f"{', '.join(leaderless[:20])}", details={"leaderless": leaderless})
    return _result(registry.KAFKA_PARTITION_LEADERS, Status.OK, value=0, message=f"all {total} partitions have a leader")


def under_replicated(view: ClusterView) -> CheckResult:
    short = [f"{p.topic}[{p.partition}] isr {len(p.isrs)}/{len(p.replicas)}"
             for parts in view.topics.values() for p in parts if len(set(p.isrs)) < len(set(p.replicas))]
    if short:
        return _result(registry.KAFKA_UNDER_REPLICATED, Status.WARNING, value=len(short),
                       message=f"{len(short)} under-replicated partitions: {', '.join(short[:20])}",
                       details={"under_replicated": short})
    return _result(registry.KAFKA_UNDER_REPLICATED, Status.OK, value=0, message="every partition has ISR = replicas")


def topic_layout(view: ClusterView, topics: Sequence[str], partitions: int, replication_factor: int) -> list[CheckResult]:
    """One result per expected topic: its partition count and replication factor against the runbook's
    layout (3 partitions, replication factor 1 on the single-node cluster). A missing topic is
    kafka.topics_present's finding, so here it is unknown, not a second alarm."""
    spec, want = registry.KAFKA_TOPIC_LAYOUT, f"{partitions} partitions, replication factor {replication_factor}"
    results = []
    for topic in topics:
        parts = view.topics.get(topic)
        if parts is None:
            results.append(spec.unknown(f"{topic} does not exist, no layout to judge (see kafka.topics_present)",
                                        subject=topic))
            continue
        factors = sorted({len(p.replicas) for p in parts})
        have = f"{len(parts)} partitions, replication factor {'/'.join(map(str, factors)) or '?'}"
        details = {"partitions": len(parts), "replication_factors": factors}
        differs = len(parts) != partitions or factors != [replication_factor]
        results.append(spec.result(Status.WARNING if differs else Status.OK, subject=topic, value=len(parts),
                                   threshold=want, details=details,
                                   message=f"{topic}: {have}" + (f" (expected {want})" if differs else "")))
    return results


# --- consumer lag ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowFindings:
    """What the window rules saw; `rules` lists the ones that fired."""

    samples: int
    minutes: float
    rules: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    status: Status = Status.OK


def lag_band(lag: int, cfg: KafkaConfig) -> Status:
    """Runbook bands: < warning ok; warning..critical warning; > critical critical."""
    if lag > cfg.lag_critical:
        return Status.CRITICAL
    return Status.WARNING if lag >= cfg.lag_warning else Status.OK


def _observations(samples: Sequence[OffsetSample]) -> list[tuple[datetime, dict[tuple[str, int], OffsetSample]]]:
    """Samples grouped by instant, oldest first, one entry per partition."""
    by_time: dict[datetime, dict[tuple[str, int], OffsetSample]] = defaultdict(dict)
    for s in samples:
        by_time[s.sampled_at][(s.topic, s.partition)] = s
    return sorted(by_time.items())


def _window_rules(window: list, cfg: KafkaConfig) -> WindowFindings:
    """Burrow-like rules over observations within the window (oldest first, the current one last)."""
    minutes = (window[-1][0] - window[0][0]).total_seconds() / 60 if window else 0.0
    if len(window) < cfg.min_window_samples:
        note = f"window rules need {cfg.min_window_samples} samples in {cfg.window_minutes} min, have {len(window)}"
        return WindowFindings(len(window), minutes, notes=(note,))
    common = set.intersection(*({k for k, s in obs.items() if s.committed is not None} for _, obs in window))
    if not common:
        return WindowFindings(len(window), minutes, notes=("no partition was committed in every sample",))
    rules, notes, statuses = [], [], []

    rewinds = [f"{t}[{p}] {a.committed}->{b.committed}"
               for (_, before), (_, after) in pairwise(window) for (t, p) in sorted(common)
               for a, b in [(before[(t, p)], after[(t, p)])] if b.committed < a.committed]
    if rewinds:
        rules.append("rewind")
        statuses.append(Status.WARNING)
        notes.append(f"rewind: committed offset went backwards on {', '.join(rewinds[:5])}")

    stalled = [k for k in common if len({obs[k].committed for _, obs in window}) == 1]
    stalled_lag = sum(window[-1][1][k].lag for k in stalled)
    if stalled_lag > cfg.lag_warning:
        rules.append("stalled")
        statuses.append(Status.CRITICAL)
        notes.append(f"stalled: committed offsets unchanged for {minutes:.0f} min on {len(stalled)} "
                     f"partition(s) holding {stalled_lag:,} messages")

    lags = [sum(obs[k].lag for k in common) for _, obs in window]
    idle = len({sum(obs[k].log_end for k in common) for _, obs in window}) == 1
    if idle:
        rules.append("idle")
        notes.append(f"idle: no new messages for {minutes:.0f} min, so a steady lag raises no growth alarm")
    elif all(b >= a for a, b in pairwise(lags)) and lags[-1] > lags[0]:
        rules.append("growing")
        statuses.append(Status.WARNING)
        notes.append(f"growing: lag never decreased across {minutes:.0f} min ({lags[0]:,} -> {lags[-1]:,})")
    return WindowFindings(len(window), minutes, tuple(rules), tuple(notes), worst(statuses or [Status.OK]))


def _time_lag_s(series: list[tuple[datetime, int]], committed: int, now: datetime) -> tuple[float, bool]:
    """Seconds since the log end was at `committed`, interpolated; (value, exact). Not exact = lower bound."""
    if committed >= series[-1][1]:
        return 0.0, True
    for (t0, o0), (t1, o1) in reversed(list(pairwise(series))):
        if o0 <= committed < o1:
            at = t0 + (t1 - t0) * ((committed - o0) / (o1 - o0))
            return max(0.0, (now - at).total_seconds()), True
    return (now - series[0][0]).total_seconds(), False


def _time_lag(observations: list, current: dict[tuple[str, int], OffsetSample],
              now: datetime) -> tuple[float | None, bool]:
    """The group's time lag: its worst partition. None: lagging, but one sample cannot say since when."""
    worst_lag, exact = 0.0, True
    for key, sample in current.items():
        if not sample.lag:
            continue
        series = [(t, obs[key].log_end) for t, obs in observations if key in obs]
        if len(series) < 2:
            return None, False
        seconds, is_exact = _time_lag_s(series, sample.committed, now)
        if seconds >= worst_lag:
            worst_lag, exact = seconds, is_exact
    return worst_lag, exact


def _catch_up(window: list, lag: int) -> tuple[dict, str]:
    """Consumption and production rates over the window, and the time to drain the lag at that pace."""
    if lag == 0:
        return {"catch_up_s": 0.0}, "caught up"
    if len(window) < 2:
        return {}, ""
    (t0, first), (t1, last) = window[0], window[-1]
    seconds = (t1 - t0).total_seconds()
    keys = [k for k in last if k in first and first[k].committed is not None and last[k].committed is not None]
    consumed = sum(last[k].committed - first[k].committed for k in keys) / seconds
    produced = sum(last[k].log_end - first[k].log_end for k in keys) / seconds
    rates = {"consumption_per_s": round(consumed, 3), "production_per_s": round(produced, 3)}
    if consumed - produced <= 0:
        return rates, f"not catching up (consuming {consumed:,.1f}/s, producing {produced:,.1f}/s)"
    eta = lag / (consumed - produced)
    return {**rates, "catch_up_s": round(eta, 1)}, f"catching up at {consumed:,.1f}/s, done in ~{human_duration(eta)}"


def consumer_lag(current: GroupOffsets, history: Sequence[OffsetSample], cfg: KafkaConfig,
                 now: datetime, history_note: str | None = None) -> CheckResult:
    """kafka.consumer_lag for one group: bands on the current read, then window rules and time lag.

    `history` holds stored samples of this group (it may already contain the current read).
    """
    group = current.group
    threshold = f"warning >= {cfg.lag_warning:,}, critical > {cfg.lag_critical:,}, window {cfg.window_minutes} min"
    if current.error:
        return _result(LAG, Status.UNKNOWN, subject=group, threshold=threshold,
                       message=f"{group}: lag unknown, {current.error}")
    lag = current.total_lag
    if lag is None:
        extra = f"; committed topics deleted: {', '.join(current.deleted_topics)}" if current.deleted_topics else ""
        return _result(LAG, Status.WARNING, subject=group, threshold=threshold,
                       message=f"{group}: no committed offsets (group empty or never committed){extra}")

    observations = _observations([*history, *current.samples])
    observations = [(t, obs) for t, obs in observations if t <= now]
    since = now - timedelta(minutes=cfg.window_minutes)
    window = [(t, obs) for t, obs in observations if t >= since]
    findings = _window_rules(window, cfg)
    seconds, exact = _time_lag(observations, {(s.topic, s.partition): s for s in current.samples}, now)
    rates, catch_up = _catch_up(window, lag)

    status = worst([lag_band(lag, cfg), findings.status])
    parts = [f"{group}: lag {lag:,} ({lag_band(lag, cfg).value} band)",
             "time lag needs a second sample" if seconds is None
             else f"time lag {'~' if exact else '> '}{human_duration(seconds)}"]
    parts += list(findings.notes)
    if catch_up:
        parts.append(catch_up)
    uncommitted = [f"{s.topic}[{s.partition}]" for s in current.samples if s.committed is None]
    if uncommitted:
        parts.append(f"{len(uncommitted)} partition(s) without commits, not counted")
    if current.deleted_topics:
        parts.append(f"committed offsets on deleted topic(s) ignored: {', '.join(current.deleted_topics)}")
    if current.unavailable:
        status = worst([status, Status.UNKNOWN])
        parts.append(f"log-end offset unreadable for {len(current.unavailable)} partition(s): "
                     f"{current.unavailable[0]}")
    if group in cfg.checkpoint_committing_groups:
        parts.append("commits follow Flink checkpoints, so committed lag rises and falls in a sawtooth "
                     "between checkpoints: judge the window, not one sample")
    if history_note:
        parts.append(history_note)

    per_topic: dict[str, int] = defaultdict(int)
    for s in current.samples:
        per_topic[s.topic] += s.lag or 0
    return _result(LAG, status, "; ".join(parts), subject=group, value=lag, threshold=threshold, details={
        "lag": lag, "per_topic_lag": dict(per_topic), "time_lag_s": None if seconds is None else round(seconds, 1), "time_lag_exact": exact,
        "rules": list(findings.rules), "window_samples": findings.samples,
        "window_minutes": round(findings.minutes, 1), "uncommitted_partitions": uncommitted,
        "deleted_topics": list(current.deleted_topics), **rates})


# --- sensor -------------------------------------------------------------------------------------
def remember(history: list[list[float]], at: float, lag: int) -> list[list[float]]:
    """The sensor's readings with (epoch seconds, lag) appended, the last 50 only: enough for a trend."""
    return [*history[-49:], [at, lag]]


def lag_trend(history: Sequence[Sequence[float]]) -> str:
    """How a series of (epoch seconds, lag) readings moved: falling, rising or flat, with the rate."""
    if not history:
        return "no lag could be read"
    if len(history) < 2:
        return f"one reading only ({int(history[-1][1]):,})"
    (t0, first), (t1, last) = history[0], history[-1]
    rate = (last - first) / max(t1 - t0, 1e-9)
    readings = ", ".join(f"{int(lag):,}" for _, lag in history[-5:])
    if last < first:
        return f"falling at {-rate:,.1f}/s over {t1 - t0:.0f} s (last readings {readings})"
    if last > first:
        return f"rising at {rate:,.1f}/s over {t1 - t0:.0f} s (last readings {readings})"
    return f"flat over {t1 - t0:.0f} s, the consumer is not draining (last readings {readings})"


def sensor_timeout_message(group: str, topics: Sequence[str] | None, max_lag: int,
                           history: Sequence[Sequence[float]], waited_s: float, error: str | None = None) -> str:
    """Why KafkaConsumerLagSensor gave up: the last lag, its trend, and the last read error if any."""
    scope = f" on {', '.join(topics)}" if topics else ""
    last = f"still {int(history[-1][1]):,} behind" if history else "lag never read"
    message = (f"consumer group {group}{scope} {last} after {waited_s:.0f} s (threshold {max_lag:,}); "
               f"trend: {lag_trend(history)}")
    return f"{message}; last read error: {error}" if error else message
