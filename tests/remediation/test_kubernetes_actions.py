"""The Kubernetes remediations through KubernetesHook against a local server that answers like the API:
the PATCH requests (paths, content types, bodies) exactly as kubectl would send them."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from streamflow_ops.config import load_config
from streamflow_ops.remediation import runner
from streamflow_ops.remediation.actions import ActionError
from streamflow_ops.remediation.plans import Refused
from tests.fakes.http_api import FakeApi
from tests.fakes.payloads import load
from tests.health.test_kubernetes_checks import use_kubeconfig

CONFIG = load_config()
NS = "streamflow-processing"
CR_PATH = f"/apis/flink.apache.org/v1beta1/namespaces/{NS}/flinkdeployments/fraud-detection"
TM_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/flink-taskmanager"


def deployment() -> dict:
    return {"kind": "Deployment", "apiVersion": "apps/v1", **load("kubernetes", "deployments_flink_ready")["items"][1]}


def echo(request):
    """The API answers a PATCH with the patched object; the body is enough for the client."""
    return 200, {"kind": "Scale" if request.path.endswith("/scale") else "Deployment", "apiVersion": "v1",
                 "metadata": {"name": request.path.rsplit("/", 1)[-1]}, "spec": request.json()["spec"]}


@pytest.fixture
def kube_api(tmp_path, monkeypatch):
    with FakeApi() as api:
        api.route("PATCH", ".*", echo)
        use_kubeconfig(tmp_path, monkeypatch, api.url)
        yield api


def patches(api):
    return [(r.path, r.headers["content-type"], r.json()) for r in api.calls("PATCH")]


def test_taskmanagers_on_the_operator_merge_patch_the_flinkdeployment(kube_api):
    kube_api.route("GET", CR_PATH, load("kubernetes", "flinkdeployment_stable"))
    plan = runner.plan_taskmanagers(CONFIG, {"replicas": 4})
    assert patches(kube_api) == []  # planning only reads
    runner.act_taskmanagers(CONFIG, plan, {"replicas": 4})
    assert patches(kube_api) == [(CR_PATH, "application/merge-patch+json", {"spec": {"taskManager": {"replicas": 4}}})]


def test_taskmanagers_without_the_operator_scale_the_deployment(kube_api):
    kube_api.route("GET", TM_PATH, deployment())
    plan = runner.plan_taskmanagers(CONFIG, {"replicas": 3})
    assert plan.target == f"{NS}/Deployment/flink-taskmanager"
    runner.act_taskmanagers(CONFIG, plan, {"replicas": 3})
    assert patches(kube_api) == [(f"{TM_PATH}/scale", "application/merge-patch+json", {"spec": {"replicas": 3}})]


def test_taskmanagers_refused_while_the_operator_upgrades(kube_api):
    kube_api.route("GET", CR_PATH, load("kubernetes", "flinkdeployment_upgrading"))
    with pytest.raises(Refused, match="UPGRADING"):
        runner.plan_taskmanagers(CONFIG, {"replicas": 3})


def test_restart_workload_sends_kubectls_rollout_restart_patch(kube_api):
    kube_api.route("GET", TM_PATH, deployment())
    params = {"namespace": NS, "kind": "Deployment", "name": "flink-taskmanager"}
    plan = runner.plan_workload(CONFIG, params)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    outcome = runner.act_workload(CONFIG, plan, params)
    [(path, content_type, body)] = patches(kube_api)
    assert (path, content_type) == (TM_PATH, "application/strategic-merge-patch+json")
    stamp = body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert body == {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    restarted = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= restarted <= datetime.now(timezone.utc)
    assert outcome["rows_affected"] == 1


def test_restart_workload_statefulset_path(kube_api):
    config = load_config({"remediation": {"restartable_workloads": [
        {"namespace": "streamflow-kafka", "kind": "StatefulSet", "name": "streamflow-kafka-kafka"}]}})
    path = "/apis/apps/v1/namespaces/streamflow-kafka/statefulsets/streamflow-kafka-kafka"
    kube_api.route("GET", path, {**deployment(), "kind": "StatefulSet"})
    params = {"namespace": "streamflow-kafka", "kind": "StatefulSet", "name": "streamflow-kafka-kafka"}
    runner.act_workload(config, runner.plan_workload(config, params), params)
    assert [(p, t) for p, t, _ in patches(kube_api)] == [(path, "application/strategic-merge-patch+json")]


def test_restart_workload_refuses_anything_not_allow_listed_without_asking_the_api(kube_api):
    for params, reason in [
        ({"namespace": "kube-system", "kind": "Deployment", "name": "coredns"}, "streamflow-\\* namespaces"),
        ({"namespace": NS, "kind": "Deployment", "name": "some-other-app"}, "not in remediation.restartable_workloads"),
    ]:
        with pytest.raises(Refused, match=reason):
            runner.plan_workload(CONFIG, params)
    assert kube_api.requests == []


def test_a_rejected_patch_is_an_action_error_naming_the_api_answer(kube_api):
    kube_api.route("GET", TM_PATH, deployment())
    kube_api.route("PATCH", TM_PATH, (403, load("kubernetes", "status_forbidden")))
    params = {"namespace": NS, "kind": "Deployment", "name": "flink-taskmanager"}
    with pytest.raises(ActionError, match=f"PATCH {TM_PATH} failed: .*HTTP 403"):
        runner.act_workload(CONFIG, runner.plan_workload(CONFIG, params), params)


class FakeOperator:
    """The FlinkDeployment as the API holds it, and an operator that (if `works`) reconciles a new
    restartNonce: new generation on PATCH; on the next GET, the nonce reconciled and the job RUNNING with
    a new start time. `bumped_by_someone_else` raises the live nonce while a plan awaits approval."""

    def __init__(self, nonce: int, works: bool = True):
        self.cr = load("kubernetes", "flinkdeployment_stable")
        self.cr["spec"]["restartNonce"] = nonce
        self.works, self.pending = works, False

    def get(self, request):
        if self.pending and self.works:
            status, nonce = self.cr["status"], self.cr["spec"]["restartNonce"]
            status["observedGeneration"] = self.cr["metadata"]["generation"]
            status["reconciliationStatus"]["lastReconciledSpec"] = json.dumps({"spec": {"restartNonce": nonce}})
            status["jobStatus"].update(startTime=str(int(status["jobStatus"]["startTime"]) + 1000), state="RUNNING")
            self.pending = False
        return 200, self.cr

    def patch(self, request):
        self.cr["spec"].update(request.json()["spec"])
        self.cr["metadata"]["generation"] += 1
        self.pending = True
        return 200, self.cr

    def bumped_by_someone_else(self, nonce: int):
        self.cr["spec"]["restartNonce"] = nonce
        self.cr["metadata"]["generation"] += 1
        self.pending = True


@pytest.fixture
def flink_rest(monkeypatch):
    """Flink REST stand-in: one RUNNING FraudDetectionJob whose savepoint completes at once."""
    from tests.fakes.http_api import http_connection

    job = {"jid": "f00d", "name": "FraudDetectionJob", "state": "RUNNING", "start-time": 1}
    with FakeApi() as rest:
        rest.route("GET", "/jobs/overview", {"jobs": [job]})
        rest.route("GET", "/jobs/f00d/checkpoints", {"latest": {"completed": {"id": 9, "external_path": "s3://c/9"}}})
        rest.route("POST", "/jobs/f00d/savepoints", {"request-id": "trig-1"})
        rest.route("GET", "/jobs/f00d/savepoints/trig-1", {"status": {"id": "COMPLETED"},
                                                           "operation": {"location": "s3://sp/savepoint-f00d-1"}})
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(rest.url))
        yield rest


def operator_routes(kube_api, operator: FakeOperator, rest=None):
    kube_api.route("GET", CR_PATH, operator.get)
    # The operator may only be asked to restart once the savepoint is complete.
    kube_api.route("PATCH", CR_PATH, lambda req: operator.patch(req)
                   if rest is None or rest.calls("GET", "/jobs/f00d/savepoints/trig-1")
                   else (409, {"kind": "Status", "code": 409, "message": "patched before the savepoint"}))


RESTART_CONFIG = load_config({"remediation": {"flink_savepoint_dir": "s3://sp", "flink_restart_timeout_s": 3}})


def test_flink_restart_on_the_operator_savepoints_then_bumps_the_restart_nonce(kube_api, flink_rest):
    """Flink REST is a stand-in here (the real savepoint is tested on the sandbox Flink): the order of
    calls, the FlinkDeployment patch, and the wait for the operator's restart are what this test is about."""
    operator = FakeOperator(nonce=3)
    operator_routes(kube_api, operator, flink_rest)
    plan = runner.plan_restart(RESTART_CONFIG, {"dry_run": False})
    outcome = runner.act_restart(RESTART_CONFIG, plan, {"dry_run": False})
    [trigger] = flink_rest.calls("POST", "/jobs/f00d/savepoints")
    assert trigger.json() == {"cancel-job": False, "target-directory": "s3://sp"}
    assert outcome["savepoint"] == "s3://sp/savepoint-f00d-1"
    assert patches(kube_api) == [(CR_PATH, "application/merge-patch+json", {"spec": {"restartNonce": 4}})]
    assert (outcome["job_start_before"], outcome["job_start_after"]) == ("1779356400123", "1779356401123")


