"""A remediation's real run on `airflow standalone`: it stops at the Human-in-the-loop approval, and
only an approval makes it act. Approved and rejected through the HITL REST API
(/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails); the approval form
screenshotted in Chromium. The far end is a local Kubernetes API stand-in capturing the PATCH."""
from __future__ import annotations

import json
import time
from urllib.parse import quote

import psycopg
import pytest
from playwright.sync_api import expect

from tests.fakes.http_api import FakeApi, write_kubeconfig
from tests.fakes.payloads import load
from tests.ui.test_trigger_form import log_in, page  # noqa: F401, F811 - the browser page fixture

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.postgres]

DAG = "remediate_restart_workload"
NS, NAME = "streamflow-processing", "flink-taskmanager"
WORKLOAD = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"
CONF = {"dry_run": False, "namespace": NS, "kind": "Deployment", "name": NAME}


@pytest.fixture(scope="module")
def kube_api(airflow_ui, tmp_path_factory):
    """The Kubernetes stand-in, reachable from the standalone's tasks as connection streamflow_kubernetes
    (created through the REST API for this module, deleted after it)."""
    deployment = {"kind": "Deployment", "apiVersion": "apps/v1", **load("kubernetes", "deployments_flink_ready")["items"][1]}
    with FakeApi() as api, airflow_ui.client() as rest:
        api.route("GET", WORKLOAD, deployment)
        api.route("PATCH", WORKLOAD, lambda request: (200, {**deployment, "spec": request.json()["spec"]}))
        kubeconfig = write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", api.url)
        created = rest.post("/connections", json={"connection_id": "streamflow_kubernetes", "conn_type": "kubernetes",
                                                  "extra": json.dumps({"kube_config_path": kubeconfig})})
        assert created.status_code == 201, created.text
        try:
            yield api
        finally:
            rest.delete("/connections/streamflow_kubernetes")


