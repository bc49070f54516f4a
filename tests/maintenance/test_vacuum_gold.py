"""Vacuum and gold refresh against real PostgreSQL, and the pure planning rules behind them."""
from __future__ import annotations

import time

import pytest

from streamflow_ops.config import VacuumConfig
from streamflow_ops.params import ParamError, table_list
from streamflow_ops.maintenance.gold_refresh import discover, refresh_order, run_refresh
from streamflow_ops.maintenance.vacuum import TableStats, plan, read_stats, run_vacuum

from .conftest import audit_rows


def test_plan_picks_by_dead_tuples_ratio_and_age():
    cfg = VacuumConfig()
    stats = {("silver", "a"): TableStats("silver", "a", 1_000_000, 150_000, 10),     # > 100k dead
             ("silver", "b"): TableStats("silver", "b", 3_000, 2_000, 10),           # 40 % dead
             ("silver", "c"): TableStats("silver", "c", 100, 50, 10),                # ratio, but too few
             ("gold", "d"): TableStats("gold", "d", 10, 0, 200_000_000)}             # near wraparound
    targets = {t.name: t for t in plan(stats, cfg, [], full=True)}
    assert set(targets) == {"silver.a", "silver.b", "gold.d"}
    assert targets["gold.d"].options == ["freeze", "analyze"]
    assert targets["silver.a"].options == ["analyze"]  # FULL only for explicitly named tables
    [named] = plan(stats, cfg, [("silver", "c")], full=True)
    assert named.options == ["full", "analyze"] and named.reasons[0] == "requested"
    with pytest.raises(ParamError, match="param 'tables'.*silver.nope"):
        plan(stats, cfg, [("silver", "nope")], full=False)


@pytest.mark.parametrize("bad, why", [
    ("gold.x; drop table silver.transactions_enriched", "not a plain"),
    ('silver."transactions_enriched"', "not a plain"),
    ("pg_catalog.pg_class", "outside the configured schemas"),
    ("transactions", "not a plain"),
])
def test_table_param_refuses_injection_and_foreign_schemas(bad, why):
    with pytest.raises(ParamError, match=f"param 'tables'.*{why}"):
        table_list("tables", [bad], ["bronze", "silver", "gold"])


def test_refresh_order_puts_dependencies_first():
    assert refresh_order(["trend", "daily", "alpha"], [("trend", "daily")]) == ["alpha", "daily", "trend"]
    assert refresh_order(["b", "a"], [("a", "b"), ("a", "outside_schema")]) == ["b", "a"]


@pytest.mark.postgres
def test_vacuum_lowers_dead_tuples(conn, config, actor):
    conn.execute("delete from silver.transactions_enriched where abs(hashtext(transaction_id)) % 3 = 0")
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select pg_stat_clear_snapshot()")
    dead = read_stats(conn, ["silver"])[("silver", "transactions_enriched")].dead
    assert dead > 1_000
    targets = plan(read_stats(conn, ["silver"]), config.vacuum, [("silver", "transactions_enriched")], full=False)
    dry = run_vacuum(conn, config.vacuum, actor, targets, dry_run=True)
    assert dry[0]["dead_after"] == dead  # a dry run vacuums nothing
    [outcome] = run_vacuum(conn, config.vacuum, actor, targets, dry_run=False)
    assert outcome["dead_before"] == dead and outcome["dead_after"] < dead
    assert outcome["options"] == ["analyze"]
    rows = audit_rows(conn, "vacuum_analyze")
    assert [(r["dry_run"], r["outcome"]) for r in rows] == [(True, "dry_run"), (False, "success")]
    assert rows[1]["rows_affected"] == dead - outcome["dead_after"]


@pytest.mark.postgres
def test_vacuum_full_and_freeze(conn, config, actor):
    conn.execute("delete from silver.fraud_alerts where alert_id % 2 = 0")
    cfg = config.vacuum.model_copy(update={"freeze_age_threshold": 1})
    targets = plan(read_stats(conn, ["silver"]), cfg, [("silver", "fraud_alerts")], full=True)
    assert targets[0].options == ["full", "freeze", "analyze"]
    [outcome] = run_vacuum(conn, cfg, actor, targets, dry_run=False)
    assert outcome["options"] == ["full", "freeze", "analyze"]
    assert audit_rows(conn, "vacuum_full_freeze_analyze")[0]["outcome"] == "success"


@pytest.mark.postgres
def test_gold_discovery_order_and_methods(conn):
    views = discover(conn, "gold")
    names = [v.name for v in views]
    assert names.index("daily_fraud_summary") < names.index("fraud_trend_7d")
    methods = {v.name: v.concurrently for v in views}
    assert methods == {"customer_risk_profile": True, "daily_fraud_summary": True,
                       "fraud_trend_7d": False, "rule_effectiveness": False}


@pytest.mark.postgres
def test_gold_refresh_uses_both_paths_and_sees_new_data(conn, actor):
    # An unpopulated view with a unique index cannot be refreshed CONCURRENTLY: fallback to plain.
    conn.execute("refresh materialized view gold.customer_risk_profile with no data")
    conn.execute("insert into silver.transactions_enriched (transaction_id, customer_id, amount, fraud_score, "
                 "transaction_time) values ('new-1', 'c-new', 5.00, 0.9, %s)", (int(time.time()),))
    outcomes = {o["view"]: o["method"] for o in run_refresh(conn, "gold", actor, dry_run=False)}
    assert outcomes == {"gold.customer_risk_profile": "plain", "gold.daily_fraud_summary": "concurrently",
                        "gold.fraud_trend_7d": "plain", "gold.rule_effectiveness": "plain"}
    assert conn.execute("select count(*) from gold.customer_risk_profile where customer_id = 'c-new'").fetchone()[0] == 1
    audits = {r["target"]: r["action"] for r in audit_rows(conn, "gold_refresh")}
    assert audits["gold.daily_fraud_summary"] == "gold_refresh_concurrently"
    assert audits["gold.customer_risk_profile"] == "gold_refresh_plain"
    # Now populated again: the next run uses CONCURRENTLY for it.
    second = {o["view"]: o["method"] for o in run_refresh(conn, "gold", actor, dry_run=False)}
    assert second["gold.customer_risk_profile"] == "concurrently"