def test_flink_restart_nonce_is_read_at_act_time_not_plan_time(kube_api, flink_rest):
    """Planned at nonce 3; someone restarted it meanwhile (nonce 5). The act sets 6: patching the plan's
    4 would set the nonce backwards, which the operator does not read as a restart."""
    operator = FakeOperator(nonce=3)
    operator_routes(kube_api, operator, flink_rest)
    plan = runner.plan_restart(RESTART_CONFIG, {"dry_run": False})
    operator.bumped_by_someone_else(5)
    operator.get(None)  # the operator reconciles that restart before our approval
    outcome = runner.act_restart(RESTART_CONFIG, plan, {"dry_run": False})
    assert patches(kube_api) == [(CR_PATH, "application/merge-patch+json", {"spec": {"restartNonce": 6}})]
    assert outcome["patched"] == {"spec": {"restartNonce": 6}}


def test_flink_restart_is_not_done_until_the_operator_restarted_the_job(kube_api, flink_rest):
    """The PATCH is accepted but the operator never reconciles it (stuck, or not running): the act fails
    after flink_restart_timeout_s naming what the operator reports, and the audit outcome keeps the patch."""
    operator = FakeOperator(nonce=3, works=False)
    operator_routes(kube_api, operator, flink_rest)
    plan = runner.plan_restart(RESTART_CONFIG, {"dry_run": False})
    with pytest.raises(ActionError, match="restartNonce is 4, but the operator reports .*'job_start': '1779356400123'"
                                          ".*not restarted") as failed:
        runner.act_restart(RESTART_CONFIG, plan, {"dry_run": False})
    assert patches(kube_api) == [(CR_PATH, "application/merge-patch+json", {"spec": {"restartNonce": 4}})]
    assert failed.value.outcome["savepoint"] == "s3://sp/savepoint-f00d-1"
    assert failed.value.outcome["patched"] == {"spec": {"restartNonce": 4}}


