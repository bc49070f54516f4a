"""Business checks: fraud-rate and latency bands (pure), and the probes on the real warehouse."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from sandbox import seed
from streamflow_ops.business import checks as biz
from streamflow_ops.business import evaluators as biz_evaluators
from streamflow_ops.config import load_config
from streamflow_ops.results import Status

CFG = load_config().business
NOW = datetime(2026, 5, 21, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("flagged, expected", [(0, Status.OK), (100, Status.OK), (101, Status.WARNING),
                                               (200, Status.WARNING), (201, Status.CRITICAL)])
def test_fraud_rate_bands(flagged, expected):
    result = biz_evaluators.evaluate_fraud_rate(1000, flagged, CFG)
    assert result.status is expected and result.value == pytest.approx(flagged / 10)


def test_fraud_rate_without_rows_says_so_instead_of_dividing_by_zero():
    result = biz_evaluators.evaluate_fraud_rate(0, 0, CFG)
    # SPEC: zero transactions in the last hour is a warning ("no transactions"), not a 0 % rate.
    assert result.status is Status.WARNING and result.value is None
    assert "no transactions: no silver rows" in result.message


@pytest.mark.parametrize("age_s, expected", [(0, Status.OK), (299, Status.OK), (300, Status.WARNING),
                                             (900, Status.WARNING), (901, Status.CRITICAL)])
def test_pipeline_latency_bands(age_s, expected):
    assert biz_evaluators.evaluate_pipeline_latency(NOW - timedelta(seconds=age_s), NOW, CFG).status is expected


def test_empty_silver_is_critical():
    assert biz_evaluators.evaluate_pipeline_latency(None, NOW, CFG).status is Status.CRITICAL


def statuses(results):
    return {r.check_name: r.status for r in results}


def test_live_warehouse_is_healthy(warehouse_db):
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        seed.top_up(conn)
    results = biz.run_checks(load_config())
    assert statuses(results) == {biz_evaluators.FRAUD_RATE.name: Status.OK, biz_evaluators.PIPELINE_LATENCY.name: Status.OK}


def test_custom_table_names_are_quoted_identifiers(warehouse_db):
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        conn.execute('create schema "curated"; create table curated.scored as '
                     'select * from silver.transactions_enriched')
        seed.top_up(conn)  # into silver only: curated is a copy as of before
    config = load_config({"warehouse": {"silver_schema": "curated", "silver_table": "scored"}})
    assert statuses(biz.run_checks(config))[biz_evaluators.PIPELINE_LATENCY.name] is not Status.UNKNOWN


def test_missing_table_is_unknown_not_ok(warehouse_db):
    config = load_config({"warehouse": {"silver_table": "no_such_table"}})
    assert set(statuses(biz.run_checks(config)).values()) == {Status.UNKNOWN}
