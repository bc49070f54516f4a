"""The maintenance DAGs through dag.test() against the real sandbox PostgreSQL (and a fake Slack)."""
from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
from streamflow_ops.maintenance.locks import LOCK_NAMESPACE, MAINTENANCE_KEY
from tests.dagfiles import load_repo_dag, load_repo_dag_module
from tests.fakes.http_api import FakeApi

from .conftest import audit_rows, snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]


def xcom(dr, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dr.run_id, key="return_value", task_ids=task_id,
                                                 dag_ids=dr.dag_id)).first()
        return None if row is None else XComModel.deserialize_value(row)


def states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


@pytest.fixture
def wh(warehouse_db, airflow_db):
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        yield conn


def test_bronze_retention_dry_run_shows_exact_counts_and_changes_nothing(wh):
    before = snapshot(wh)
    dr = _dag("bronze_retention").test()
    assert dr.state == "success", states(dr)
    result = xcom(dr, "bronze_retention")
    cutoff = result["details"]["cutoff"]
    promoted, unpromoted = wh.execute(
        "select count(*) filter (where s.transaction_id is not null), count(*) filter (where s.transaction_id is null) "
        "from bronze.transactions b left join silver.transactions_enriched s using (transaction_id) "
        "where b.transaction_time < %s", (cutoff,)).fetchone()
    line = f"DRY RUN: would delete {promoted} rows ({unpromoted} unpromoted rows older than cutoff kept)"
    assert promoted > 0 and unpromoted > 0
    assert result["message"].startswith(line) and result["status"] == "warning"
    assert snapshot(wh) == before


_dag = load_repo_dag


def test_second_run_is_held_off_by_the_advisory_lock(wh, warehouse_db):
    before = snapshot(wh)
    with psycopg.connect(warehouse_db, autocommit=True) as other:
        other.execute("set application_name = 'maintenance_tasks/other-run'")
        other.execute("select pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MAINTENANCE_KEY))
        dr = _dag("bronze_retention").test(run_conf={"dry_run": False})
    assert dr.state == "success", states(dr)
    result = xcom(dr, "bronze_retention")
    assert result["status"] == "warning"  # a skipped step is never quiet: the same lock could hold it every night
    assert "skipped: another maintenance run holds the advisory lock: maintenance_tasks/other-run" in result["message"]
    assert snapshot(wh) == before
    [audit] = audit_rows(wh, "bronze_retention.skipped")
    assert audit["outcome"] == "skipped" and "other-run" in audit["details"]["reason"]


def test_real_retention_run_deletes_and_audits(wh):
    dr = _dag("bronze_retention").test(run_conf={"dry_run": False, "batch_size": 2000})
    assert dr.state == "success", states(dr)
    result = xcom(dr, "bronze_retention")
    cutoff = result["details"]["cutoff"]
    assert wh.execute("select count(*) from bronze.transactions b join silver.transactions_enriched s "
                      "using (transaction_id) where b.transaction_time < %s", (cutoff,)).fetchone()[0] == 0
    [audit] = audit_rows(wh, "bronze_retention.delete")
    assert audit["rows_affected"] == result["details"]["deleted_rows"] > 0


@pytest.mark.parametrize("conf", [{"tables": ["pg_catalog.pg_authid"]}, {"tables": ["silver.no_such_table"]}],
                         ids=["outside-schemas", "missing-table"])
def test_bad_tables_fail_the_task_without_retries_or_changes(wh, conf, capsys):
    """Names the Param schema cannot judge: refused by the operator, naming the param."""
    before = snapshot(wh)
    dr = _dag("postgres_vacuum").test(run_conf={"dry_run": False, "full": True, **conf})
    assert dr.state == "failed"
    [ti] = dr.get_task_instances()
    assert ti.try_number == 1  # AirflowFailException: retrying cannot fix bad input
    assert "param 'tables'" in capsys.readouterr().out
    assert snapshot(wh) == before


@pytest.mark.parametrize("dag_id, conf, problem", [
    ("postgres_vacuum", {"tables": ["gold.x; drop table silver.transactions_enriched"]}, "does not match"),
    ("bronze_retention", {"retention_days": -1}, "-1 is less than the minimum of 1"),
], ids=["injection", "negative-retention"])
def test_bad_params_are_refused_at_trigger(wh, dag_id, conf, problem):
    from airflow.sdk.exceptions import ParamValidationError

    before = snapshot(wh)
    [param] = conf
    with pytest.raises(ParamValidationError, match=f"^Invalid input for param {param}: .*{problem}"):
        _dag(dag_id).test(run_conf={"dry_run": False, **conf})
    assert snapshot(wh) == before


def test_vacuum_and_gold_refresh_dags(wh):
    wh.execute("delete from silver.fraud_alerts where alert_id % 2 = 0")
    wh.execute("select pg_stat_force_next_flush()")  # the vacuum's "before" must see these dead tuples
    wh.execute("select 1")
    dr = _dag("postgres_vacuum").test(run_conf={"dry_run": False, "tables": ["silver.fraud_alerts"]})
    assert dr.state == "success", states(dr)
    [table] = xcom(dr, "vacuum")["details"]["tables"]
    assert table["table"] == "silver.fraud_alerts" and table["dead_after"] < table["dead_before"]
    dr = _dag("gold_refresh").test()
    assert dr.state == "success", states(dr)
    views = {v["view"]: v["method"] for v in xcom(dr, "gold_refresh")["details"]["views"]}
    assert views["gold.daily_fraud_summary"] == "concurrently" and views["gold.rule_effectiveness"] == "plain"


def test_window_has_the_contracted_schedule_and_deadline():
    module = load_repo_dag_module("maintenance_tasks")
    dag = module.maintenance_window
    assert (dag.dag_id, dag.max_active_runs, dag.catchup) == ("maintenance_tasks", 1, False)
    assert dag.schedule == "0 3 * * *"
    [deadline] = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadline.interval == timedelta(minutes=45)
    assert [t.task_id for t in dag.topological_sort()][-1] == "report"


def test_window_runs_every_step_and_reports_to_slack(wh, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG", json.dumps({"backup": {"folder": str(tmp_path)}}))
    with FakeApi() as slack:
        slack.route("POST", r"/.*", (200, b"ok"))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": slack.url, "password": "T000/B000/XXXX"}))
        # The deadline is checked above; dag.test() on Airflow 3.3.2 crashes on a DAG that has one.
        dr = load_repo_dag_module("maintenance_tasks").build(deadline=None).test()
    assert dr.state == "success", states(dr)
    ran = states(dr)
    assert {t for t, state in ran.items() if state == "skipped"} == {
        "backup.cnpg_create", "backup.cnpg_wait", "backup.cnpg_verify"}  # no Kubernetes: gold_export
    assert {state for t, state in ran.items() if not t.startswith("backup.cnpg_")} == {"success"}
    text = xcom(dr, "report")
    for line in ("maintenance.bronze_retention", "deleted", "maintenance.vacuum", "maintenance.gold_refresh",
                 "refreshed 4 views", "maintenance.backup", "maintenance.housekeeping"):
        assert line in text
    [post] = slack.calls("POST")
    assert "StreamFlow maintenance window" in post.json()["text"]
    actions = {a["action"] for a in audit_rows(wh)}
    assert {"bronze_retention.delete", "gold_refresh_concurrently", "gold_refresh_plain"} <= actions
