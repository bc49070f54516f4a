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
    broker_answer_check,
    decode,
    first_offset_search,
    not_held,
    offset_search,
    parse_request,
    run_probes,
)

TOPICS = ["transactions.raw", "fraud.alerts"]


def run_probe(probe, timestamp_at):
    """One probe, one read per round."""
    return run_probes({0: probe}, lambda wanted: {0: timestamp_at(wanted[0])})[0]


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

    assert run_probe(first_offset_search(wanted, 0, len(stamps)), timestamp_at) == kafka
    # Interpolation steps read up to three messages, bisection steps one and halve the span: O(log n).
    assert len(set(reads)) <= 4 * (max(1, len(stamps)).bit_length() + 1)
    for answer in range(-1, len(stamps) + 2):
        assert run_probe(broker_answer_check(answer, wanted, 0, len(stamps)), timestamp_at) == (answer == kafka)
        assert run_probe(offset_search(wanted, answer, 0, len(stamps)), timestamp_at)[0] == kafka


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

    assert run_probe(first_offset_search(1_000_000 + 61_234_567, 0, 100_000), timestamp_at) == 61_235
    assert len(set(reads)) <= 8


@given(st.lists(st.lists(st.integers(0, 50), max_size=200).map(sorted), min_size=1, max_size=6), st.integers(-5, 55),
       st.data())
def test_probes_side_by_side_answer_as_alone_in_as_many_rounds_as_the_longest(partitions, wanted, data):
    """Several partitions searched together: each answer is Kafka's, every round reads each unfinished
    partition once, and the rounds are those of the longest search alone (not their sum)."""
    answers = [data.draw(st.one_of(st.none(), st.integers(-1, len(p) + 1))) for p in partitions]
    alone = []
    for stamps, answer in zip(partitions, answers):
        reads = []
        alone.append(run_probe(offset_search(wanted, answer, 0, len(stamps)),
                               lambda offset, s=stamps, r=reads: r.append(offset) or s[offset]))
        alone[-1] = (alone[-1], len(reads))
    rounds = []

    def read_round(asked):
        rounds.append(asked)
        assert all(0 <= offset < len(partitions[key]) for key, offset in asked.items())
        return {key: partitions[key][offset] for key, offset in asked.items()}

    together = run_probes({key: offset_search(wanted, answers[key], 0, len(stamps))
                           for key, stamps in enumerate(partitions)}, read_round)
    assert {key: found for key, (found, _) in together.items()} == \
        {key: bisect.bisect_left(stamps, wanted) for key, stamps in enumerate(partitions)}
    assert together == {key: found for key, (found, _) in enumerate(alone)}
    assert len(rounds) == max(reads for _, reads in alone)
