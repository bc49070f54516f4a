"""Airflow self-checks: pure evaluators, and the family through HttpHook against a local server that
answers like Airflow 3's REST API (payloads serialised by the installed Airflow's own response models)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streamflow_ops.airflow_api import evaluators as ev
from streamflow_ops.airflow_api.checks import run_checks
from streamflow_ops.config import load_config
from streamflow_ops.results import Status
from streamflow_ops.timeutil import parse_time
from tests.fakes.http_api import FakeApi, http_connection, unused_port
from tests.fakes.payloads import load
from tests.runbook import HEADINGS

NOW = datetime(2026, 5, 21, 12, 0, tzinfo=timezone.utc)
TOKEN = load("airflow", "token")["access_token"]


def af(name):
    return load("airflow", name)


def test_payloads_have_the_fields_airflow_serialises():
    """Every fixture carries exactly the keys of the installed Airflow's response model."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunCollectionResponse, DAGRunResponse
    from airflow.api_fastapi.core_api.datamodels.dags import DAGResponse
    from airflow.api_fastapi.core_api.datamodels.import_error import (
        ImportErrorCollectionResponse,
        ImportErrorResponse,
    )
    from airflow.api_fastapi.core_api.datamodels.monitor import HealthInfoResponse

    def keys(model):
        return set(model.model_json_schema(mode="serialization")["properties"])

    assert set(af("dag_bronze_to_silver_pipeline")) == keys(DAGResponse)
    runs = af("dag_runs_one_failed")
    assert set(runs) == keys(DAGRunCollectionResponse)
    assert all(set(run) == keys(DAGRunResponse) for run in runs["dag_runs"])
    assert set(af("health_healthy")) == keys(HealthInfoResponse)
    for name in ("import_errors_none", "import_errors_fraud_detection_batch"):
        assert set(af(name)) == keys(ImportErrorCollectionResponse)
        assert all(set(error) == keys(ImportErrorResponse) for error in af(name)["import_errors"])


# --- airflow.scheduler_heartbeat -------------------------------------------------------------------

@pytest.mark.parametrize("payload, expected, fragment", [
    ("health_healthy", Status.OK, "last scheduler heartbeat 5 s ago"),
    ("health_scheduler_stale", Status.WARNING, "3 min ago"),
    ("health_scheduler_dead", Status.CRITICAL, "3.0 h ago"),
    ("health_scheduler_never", Status.CRITICAL, "no scheduler heartbeat recorded"),
])
def test_heartbeat_bands(payload, expected, fragment):
    result = ev.evaluate_heartbeat(af(payload), NOW, 60, 300)
    assert result.status is expected
    assert fragment in result.message
    assert result.runbook == "Airflow Operations > Restart Airflow Scheduler"


@pytest.mark.parametrize("age_s, expected", [(59, Status.OK), (60, Status.WARNING), (300, Status.WARNING),
                                             (301, Status.CRITICAL)])
def test_heartbeat_band_edges(age_s, expected):
    health = af("health_healthy")
    health["scheduler"]["latest_scheduler_heartbeat"] = (NOW - timedelta(seconds=age_s)).isoformat()
    assert ev.evaluate_heartbeat(health, NOW, 60, 300).status is expected


def test_heartbeat_mentions_other_unhealthy_components():
    health = af("health_healthy")
    health["triggerer"]["status"] = "unhealthy"
    result = ev.evaluate_heartbeat(health, NOW, 60, 300)
    assert result.status is Status.OK and "also unhealthy: triggerer unhealthy" in result.message


# --- airflow.failed_dag_runs -----------------------------------------------------------------------

def failed_in_window(runs, hours=24):
    return sum(1 for r in runs if r["state"] == "failed" and parse_time(r["end_date"]) >= NOW - timedelta(hours=hours))


@pytest.mark.parametrize("runs_payload, expected, fragment", [
    ("dag_runs_all_success", Status.OK, "no failed runs in the last 24 h"),
    ("dag_runs_old_failure", Status.OK, "no failed runs in the last 24 h"),
    ("dag_runs_one_failed", Status.WARNING, "1 failed run(s) in the last 24 h"),
    ("dag_runs_three_failed", Status.CRITICAL, "3 consecutive failed runs"),
])
def test_failed_runs_bands(runs_payload, expected, fragment):
    runs = af(runs_payload)["dag_runs"]
    dag = af("dag_bronze_to_silver_pipeline")
    result = ev.evaluate_dag_runs("bronze_to_silver_pipeline", dag, failed_in_window(runs), runs, 24, 3)
    assert result.status is expected
    assert fragment in result.message
    assert result.subject == "bronze_to_silver_pipeline"


