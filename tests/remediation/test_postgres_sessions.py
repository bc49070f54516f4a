"""remediate_postgres_connections on the real sandbox PostgreSQL: sessions opened by the test, the plan
and the termination exact; a walsender, a replication role, superusers and our own sessions untouched."""
from __future__ import annotations

import dataclasses
import time
import uuid
from types import SimpleNamespace

import psycopg
import pytest

from streamflow_ops.config import load_config
from streamflow_ops.remediation import runner
from streamflow_ops.remediation.actions import ActionError
from streamflow_ops.remediation.plans import Refused
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


def test_dry_run_dag_plans_audits_and_never_reaches_the_approval(warehouse_db, sessions, airflow_db, monkeypatch):
    # Sessions old enough to be planned (the param's minute scaled to IDLE_S), so "terminates nothing" can fail.
    monkeypatch.setattr(runner, "_idle_s", lambda params: IDLE_S)
    pid = {name: p for name, (_, p) in sessions.items()}
    wait_idle(warehouse_db, [pid["idle"], pid["idle_in_tx"]], IDLE_S + 0.2)
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
    assert {i["pid"] for i in planned["plan"]["items"]} == {pid["idle"], pid["idle_in_tx"]}
    assert {p for _, p in sessions.values()} <= live_pids(warehouse_db)  # a dry run terminates nothing


@pytest.fixture
def signal_role(warehouse_db):
    """A role that may signal backends (pg_signal_backend) and read every session's state
    (pg_read_all_stats) but is not a superuser; a member of the warehouse owner so that it can write the
    ops tables. Its DSN."""
    tag = uuid.uuid4().hex[:8]
    name = f"rem_signal_{tag}"
    info = psycopg.conninfo.conninfo_to_dict(warehouse_db)
    with psycopg.connect(warehouse_db, autocommit=True) as admin:
        admin.execute(f"create role {name} login password 'pw' nosuperuser")
        admin.execute(f"grant pg_signal_backend, pg_read_all_stats, {info['user']} to {name}")
        assert admin.execute("select rolsuper from pg_roles where rolname = %s", (name,)).fetchone() == (False,)
        yield f"postgresql://{name}:pw@{info['host']}:{info['port']}/{info['dbname']}"  # Airflow reads URIs
        admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", (name,))
        admin.execute(f"reassign owned by {name} to current_user")  # the ops tables, if it created them
        admin.execute(f"drop role {name}")


def test_include_superuser_with_a_role_that_is_not_a_superuser_is_refused_before_anything(
        warehouse_db, sessions, signal_role, monkeypatch):
    """PostgreSQL lets only a superuser terminate a superuser's session: the plan refuses, nothing ends."""
    pid = {name: p for name, (_, p) in sessions.items()}
    wait_idle(warehouse_db, [pid["idle"], pid["superuser"]], IDLE_S + 0.2)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", signal_role)
    with pytest.raises(Refused, match="include_superuser: the connection's user 'rem_signal_.*' is not a superuser"):
        runner.plan_postgres(CONFIG, {**PARAMS, "include_superuser": True}, idle_s=IDLE_S)
    assert set(pid.values()) <= live_pids(warehouse_db)
    # The same role without include_superuser plans the app sessions and leaves the superusers alone.
    planned = {i["pid"] for i in runner.plan_postgres(CONFIG, PARAMS, idle_s=IDLE_S).items}
    assert {pid["idle"], pid["idle_in_tx"]} <= planned and pid["superuser"] not in planned


def test_a_half_done_termination_names_every_pid_in_the_audit_row(warehouse_db, sessions, signal_role, monkeypatch):
    """Planned by a superuser with include_superuser; the act runs as a role that is not one (the
    connection changed while the plan awaited approval). PostgreSQL refuses the superuser's session:
    the others are still terminated, the act fails saying so, and the audit row lists asked,
    terminated and failed pids."""
    pid = {name: p for name, (_, p) in sessions.items()}
    wait_idle(warehouse_db, [pid["idle"], pid["idle_in_tx"], pid["superuser"]], IDLE_S + 0.2)
    wanted = {pid["idle"], pid["superuser"], pid["idle_in_tx"]}
    plan = runner.plan_postgres(CONFIG, {**PARAMS, "include_superuser": True}, idle_s=IDLE_S)
    plan = dataclasses.replace(plan, items=[i for i in plan.items if i["pid"] in wanted])
    assert {i["pid"] for i in plan.items} == wanted

    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_POSTGRES", signal_role)
    run_id = f"manual__{uuid.uuid4().hex}"
    ti = SimpleNamespace(dag_id="remediate_postgres_connections", run_id=run_id, task_id="act")
    refused = f"terminated 2 of 3 session\\(s\\); PostgreSQL refused 1: {pid['superuser']}: "
    with pytest.raises(ActionError, match=refused):
        runner.audit(CONFIG, {"ti": ti}, plan, False, lambda: runner.act_postgres(CONFIG, plan, PARAMS, idle_s=IDLE_S),
                     {"chosen_options": ["Approve"]})

    remaining = live_pids(warehouse_db)
    assert pid["superuser"] in remaining and not {pid["idle"], pid["idle_in_tx"]} & remaining
    with psycopg.connect(warehouse_db) as conn:
        rows = conn.execute("select outcome, rows_affected, details -> 'outcome', details ->> 'error' "
                            "from ops.maintenance_audit where run_id = %s", (run_id,)).fetchall()
    [(outcome, rows_affected, recorded, error)] = rows
    assert (outcome, rows_affected) == ("failed", 2)
    assert recorded["asked_pids"] == [i["pid"] for i in plan.items]
    assert sorted(recorded["terminated_pids"]) == sorted([pid["idle"], pid["idle_in_tx"]])
    assert list(recorded["failed_pids"]) == [str(pid["superuser"])]
    assert "superuser" in recorded["failed_pids"][str(pid["superuser"])]
    assert recorded["left_pids"] == [] and error.startswith("ActionError: terminated 2 of 3")
