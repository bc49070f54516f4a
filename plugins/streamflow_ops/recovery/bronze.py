"""Pure parts of recover_bronze: the request, one message -> one bronze row, and the offset of a timestamp.

Kept free of I/O so that each rule is tested on its own: what a valid range is, what a malformed message
is, and how a broker's answer to "which offset holds this timestamp" is checked before it is trusted.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from streamflow_ops.params import ParamError

# An ISO-8601 date-time WITH its zone (Z or +hh:mm): the Param schema's pattern and the task's own check.
# A time without a zone is refused: read as local time on one worker and UTC on another, it would move the
# range by hours.
ZONED_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})$"
KAFKA_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"

# The message keys, in bronze's column order (SPEC: a transactions.raw message has the bronze columns).
MESSAGE_KEYS = ("transaction_id", "customer_id", "merchant_id", "amount", "currency", "location",
                "transaction_time", "payload")
TEXT_KEYS = ("customer_id", "merchant_id", "currency", "location")


@dataclass(frozen=True)
class ReplayRequest:
    """A validated recover_bronze run: [start, end) in UTC, the topic, dry or real."""

    start: datetime
    end: datetime
    topic: str
    dry_run: bool

    @property
    def start_epoch(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_epoch(self) -> int:
        """transaction_time is whole seconds: [start, end) holds t with start_epoch <= t < end_epoch, where
        a fractional end rounds up (12:00:00.5 still admits 12:00:00)."""
        whole = int(self.end.timestamp())
        return whole + 1 if self.end.timestamp() > whole else whole


def parse_zoned(name: str, value: Any) -> datetime:
    """An ISO-8601 date-time with an explicit zone, as UTC; ParamError naming `name` otherwise."""
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ParamError(name, f"must be an ISO-8601 UTC date-time such as 2026-12-01T10:00:00Z, got {value!r}")
    if not re.match(ZONED_DATETIME, text):
        raise ParamError(name, f"{text!r} is not an ISO-8601 date-time with a zone (write 2026-12-01T10:00:00Z): "
                               "a time without a zone is refused, it would be read in the worker's local time")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParamError(name, f"{text!r} is not a valid date-time ({exc})") from None
    return parsed.astimezone(timezone.utc)


def parse_request(params: dict[str, Any], *, topics: Sequence[str], max_range_hours: int) -> ReplayRequest:
    """Judge the run's params (start, end, topic, dry_run) before any I/O; ParamError names the param."""
    start = parse_zoned("start", params.get("start"))
    end = parse_zoned("end", params.get("end"))
    if end <= start:
        raise ParamError("end", f"{end.isoformat()} is not after start {start.isoformat()}: the range [start, end) "
                                "is empty")
    if end - start > timedelta(hours=max_range_hours):
        raise ParamError("end", f"the range {start.isoformat()} .. {end.isoformat()} is {end - start}, longer than "
                                f"recovery.max_range_hours = {max_range_hours}: split it into several runs")
    topic = params.get("topic")
    if topic not in topics:
        raise ParamError("topic", f"{topic!r} is not one of the configured topics {list(topics)} (kafka.topics)")
    dry_run = params.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise ParamError("dry_run", f"must be true or false, got {dry_run!r}")
    return ReplayRequest(start, end, topic, dry_run)


class Malformed(ValueError):
    """A message that is not a bronze row; the reason is what the report's example says."""


def decode(value: bytes | None) -> tuple:
    """One message value -> the bronze row (MESSAGE_KEYS order, payload as JSON text); Malformed otherwise.

    Strict on what bronze needs (a text id, an integer epoch-second time, a numeric amount that fits
    numeric(12,2)), so that a bad message is counted and shown, never half-inserted or cast by luck."""
    if value is None:
        raise Malformed("empty message (tombstone)")
    try:
        event = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise Malformed(f"a JSON {type(event).__name__}, not an object")
    missing = [key for key in MESSAGE_KEYS if key not in event]
    if missing:
        raise Malformed(f"missing {missing}")
    transaction_id, when, amount = event["transaction_id"], event["transaction_time"], event["amount"]
    if not isinstance(transaction_id, str) or not transaction_id:
        raise Malformed(f"transaction_id must be a non-empty string, got {transaction_id!r}")
    if isinstance(when, bool) or not isinstance(when, int):
        raise Malformed(f"transaction_time must be integer epoch seconds, got {when!r}")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise Malformed(f"amount must be a number, got {amount!r}")
    try:
        if abs(Decimal(str(amount))) >= Decimal("1e10"):
            raise Malformed(f"amount {amount!r} does not fit numeric(12,2)")
    except InvalidOperation:
        raise Malformed(f"amount {amount!r} is not a finite number") from None
    for key in TEXT_KEYS:
        if event[key] is not None and not isinstance(event[key], str):
            raise Malformed(f"{key} must be a string or null, got {event[key]!r}")
    payload = event["payload"]
    return (transaction_id, event["customer_id"], event["merchant_id"], amount, event["currency"],
            event["location"], when, None if payload is None else json.dumps(payload))