def test_refused_run_fails_saying_why_and_never_reaches_the_approval(kube_api, airflow_db):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.dagfiles import load_repo_dag
    from tests.maintenance.test_dags import states

    conf = {"dry_run": False, "namespace": "streamflow-data", "kind": "StatefulSet", "name": "streamflow-postgres-1"}
    dr = load_repo_dag("remediate_restart_workload").test(run_conf=conf)
    assert dr.state == "failed"
    assert states(dr) == {"plan": "failed", "real_run": "upstream_failed", "approve": "upstream_failed",
                          "act": "upstream_failed", "verify": "upstream_failed", "report": "failed"}
    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dr.run_id, key="refused", task_ids="plan",
                                                 dag_ids=dr.dag_id)).first()
        refused = XComModel.deserialize_value(row)
    assert refused.startswith("streamflow-data/StatefulSet/streamflow-postgres-1 is not in "
                              "remediation.restartable_workloads (allowed: streamflow-processing/Deployment/")
    assert kube_api.requests == []  # nothing read, nothing patched


def test_approve_task_without_a_recorded_approve_acts_on_nothing(kube_api, warehouse_db, airflow_db, monkeypatch):
    """A real run whose approve task succeeds without a person's Approve (e.g. marked success in the UI)
    fails at act: no PATCH, no real audit row, and the report says nothing was done."""
    import psycopg

    from streamflow_ops.remediation.flow import RemediationApproval
    from tests.dagfiles import load_repo_dag
    from tests.maintenance.test_dags import states, xcom

    kube_api.route("GET", TM_PATH, deployment())
    monkeypatch.setattr(RemediationApproval, "execute", lambda self, context: None)
    conf = {"dry_run": False, "namespace": NS, "kind": "Deployment", "name": "flink-taskmanager"}
    dr = load_repo_dag("remediate_restart_workload").test(run_conf=conf)
    assert dr.state == "failed"
    assert states(dr) == {"plan": "success", "real_run": "success", "approve": "success", "act": "failed",
                          "verify": "upstream_failed", "report": "failed"}
    assert len(xcom(dr, "plan")["plan"]["items"]) == 1  # there was something the run could have done
    assert kube_api.calls("PATCH") == []
    with psycopg.connect(warehouse_db) as conn:
        audited = conn.execute("select to_regclass('ops.maintenance_audit') is not null").fetchone()[0] and \
            conn.execute("select count(*) from ops.maintenance_audit "
                         "where dag_id = 'remediate_restart_workload'").fetchone()[0]
    assert not audited  # no audit table written at all (a real act creates it), or no row of this DAG