def test_failed_runs_two_in_a_row_is_only_a_warning():
    runs = af("dag_runs_three_failed")["dag_runs"]
    runs[3]["state"] = "success"
    result = ev.evaluate_dag_runs("d", af("dag_bronze_to_silver_pipeline"), 2, runs, 24, 3)
    assert result.status is Status.WARNING and result.details["consecutive_failures"] == 2


def test_paused_dag_warns_and_says_so():
    result = ev.evaluate_dag_runs("maintenance_tasks", af("dag_maintenance_tasks_paused"), 0,
                                  af("dag_runs_all_success")["dag_runs"], 24, 3)
    assert result.status is Status.WARNING
    assert "DAG is paused" in result.message


def test_missing_dag_warns_with_a_clear_message():
    result = ev.evaluate_dag_runs("fraud_detection_batch", None, 0, [], 24, 3)
    assert result.status is Status.WARNING
    assert "does not exist in Airflow" in result.message and "airflow_api.watched_dags" in result.message


def test_dag_without_runs_is_ok():
    result = ev.evaluate_dag_runs("d", af("dag_bronze_to_silver_pipeline"), 0, [], 24, 3)
    assert result.status is Status.OK and "no finished runs yet" in result.message


# --- the family through HttpHook against a fake Airflow API ----------------------------------------

CONFIG = load_config()
WATCHED = CONFIG.airflow_api.watched_dags
EXPECTED = CONFIG.airflow_api.expected_dags


class FakeAirflow:
    """Answers like Airflow 3.x: JWT from POST /auth/token, /api/v2 refuses requests without it."""

    def __init__(self, api: FakeApi):
        self.api = api
        self.dags = {dag_id: self.dag(dag_id) for dag_id in {*WATCHED, *EXPECTED}}
        self.runs = {dag_id: af("dag_runs_all_success")["dag_runs"] for dag_id in WATCHED}
        self.import_errors = af("import_errors_none")
        api.route("GET", "/api/v2/monitor/health", af("health_healthy"))
        api.route("GET", "/api/v2/importErrors", self.get_import_errors)
        api.route("POST", "/auth/token", self.token)
        api.route("GET", r"/api/v2/dags/([^/]+)", self.get_dag)
        api.route("GET", r"/api/v2/dags/([^/]+)/dagRuns", self.get_runs)

    @staticmethod
    def dag(dag_id, paused=False):
        dag = af("dag_bronze_to_silver_pipeline")
        dag.update(dag_id=dag_id, dag_display_name=dag_id, is_paused=paused, relative_fileloc=f"{dag_id}.py",
                   fileloc=f"/usr/local/airflow/dags/{dag_id}.py")
        return dag

    def get_import_errors(self, request):
        return (200, self.import_errors) if self.authorised(request) else (401, {"detail": "Not authenticated"})

    def token(self, request):
        if request.json() == {"username": "admin", "password": "s3cret"}:
            return 201, {"access_token": TOKEN}
        return 401, {"detail": "Invalid credentials"}

    @staticmethod
    def authorised(request):
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def get_dag(self, request):
        if not self.authorised(request):
            return 401, {"detail": "Not authenticated"}
        dag_id = request.path.split("/")[4]
        if dag_id not in self.dags:
            return 404, {"detail": f"The Dag with ID: `{dag_id}` was not found"}
        return 200, self.dags[dag_id]

    def get_runs(self, request):
        """state, end_date_gte, order_by=-run_after and limit, as the real endpoint applies them."""
        if not self.authorised(request):
            return 401, {"detail": "Not authenticated"}
        runs = self.runs[request.path.split("/")[4]]
        query = {k: v[0] for k, v in request.query.items()}
        if "state" in query:
            runs = [r for r in runs if r["state"] == query["state"]]
        if "end_date_gte" in query:
            since = parse_time(query["end_date_gte"])
            runs = [r for r in runs if r["end_date"] and parse_time(r["end_date"]) >= since]
        if query.get("order_by") == "-run_after":
            runs = sorted(runs, key=lambda r: r["run_after"], reverse=True)
        return 200, {"dag_runs": runs[:int(query.get("limit", 50))], "total_entries": len(runs),
                     "total_entries_limit": None, "next_cursor": None, "previous_cursor": None}


def use_connection(monkeypatch, url, login="admin", password="s3cret"):
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API", http_connection(url, login=login, password=password))


@pytest.fixture
def airflow_api(monkeypatch):
    with FakeApi() as api:
        fake = FakeAirflow(api)
        use_connection(monkeypatch, api.url)
        yield fake


def by_subject(results):
    return {(r.check_name, r.subject): r for r in results}


