"""recover_bronze's pure rules: the request, one message -> one bronze row, the offset of a timestamp."""
from __future__ import annotations

import bisect
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from streamflow_ops.params import ParamError
from streamflow_ops.recovery.bronze import (
    Malformed,
    broker_answer_holds,
    decode,
    first_offset_at,
    not_held,
    parse_request,
)

TOPICS = ["transactions.raw", "fraud.alerts"]


def request(**params):
    base = {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", "topic": "transactions.raw",
            "dry_run": True}
    return parse_request({**base, **params}, topics=TOPICS, max_range_hours=72)


def test_a_valid_request_is_utc_and_half_open():
    r = request(start="2026-12-01T12:00:00+02:00", end="2026-12-01T11:00:00.5Z")
    assert r.start == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert (r.start_epoch, r.end_epoch) == (1_796_119_200, 1_796_122_801)  # 11:00:00.5 admits 11:00:00


@pytest.mark.parametrize("params, param, words", [
    ({"end": "2026-12-01T10:00:00Z"}, "end", "not after start"),
    ({"end": "2026-12-01T09:00:00Z"}, "end", "not after start"),
    ({"end": "2026-12-04T10:00:01Z"}, "end", "recovery.max_range_hours = 72"),
    ({"start": "2026-12-01T10:00:00"}, "start", "without a zone"),
    ({"end": "2026-12-01 11:00"}, "end", "without a zone"),
    ({"start": 1796119200}, "start", "ISO-8601"),
    ({"topic": "transactions.enriched"}, "topic", "configured topics"),
    ({"dry_run": "false"}, "dry_run", "true or false"),
])
def test_bad_input_is_refused_naming_the_param(params, param, words):
    with pytest.raises(ParamError, match=f"^param '{param}': .*{words}"):
        request(**params)


def test_exactly_the_longest_range_is_accepted():
    assert request(end="2026-12-04T10:00:00Z").end == datetime(2026, 12, 4, 10, tzinfo=timezone.utc)


EVENT = {"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", "amount": 12.5, "currency": "EUR",
         "location": "Oslo", "transaction_time": 1_796_119_200, "payload": {"channel": "web"}}


def test_a_bronze_message_decodes_to_the_row_in_column_order():
    assert decode(json.dumps(EVENT).encode()) == ("t-1", "c-1", "m-1", 12.5, "EUR", "Oslo", 1_796_119_200,
                                                  '{"channel": "web"}')


@pytest.mark.parametrize("value, reason", [
    (None, "tombstone"), (b"\xff\xfe", "not JSON"), (b'{"seed": 3}', "missing"), (b"[1, 2]", "not an object"),
    (json.dumps({**EVENT, "transaction_time": "1796119200"}).encode(), "integer epoch seconds"),
    (json.dumps({**EVENT, "transaction_time": 1.5}).encode(), "integer epoch seconds"),
    (json.dumps({**EVENT, "amount": "12.50"}).encode(), "amount must be a number"),
    (json.dumps({**EVENT, "amount": 1e12}).encode(), "does not fit"),
    (json.dumps({**EVENT, "transaction_id": ""}).encode(), "non-empty string"),
    (json.dumps({**EVENT, "currency": 978}).encode(), "currency must be a string"),
])
def test_a_malformed_message_says_why(value, reason):
    with pytest.raises(Malformed, match=reason):
        decode(value)


@given(st.lists(st.integers(0, 50), max_size=300).map(sorted), st.integers(-5, 55))
def test_the_search_finds_kafkas_answer_and_only_that_answer_holds(stamps, wanted):
    """Kafka's promise: the earliest offset whose timestamp is >= wanted (the end when none is)."""
    kafka = bisect.bisect_left(stamps, wanted)
    reads = []

    def timestamp_at(offset):
        reads.append(offset)
        return stamps[offset]

    assert first_offset_at(wanted, 0, len(stamps), timestamp_at) == kafka
    # Interpolation steps read up to three messages, bisection steps one and halve the span: O(log n).
    assert len(set(reads)) <= 4 * (max(1, len(stamps)).bit_length() + 1)
    for answer in range(-1, len(stamps) + 2):
        assert broker_answer_holds(answer, wanted, 0, len(stamps), timestamp_at) == (answer == kafka)


def test_the_part_older_than_the_first_message_is_not_held():
    start, end = datetime(2026, 12, 1, 10, tzinfo=timezone.utc), datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    first = int(datetime(2026, 12, 1, 11, tzinfo=timezone.utc).timestamp() * 1000)
    assert not_held(start, end, first) == (start, datetime(2026, 12, 1, 11, tzinfo=timezone.utc))
    assert not_held(start, end, int(start.timestamp() * 1000)) is None
    assert not_held(start, end, first * 2) == (start, end)
    assert not_held(start, end, None) == (start, end)


def test_a_steady_stream_is_searched_in_a_few_fetches():
    """100,000 messages a second apart: the interpolation lands on the answer in a handful of fetches where a
    bisection needs 17 (each fetch is a round trip to the broker)."""
    reads = []

    def timestamp_at(offset):
        reads.append(offset)
        return 1_000_000 + offset * 1000 + offset % 7

    assert first_offset_at(1_000_000 + 61_234_567, 0, 100_000, timestamp_at) == 61_235
    assert len(set(reads)) <= 8