def test_flink_restart_planned_while_down_refuses_to_act_once_the_job_runs_again(monkeypatch):
    """Planned while the job was RESTARTING (restore from the newest checkpoint, cancel first); Flink
    recovered it before the approval: the act cancels nothing and submits nothing."""
    from streamflow_ops.remediation.actions import FlinkControl, restart_flink
    from streamflow_ops.remediation.plans import plan_flink_restart
    from tests.fakes.http_api import http_connection

    job = {"jid": "f00d", "name": "FraudDetectionJob", "state": "RESTARTING", "start-time": 1}
    plan = plan_flink_restart(job, "FraudDetectionJob", {"id": 9, "external_path": "s3://c/9"}, "", None, NS,
                              "fraud-detection", {"id": "jar-1"}, "com.example.Main", [])
    [item] = plan.items
    assert (item["mode"], item["savepoint"], item["restore_path"]) == ("standalone", False, "s3://c/9")
    with FakeApi() as rest:
        rest.route("GET", "/jobs/f00d", {"jid": "f00d", "state": "RUNNING"})
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", http_connection(rest.url))
        with pytest.raises(ActionError, match="RUNNING again since the plan"):
            restart_flink(item, FlinkControl(CONFIG.flink.conn_id, 2, 5), None, 5, 5)
        assert rest.calls("PATCH") == [] and rest.calls("POST") == []  # not cancelled, not resubmitted


def test_restart_workload_acts_only_while_still_allow_listed(kube_api):
    """Planned while allowed; the allow-list lost it before the approval: nothing is patched."""
    kube_api.route("GET", TM_PATH, deployment())
    params = {"namespace": NS, "kind": "Deployment", "name": "flink-taskmanager"}
    plan = runner.plan_workload(CONFIG, params)
    shrunk = load_config({"remediation": {"restartable_workloads": [
        {"namespace": NS, "kind": "Deployment", "name": "flink-jobmanager"}]}})
    with pytest.raises(ActionError, match="no longer allowed.*not in remediation.restartable_workloads"):
        runner.act_workload(shrunk, plan, params)
    assert kube_api.calls("PATCH") == []


class ClearedTaskInstance:
    """The act task's instance as the task sees it: its run's XComs (the plan, the approve task's
    decision) and what it pushes. Running act_step twice with one of these is what clearing `act` by
    hand does: same dag_id, run_id and task_id, same approval in XCom."""

    def __init__(self, dag_id: str, plan, decision: dict):
        self.dag_id, self.run_id, self.task_id = dag_id, f"manual__{uuid.uuid4().hex}", "act"
        self.xcoms = {("plan", "return_value"): {"plan": plan.to_dict()}, ("approve", "decision"): decision}
        self.pushed: dict = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value"):
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value


APPROVED = {"chosen_options": ["Approve"], "responded_by_user": {"id": "u1", "name": "alice"}}
WORKLOAD_PARAMS = {"dry_run": False, "namespace": NS, "kind": "Deployment", "name": "flink-taskmanager"}