def test_family_healthy_airflow_is_all_ok(airflow_api):
    results = run_checks(CONFIG, now=NOW)
    assert [(r.check_name, r.subject, r.status) for r in results] == (
        [("airflow.scheduler_heartbeat", "", Status.OK)]
        + [("airflow.failed_dag_runs", dag_id, Status.OK) for dag_id in WATCHED]
        + [("airflow.expected_dags", "", Status.OK), ("airflow.api_server", "", Status.OK)])
    assert not [(r.check_name, r.runbook) for r in results if r.runbook not in HEADINGS]
    assert len(airflow_api.api.calls("POST", "/auth/token")) == 1  # one token for the whole family
    health = airflow_api.api.calls("GET", "/api/v2/monitor/health")[0]
    assert "authorization" not in health.headers
    counts = [r for r in airflow_api.api.calls("GET", r".*/dagRuns") if "state" in r.query]
    assert counts[0].query == {"state": ["failed"], "end_date_gte": ["2026-05-20T12:00:00Z"], "limit": ["1"]}


def test_family_reports_each_dag_on_its_own(airflow_api):
    airflow_api.runs["bronze_to_silver_pipeline"] = af("dag_runs_three_failed")["dag_runs"]
    airflow_api.runs["silver_to_gold_pipeline"] = af("dag_runs_one_failed")["dag_runs"]
    airflow_api.dags["maintenance_tasks"] = airflow_api.dag("maintenance_tasks", paused=True)
    del airflow_api.dags["fraud_detection_batch"]
    airflow_api.api.route("GET", "/api/v2/monitor/health", af("health_scheduler_stale"))
    results = by_subject(run_checks(CONFIG, now=NOW))
    assert results[("airflow.scheduler_heartbeat", "")].status is Status.WARNING
    assert results[("airflow.failed_dag_runs", "bronze_to_silver_pipeline")].status is Status.CRITICAL
    assert results[("airflow.failed_dag_runs", "silver_to_gold_pipeline")].status is Status.WARNING
    assert "does not exist" in results[("airflow.failed_dag_runs", "fraud_detection_batch")].message
    assert "paused" in results[("airflow.failed_dag_runs", "maintenance_tasks")].message


def test_family_uses_a_token_from_the_password_without_login(airflow_api, monkeypatch):
    use_connection(monkeypatch, airflow_api.api.url, login="", password=TOKEN)
    results = run_checks(CONFIG, now=NOW)
    assert all(r.status is Status.OK for r in results)
    assert not airflow_api.api.calls("POST", "/auth/token")


def test_family_bad_credentials_make_dag_checks_unknown(airflow_api, monkeypatch):
    use_connection(monkeypatch, airflow_api.api.url, password="wrong")
    results = run_checks(CONFIG, now=NOW)
    assert results[0].status is Status.OK  # health needs no token
    assert results[-1].check_name == "airflow.api_server" and results[-1].status is Status.OK  # a 401 is no 5xx
    dag_results = results[1:-1]
    assert all(r.status is Status.UNKNOWN for r in dag_results)
    assert "/auth/token -> HTTP 401" in dag_results[0].message and "'admin'" in dag_results[0].message
    assert len(airflow_api.api.calls("POST", "/auth/token")) == 1


def test_family_server_error_is_an_api_server_finding_and_garbage_is_unknown(airflow_api):
    airflow_api.api.route("GET", "/api/v2/monitor/health", (500, {"detail": "Internal Server Error"}))
    airflow_api.api.route("GET", r"/api/v2/dags/silver_to_gold_pipeline", (200, b"<html>login</html>"))
    results = by_subject(run_checks(CONFIG, now=NOW))
    health = results[("airflow.scheduler_heartbeat", "")]
    assert health.status is Status.UNKNOWN
    assert f"GET {airflow_api.api.url}/api/v2/monitor/health -> HTTP 500" in health.message
    assert "not JSON" in results[("airflow.failed_dag_runs", "silver_to_gold_pipeline")].message
    assert results[("airflow.failed_dag_runs", "maintenance_tasks")].status is Status.OK
    # The heartbeat is unknown, but the API server answering 500 is itself a finding (runbook: webserver 5xx).
    server = results[("airflow.api_server", "")]
    assert server.status is Status.CRITICAL and "HTTP 500" in server.message and server.value == 1
    assert server.runbook == "Service Health Checks > 4. Airflow (streamflow-orchestration namespace)"


