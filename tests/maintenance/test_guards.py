"""Careless input is refused before any work: a logical date in the future, conf keys a DAG does not take."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import psycopg
import pytest

from streamflow_ops.dag_defaults import reference_time, refuse_undeclared_conf
from tests.dagfiles import load_repo_dag, load_repo_dag_module
from tests.housekeeping.test_housekeeping_dag import NEW, OLD, env  # noqa: F401  (env: a fixture)

from .conftest import snapshot
from .test_dags import states

pytestmark = [pytest.mark.postgres, pytest.mark.airflow]
NOW = datetime.now(timezone.utc)
YEAR_AHEAD = NOW + timedelta(days=365)


@pytest.fixture
def wh(warehouse_db, airflow_db):
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        yield conn


def audit_count(conn) -> int:
    if conn.execute("select to_regclass('ops.maintenance_audit')").fetchone()[0] is None:
        return 0
    return conn.execute("select count(*) from ops.maintenance_audit").fetchone()[0]


def test_reference_time_refuses_a_date_after_run_after_and_names_it():
    run = SimpleNamespace(run_after=NOW)
    assert reference_time({"logical_date": NOW, "dag_run": run}) == NOW
    assert reference_time({"logical_date": None, "dag_run": run}) == NOW
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as refused:
        reference_time({"logical_date": YEAR_AHEAD, "dag_run": run})
    assert YEAR_AHEAD.isoformat() in str(refused.value) and "nothing was changed" in str(refused.value)


def test_year_ahead_retention_deletes_nothing(wh):
    """Triggered a year ahead, dry_run off: the cutoff would have covered the whole seeded warehouse."""
    cutoff = int((YEAR_AHEAD - timedelta(days=7)).timestamp())
    at_risk, total = wh.execute(
        "select count(s.transaction_id) filter (where b.transaction_time < %s), count(*) from bronze.transactions b "
        "left join silver.transactions_enriched s using (transaction_id)", (cutoff,)).fetchone()
    assert at_risk > 0  # the old code deleted these: every promoted row, the last 7 days included
    before = snapshot(wh)
    dr = load_repo_dag("bronze_retention").test(logical_date=YEAR_AHEAD, run_conf={"dry_run": False})
    assert dr.state == "failed" and states(dr) == {"bronze_retention": "failed"}  # no retry: failed at once
    assert snapshot(wh) == before
    assert wh.execute("select count(*) from bronze.transactions").fetchone()[0] == total
    assert audit_count(wh) == 0  # refused before the connection: not even a skipped row


def test_year_ahead_housekeeping_removes_no_log(env):
    api, logs, _ = env
    dr = load_repo_dag("airflow_housekeeping").test(logical_date=YEAR_AHEAD, run_conf={"dry_run": False})
    assert dr.state == "failed"
    assert (logs / OLD).exists() and (logs / NEW).exists()  # a year ahead, both were past the retention
    assert not any("pods" in r.path for r in api.requests)  # the metadata cleanup pod was never sent


def test_undeclared_conf_keys_are_refused_naming_them():
    dag = SimpleNamespace(dag_id="maintenance_tasks", params={"dry_run": False})
    refuse_undeclared_conf({"dag": dag, "dag_run": SimpleNamespace(conf={"dry_run": True})})  # declared: fine
    refuse_undeclared_conf({"dag": dag, "dag_run": SimpleNamespace(conf=None)})
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"conf keys \['full', 'tables'\] are not params of "
                                                   r"maintenance_tasks \(it takes \['dry_run'\]\)"):
        refuse_undeclared_conf({"dag": dag, "dag_run": SimpleNamespace(conf={"full": True, "tables": ["x.y"],
                                                                             "dry_run": False})})


def test_window_with_undeclared_keys_runs_no_step(wh):
    """{"full": true, "tables": [...]} belongs to postgres_vacuum: the window refuses it in every task, so
    the steps that run after anything (trigger_rule all_done) do not act either."""
    before = snapshot(wh)
    dag = load_repo_dag_module("maintenance_tasks").build(deadline=None)
    dr = dag.test(run_conf={"dry_run": False, "full": True, "tables": ["silver.fraud_alerts"]})
    assert dr.state == "failed"
    ran = {t: s for t, s in states(dr).items() if s not in ("failed", "upstream_failed")}
    assert ran == {}, ran
    assert snapshot(wh) == before and audit_count(wh) == 0


def test_manual_dag_with_a_typo_in_a_key_is_refused(wh):
    before = snapshot(wh)
    dr = load_repo_dag("postgres_vacuum").test(run_conf={"dry_run": False, "ful": True})
    assert dr.state == "failed" and set(states(dr).values()) == {"failed"}
    assert snapshot(wh) == before and audit_count(wh) == 0