@pytest.fixture
def act_twice(kube_api, warehouse_db, monkeypatch):
    """act_step of remediate_restart_workload, callable again and again in one run; its task instance."""
    from streamflow_ops.remediation import flow

    kube_api.route("GET", TM_PATH, deployment())
    ti = ClearedTaskInstance("remediate_restart_workload", runner.plan_workload(CONFIG, WORKLOAD_PARAMS), APPROVED)
    context = {"ti": ti, "dag": SimpleNamespace(dag_id=ti.dag_id), "params": WORKLOAD_PARAMS}
    monkeypatch.setattr(flow, "get_current_context", lambda: context)
    monkeypatch.setattr(flow, "get_config", lambda: CONFIG)
    return lambda: flow.act_step.function(ti.dag_id), ti


def audit_rows(dsn: str, run_id: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute("select task_id, dry_run, outcome, details -> 'approval' from ops.maintenance_audit "
                            "where run_id = %s order by id", (run_id,)).fetchall()


def test_an_approval_is_acted_on_once_a_cleared_act_refuses_saying_why(act_twice, kube_api, warehouse_db):
    from airflow.sdk.exceptions import AirflowFailException

    from streamflow_ops.remediation.report import build_report

    act, ti = act_twice
    assert act()["rows_affected"] == 1
    assert len(kube_api.calls("PATCH", TM_PATH)) == 1
    with pytest.raises(AirflowFailException, match=f"refused: the approval of run {ti.run_id} was already acted on "
                                                    f"at .*outcome 'success'.*trigger a new run"):
        act()  # the act task cleared by hand: same run, same approval
    assert len(kube_api.calls("PATCH", TM_PATH)) == 1  # not restarted twice
    assert audit_rows(warehouse_db, ti.run_id) == [("act", False, "success", APPROVED)]
    report = build_report(runner.REMEDIATIONS[ti.dag_id], WORKLOAD_PARAMS, ti.run_id, planned=None,
                          refused=ti.pushed["refused"], approval=APPROVED, acted=None, verified=None)
    assert report["outcome"] == "refused" and "already acted on" in report["headline"]


def test_a_failed_act_consumes_its_approval_too(act_twice, kube_api, warehouse_db):
    """Half-done actions are for a person: clearing a failed act does not try again on the old approval."""
    from airflow.sdk.exceptions import AirflowFailException

    act, ti = act_twice
    kube_api.route("PATCH", TM_PATH, (403, load("kubernetes", "status_forbidden")))
    with pytest.raises(AirflowFailException, match="HTTP 403"):
        act()
    kube_api.route("PATCH", TM_PATH, echo)  # the API would accept it now
    with pytest.raises(AirflowFailException, match="already acted on .*outcome 'failed'"):
        act()
    assert len(kube_api.calls("PATCH", TM_PATH)) == 1
    assert [row[2] for row in audit_rows(warehouse_db, ti.run_id)] == ["failed"]


@pytest.mark.parametrize("earlier", ["killed", "running"])
def test_an_act_killed_or_still_running_holds_its_approval(act_twice, kube_api, warehouse_db, earlier):
    """killed: its 'in progress' audit row (worker SIGKILLed mid-action) was committed; running: another
    act of the same run holds the run's act lock right now. Either way nothing is done."""
    import psycopg
    from airflow.sdk.exceptions import AirflowFailException

    from streamflow_ops.store import ensure_ops_schema

    act, ti = act_twice
    with psycopg.connect(warehouse_db, autocommit=True) as conn:
        ensure_ops_schema(conn)
        if earlier == "killed":
            conn.execute("insert into ops.maintenance_audit (dag_id, run_id, task_id, action, target, dry_run, "
                         "started_at, outcome) values (%s, %s, 'act', 'rollout_restart', 'x', false, now(), "
                         "'in progress')", (ti.dag_id, ti.run_id))
            match = "already acted on .*outcome 'in progress'"
        else:
            conn.execute("select pg_advisory_lock(hashtext('streamflow_ops.act:' || %s || '/' || %s))",
                         (ti.dag_id, ti.run_id))
            match = f"another act of run {ti.run_id} is running"
        with pytest.raises(AirflowFailException, match=match):
            act()
    assert kube_api.calls("PATCH") == []