# A probe is a search that needs message timestamps: it yields an offset to read, is sent the timestamp of the
# first message at or after it, and returns its answer. Written as generators so that one driver can run the
# probes of every partition side by side, one round of fetches for all of them (each read is a round trip).
Probe = Generator[int, int, Any]


def run_probes(probes: dict[Any, Probe], read_round: Callable[[dict[Any, int]], dict[Any, int]]) -> dict[Any, Any]:
    """Run probes side by side: each round asks `read_round` for the timestamp at every unfinished probe's
    next offset ({key: offset} -> {key: timestamp}) and sends each its answer. Their answers, by key. The
    rounds are as many as the longest probe needs, not the sum over probes."""
    answers: dict[Any, Any] = {}
    wanted: dict[Any, int] = {}

    def advance(key: Any, timestamp: int | None) -> None:
        try:
            wanted[key] = next(probes[key]) if timestamp is None else probes[key].send(timestamp)
        except StopIteration as done:
            answers[key] = done.value
            wanted.pop(key, None)

    for key in probes:
        advance(key, None)
    while wanted:
        stamps = read_round(dict(wanted))
        for key in list(wanted):
            advance(key, stamps[key])
    return answers


def first_offset_search(timestamp_ms: int, low: int, high: int) -> Generator[int, int, int]:
    """The first offset in [low, high) whose message timestamp is >= timestamp_ms (high if none).

    Each read is a fetch, so the search alternates an interpolation step between the two nearest offsets
    already read (timestamps grow about linearly with offsets in a steady stream: a few fetches land next to
    the answer) with a bisection step (skewed traffic still finishes in O(log n) fetches). It never reads the
    last message just to bound the search. Assumes timestamps do not decrease along the partition, as with
    LogAppendTime and with one producer's CreateTime."""
    lo, hi = low, high  # the answer is in [lo, hi]
    upper: tuple[int, int] | None = None  # (offset, timestamp) of the lowest read message at or past the target
    interpolate = False
    while lo < hi:
        mid = (lo + hi) // 2
        if interpolate and upper is not None and hi - lo > 2:
            first = yield lo
            if first >= timestamp_ms:
                return lo
            guess = lo + (timestamp_ms - first) * (upper[0] - lo) // max(upper[1] - first, 1)
            mid = min(max(guess, lo + 1), hi - 1)
        interpolate = not interpolate
        stamp = yield mid
        if stamp < timestamp_ms:
            lo = mid + 1
        else:
            hi, upper = mid, (mid, stamp)
    return lo


def broker_answer_check(answer: int, timestamp_ms: int, low: int, high: int) -> Generator[int, int, bool]:
    """Whether a broker's offsets_for_times answer is what Kafka promises: the EARLIEST offset whose
    timestamp is >= timestamp_ms (or the end when none is). Checked on the two messages around it before it
    is trusted; a broker that answers too late would silently skip rows (Tansu 0.6 answers offset 0 for
    every timestamp, which is merely slow from the start but wrong for the end)."""
    if not low <= answer <= high:
        return False
    if answer > low and (yield answer - 1) >= timestamp_ms:
        return False
    return answer == high or (yield answer) >= timestamp_ms


def offset_search(timestamp_ms: int, answer: int | None, low: int, high: int) -> Generator[int, int, tuple[int, str]]:
    """The first offset whose timestamp is >= timestamp_ms, and how it was found: the broker's answer to
    offsets_for_times (None: it gave none) once the messages around it confirm it, otherwise a search."""
    if answer is not None and (yield from broker_answer_check(answer, timestamp_ms, low, high)):
        return answer, "broker"
    return (yield from first_offset_search(timestamp_ms, low, high)), f"search (broker answered {answer})"


def not_held(start: datetime, end: datetime, first_timestamp_ms: int | None) -> tuple[datetime, datetime] | None:
    """The part of [start, end) older than the partition's first retained message (None: all held).
    An empty partition (no first message) holds none of it."""
    if first_timestamp_ms is None:
        return start, end
    first = datetime.fromtimestamp(first_timestamp_ms / 1000, tz=timezone.utc)
    if first <= start:
        return None
    return start, min(first, end)
