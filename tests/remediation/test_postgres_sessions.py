"""remediate_postgres_connections on the real sandbox PostgreSQL: sessions opened by the test, the plan
and the termination exact; a walsender, a replication role, superusers and our own sessions untouched."""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from streamflow_ops.config import load_config
from streamflow_ops.remediation import runner
from tests.dagfiles import load_repo_dag
from tests.maintenance.test_dags import states, xcom

pytestmark = [pytest.mark.postgres]

IDLE_S = 1.0  # the planner takes seconds; the DAG's param is minutes (>= 1), too slow for a test
CONFIG = load_config()
PARAMS = {"dry_run": False, "idle_minutes": 1, "application": None, "include_superuser": False}


@pytest.fixture
def roles(warehouse_db):
    """A plain application role and a replication role, created for this test and dropped after."""
    tag = uuid.uuid4().hex[:8]
    app, repl = f"rem_app_{tag}", f"rem_repl_{tag}"
    with psycopg.connect(warehouse_db, autocommit=True) as admin:
        admin.execute(f"create role {app} login password 'pw'")
        admin.execute(f"create role {repl} login replication password 'pw'")
        yield app, repl
        admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename in (%s, %s)", (app, repl))
        admin.execute(f"drop role {app}")
        admin.execute(f"drop role {repl}")


def connect(warehouse_db: str, user: str | None = None, app: str = "psql", **kwargs) -> psycopg.Connection:
    info = psycopg.conninfo.conninfo_to_dict(warehouse_db)
    if user:
        info.update(user=user, password="pw")
    return psycopg.connect(**info, application_name=app, **kwargs)


@pytest.fixture
def sessions(warehouse_db, roles):
    """name -> (connection, pid): idle and idle-in-transaction app sessions, and ones never to touch."""
    app, repl = roles
    opened = {
        "idle": connect(warehouse_db, app, "grafana", autocommit=True),
        "idle_in_tx": connect(warehouse_db, app, "etl-loader"),
        "superuser": connect(warehouse_db, None, "psql-admin", autocommit=True),
        "own": connect(warehouse_db, app, "streamflow_ops:maintenance_tasks/x", autocommit=True),
        "replication_role": connect(warehouse_db, repl, "debezium", autocommit=True),
        "walsender": connect(warehouse_db, repl, "walreceiver", autocommit=True, replication="database"),
        "busy": connect(warehouse_db, app, "grafana", autocommit=True),
    }
    pids = {}
    for name, conn in opened.items():
        pids[name] = conn.info.backend_pid
        if name != "walsender":
            conn.execute("select 1")  # the idle-in-transaction session keeps its transaction open
    opened["busy"].pgconn.send_query(b"select pg_sleep(60)")  # active: running a query
    yield {name: (conn, pids[name]) for name, conn in opened.items()}
    opened["busy"].cancel()
    for conn in opened.values():
        conn.close()


def live_pids(dsn: str) -> set[int]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("select pid from pg_stat_activity where datname = current_database()")}


def wait_idle(dsn: str, pids: list[int], seconds: float) -> None:
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(dsn) as conn:
            ages = conn.execute("select min(extract(epoch from now() - state_change)) from pg_stat_activity "
                                "where pid = any(%s)", (pids,)).fetchone()[0]
        if ages is not None and ages > seconds:
            return
        assert time.monotonic() < deadline, "the test sessions never became idle"
        time.sleep(0.2)