def states(api, run_id: str) -> dict[str, str]:
    tis = api.get(f"/dags/{DAG}/dagRuns/{quote(run_id)}/taskInstances").json()["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in tis}


def wait(condition, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f}s"
        time.sleep(1)


def parked(airflow_ui, run_id: str) -> bool:
    """Whether the scheduler has taken in the executor's event for the approve task's parking (its process
    exits when the task turns awaiting_input). Airflow 3.3.2 race: a response that resumes the task before
    that event is processed makes the scheduler read the stale "success" as a state changed externally and
    put the task up for retry, which asks for the approval again. People take longer than the scheduler
    loop; a test answering at once must wait for it. Only the scheduler's log shows it."""
    event = (f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{DAG}', "
             f"task_id='approve', run_id='{run_id}', try_number=1")
    return event in airflow_ui.log_file.read_text(errors="replace")


def trigger_until_awaiting_approval(api, airflow_ui) -> str:
    # One run at a time (max_active_runs=1): a run left over by an interrupted session would hold this one.
    for state in ("running", "queued"):
        for stale in api.get(f"/dags/{DAG}/dagRuns", params={"state": state}).json()["dag_runs"]:
            api.patch(f"/dags/{DAG}/dagRuns/{quote(stale['dag_run_id'])}", json={"state": "failed"}).raise_for_status()
    response = api.post(f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": CONF})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    wait(lambda: states(api, run_id).get("approve") == "awaiting_input",
         f"approve waiting for a person ({run_id})", timeout=240)
    wait(lambda: parked(airflow_ui, run_id), f"the scheduler to see approve parked ({run_id})", timeout=60)
    return run_id


def hitl_path(run_id: str) -> str:
    return f"/dags/{DAG}/dagRuns/{quote(run_id)}/taskInstances/approve/-1/hitlDetails"


def finished(api, run_id: str) -> dict:
    return wait(lambda: (r := api.get(f"/dags/{DAG}/dagRuns/{quote(run_id)}").json())["state"]
                in ("success", "failed") and r, f"run {run_id} to finish")


def xcom(api, run_id: str, task_id: str):
    return api.get(f"/dags/{DAG}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/return_value",
                   params={"deserialize": True}).json()["value"]


def audit_rows(dsn: str, run_id: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        if conn.execute("select to_regclass('ops.maintenance_audit')").fetchone()[0] is None:
            return []  # nothing was ever audited in this warehouse copy (the first audit creates the table)
        return conn.execute("select action, target, dry_run, outcome, rows_affected from ops.maintenance_audit "
                            "where dag_id = %s and run_id = %s", (DAG, run_id)).fetchall()


def answer_approval(api, run_id: str, option: str) -> tuple[dict, dict, dict]:
    """Answer the approve task through the HITL REST API as a person would; the finished run, its task
    states and the report's XCom."""
    answer = api.patch(hitl_path(run_id), json={"chosen_options": [option], "params_input": {}})
    assert answer.status_code == 200, answer.text
    return finished(api, run_id), states(api, run_id), xcom(api, run_id, "report")


def test_approved_through_the_rest_api_acts_once_audits_and_verifies(airflow_ui, kube_api, ui_warehouse, page,
                                                                    artifacts):
    airflow_ui.unpause((DAG,))
    with airflow_ui.client() as api:
        run_id = trigger_until_awaiting_approval(api, airflow_ui)
        assert kube_api.calls("PATCH") == [], "nothing may change before the approval"
        detail = api.get(hitl_path(run_id)).json()
        plan = xcom(api, run_id, "plan")["plan"]
        assert detail["task_instance"]["state"] == "awaiting_input"
        assert (detail["options"], detail["defaults"], detail["multiple"]) == (["Approve", "Reject"], ["Reject"], False)
        assert detail["body"] == plan["text"] and "kubectl.kubernetes.io/restartedAt" in detail["body"]

        # The form a person sees (Required Actions of the approve task), screenshotted for the record.
        log_in(page, airflow_ui)
        page.goto(f"{airflow_ui.url}/dags/{DAG}/runs/{quote(run_id, safe='')}/tasks/approve/required_actions")
        expect(page.get_by_text("Restart this workload?").first).to_be_visible(timeout=30_000)
        expect(page.get_by_role("button", name="Approve")).to_be_visible()
        page.screenshot(path=str(artifacts / "remediation_approval_form.png"), full_page=True)
        assert kube_api.calls("PATCH") == []

        run, task_states, report = answer_approval(api, run_id, "Approve")
    assert run["state"] == "success", task_states
    assert set(task_states.values()) == {"success"}, task_states
    [patch] = kube_api.calls("PATCH", WORKLOAD)
    assert patch.headers["content-type"] == "application/strategic-merge-patch+json"
    assert list(patch.json()["spec"]["template"]["metadata"]["annotations"]) == ["kubectl.kubernetes.io/restartedAt"]
    assert audit_rows(ui_warehouse, run_id) == [("rollout_restart", f"{NS}/Deployment/{NAME}", False, "success", 1)]
    assert report["outcome"] == "done" and report["headline"] == "done (approved by admin)"
    assert any(line.startswith(f"kubernetes.pods [{NS}]: ") for line in report["text"].splitlines())


def test_rejected_through_the_rest_api_changes_nothing(airflow_ui, kube_api, ui_warehouse):
    airflow_ui.unpause((DAG,))
    patches_before = len(kube_api.calls("PATCH"))
    with airflow_ui.client() as api:
        run_id = trigger_until_awaiting_approval(api, airflow_ui)
        run, task_states, report = answer_approval(api, run_id, "Reject")
    assert run["state"] == "success", task_states
    assert task_states == {"plan": "success", "real_run": "success", "approve": "success", "act": "skipped",
                           "verify": "skipped", "report": "success"}
    assert len(kube_api.calls("PATCH")) == patches_before
    assert audit_rows(ui_warehouse, run_id) == []
    assert (report["outcome"], report["headline"]) == ("rejected", "rejected by admin; nothing done")