def test_api_server_recovers_after_5xx(airflow_api):
    """500 then 200: the finding clears on the next run, as the sweep must see it resolve."""
    airflow_api.api.route("GET", r"/api/v2/dags/([^/]+)/dagRuns", (503, {"detail": "Service Unavailable"}))
    first = by_subject(run_checks(CONFIG, now=NOW))[("airflow.api_server", "")]
    # per watched DAG its first run query fails (the second is then not asked)
    assert first.status is Status.CRITICAL and first.value == len(WATCHED)
    airflow_api.api.route("GET", r"/api/v2/dags/([^/]+)/dagRuns", airflow_api.get_runs)
    second = by_subject(run_checks(CONFIG, now=NOW))[("airflow.api_server", "")]
    assert second.status is Status.OK


# --- airflow.expected_dags ---------------------------------------------------------------------------

def test_expected_dags_all_present_is_ok(airflow_api):
    [result] = [r for r in run_checks(CONFIG, now=NOW) if r.check_name == "airflow.expected_dags"]
    assert result.status is Status.OK and str(len(EXPECTED)) in result.message
    assert {c.path for c in airflow_api.api.calls("GET", r"/api/v2/dags/[^/]+")} >= {
        f"/api/v2/dags/{d}" for d in EXPECTED}
    assert airflow_api.api.calls("GET", "/api/v2/importErrors")


def test_expected_dags_missing_is_critical_and_names_its_import_error(airflow_api):
    del airflow_api.dags["fraud_detection_batch"]
    airflow_api.import_errors = af("import_errors_fraud_detection_batch")
    [result] = [r for r in run_checks(CONFIG, now=NOW) if r.check_name == "airflow.expected_dags"]
    assert result.status is Status.CRITICAL
    assert "missing: fraud_detection_batch (its file fraud_detection_batch.py fails to import: " \
           "ModuleNotFoundError: No module named 'fraud_rules')" in result.message
    assert "airflow dags list" in result.message  # the runbook's first step


@pytest.mark.parametrize("change, fragment", [
    ("paused", "paused: maintenance_tasks"),
    ("import_error", "with import errors: fraud_detection_batch (ModuleNotFoundError"),
])
def test_expected_dags_paused_or_not_parsing_is_a_warning(airflow_api, change, fragment):
    if change == "paused":
        airflow_api.dags["maintenance_tasks"]["is_paused"] = True
    else:
        airflow_api.dags["fraud_detection_batch"]["has_import_errors"] = True
        airflow_api.import_errors = af("import_errors_fraud_detection_batch")
    [result] = [r for r in run_checks(CONFIG, now=NOW) if r.check_name == "airflow.expected_dags"]
    assert result.status is Status.WARNING and fragment in result.message


def test_expected_dags_without_the_import_errors_is_unknown_not_ok(airflow_api):
    """Every DAG present and unpaused, but /importErrors refused (a role without that permission): whether
    they parse is not known, so the check must not read ok."""
    airflow_api.api.route("GET", "/api/v2/importErrors", (403, {"detail": "Forbidden"}))
    [result] = [r for r in run_checks(CONFIG, now=NOW) if r.check_name == "airflow.expected_dags"]
    assert result.status is Status.UNKNOWN and "/api/v2/importErrors" in result.message and "HTTP 403" in result.message


def test_family_unreachable_api_is_unknown_everywhere(monkeypatch):
    port = unused_port()
    use_connection(monkeypatch, f"http://127.0.0.1:{port}")
    results = run_checks(CONFIG, now=NOW)
    assert len(results) == 1 + len(WATCHED) + 2  # heartbeat, each watched DAG, expected_dags, api_server
    assert all(r.status is Status.UNKNOWN and "no answer" in r.message for r in results)
    assert f"127.0.0.1:{port}/api/v2/monitor/health" in results[0].message


def test_family_without_connection_is_skipped(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API", raising=False)
    results = run_checks(CONFIG, now=NOW)
    assert [(r.check_name, r.status) for r in results] == [
        (name, Status.SKIPPED) for name in ("airflow.scheduler_heartbeat", "airflow.failed_dag_runs",
                                            "airflow.expected_dags", "airflow.api_server")]
    assert "streamflow_airflow_api" in results[0].message


def test_family_hanging_api_costs_one_timeout(airflow_api):
    """An API that accepts but never answers trips the client: later requests fail without waiting."""
    import time

    def hang(request):
        time.sleep(1.5)
        return 200, af("health_healthy")

    airflow_api.api.route("GET", "/api/v2/monitor/health", hang)
    config = load_config({"airflow_api": {"request_timeout_s": 0.3}})
    results = run_checks(config, now=NOW)
    assert all(r.status is Status.UNKNOWN and "ReadTimeout" in r.message for r in results)
    assert len(airflow_api.api.requests) == 1