def test_plan_and_termination_are_exact_and_spare_what_must_be_spared(warehouse_db, sessions):
    pid = {name: p for name, (_, p) in sessions.items()}
    wait_idle(warehouse_db, [pid["idle"], pid["idle_in_tx"]], IDLE_S + 0.2)

    plan = runner.plan_postgres(CONFIG, {**PARAMS, "include_superuser": False}, idle_s=IDLE_S)
    # Independently: which of the test's sessions are idle or idle in transaction past the cutoff, from SQL.
    with psycopg.connect(warehouse_db) as conn:
        expected = [r[0] for r in conn.execute(
            "select pid from pg_stat_activity where pid = any(%s) and state like 'idle%%' "
            "and now() - state_change >= make_interval(secs => %s) order by state_change, pid",
            ([pid["idle"], pid["idle_in_tx"], pid["busy"]], IDLE_S)).fetchall()]
    assert sorted(expected) == sorted([pid["idle"], pid["idle_in_tx"]])
    assert [i["pid"] for i in plan.items] == expected
    by_pid = {i["pid"]: i for i in plan.items}
    assert by_pid[pid["idle_in_tx"]]["state"] == "idle in transaction"
    assert by_pid[pid["idle"]]["application_name"] == "grafana"
    # The superusers: psql-admin and the fixture's admin connection.
    assert {"left alone: 2 replication sessions", "left alone: 1 own session",
            "left alone: 2 superuser sessions (include_superuser is off)"} <= set(plan.notes)

    outcome = runner.act_postgres(CONFIG, plan, PARAMS, idle_s=IDLE_S)
    assert sorted(outcome["terminated_pids"]) == sorted(expected) and outcome["rows_affected"] == 2
    remaining = live_pids(warehouse_db)
    assert not remaining & set(expected)
    assert {pid[n] for n in ("superuser", "own", "replication_role", "walsender", "busy")} <= remaining
    with pytest.raises(psycopg.OperationalError):
        sessions["idle"][0].execute("select 1")


def test_a_session_that_changed_since_the_plan_is_not_terminated(warehouse_db, sessions):
    pid = {name: p for name, (_, p) in sessions.items()}
    wait_idle(warehouse_db, [pid["idle"], pid["idle_in_tx"]], IDLE_S + 0.2)
    plan = runner.plan_postgres(CONFIG, PARAMS, idle_s=IDLE_S)
    assert {i["pid"] for i in plan.items} == {pid["idle"], pid["idle_in_tx"]}
    sessions["idle"][0].execute("select 1")  # used again after the plan: no longer idle long enough
    forged = [dict(i, backend_start="2000-01-01T00:00:00+00:00") if i["pid"] == pid["idle_in_tx"] else i
              for i in plan.items]  # a reused pid: another backend
    outcome = runner.act_postgres(CONFIG, type(plan)(**{**plan.__dict__, "items": forged}), PARAMS, idle_s=IDLE_S)
    assert outcome["terminated_pids"] == [] and outcome["rows_affected"] == 0
    assert {pid["idle"], pid["idle_in_tx"]} <= live_pids(warehouse_db)


def test_dry_run_dag_plans_audits_and_never_reaches_the_approval(warehouse_db, sessions, airflow_db):
    dr = load_repo_dag("remediate_postgres_connections").test(run_conf={"dry_run": True, "idle_minutes": 1})
    assert dr.state == "success", states(dr)
    assert states(dr) == {"plan": "success", "real_run": "success", "approve": "skipped", "act": "skipped",
                          "verify": "skipped", "report": "success"}
    planned = xcom(dr, "plan")
    assert planned["dry_run"] is True
    assert [r["check_name"] for r in planned["before"]] == ["postgres.connections"]
    report = xcom(dr, "report")
    assert report["outcome"] == "dry_run" and report["delivery"].startswith("not posted")
    with psycopg.connect(warehouse_db) as conn:
        audit = conn.execute("select action, target, dry_run, outcome, rows_affected from ops.maintenance_audit "
                             "where dag_id = 'remediate_postgres_connections'").fetchall()
    assert audit == [("terminate_sessions", f"postgres:{psycopg.conninfo.conninfo_to_dict(warehouse_db)['dbname']}",
                      True, "dry_run", len(planned["plan"]["items"]))]
    assert {p for _, p in sessions.values()} <= live_pids(warehouse_db)  # a dry run terminates nothing
