"""The remediations' preconditions and plans: pure functions on what the probes read."""
from __future__ import annotations

import pytest

from streamflow_ops.config import WorkloadRef
from streamflow_ops.remediation.plans import (
    Plan, Refused, plan_flink_restart, plan_session_terminations, plan_taskmanager_scale, plan_workload_restart,
)
from tests.fakes.payloads import load


def session(pid, state="idle", idle_s=3600.0, app="psql", user="app", backend="client backend",
            superuser=False, replication=False, own=False):
    return {"pid": pid, "usename": user, "application_name": app, "state": state, "backend_type": backend,
            "backend_start": f"2026-11-29T10:00:{pid % 60:02d}+00:00", "idle_s": idle_s,
            "is_superuser": superuser, "is_replication": replication, "is_own": own}


def pg_plan(sessions, idle_s=1800, application=None, include_superuser=False, may_signal=True, is_superuser=True):
    return plan_session_terminations(sessions, idle_s, application, include_superuser, "streamflow_ops",
                                     "streamflow", may_signal, "ops", is_superuser)


def test_sessions_plan_takes_only_idle_client_sessions_past_the_cutoff_oldest_first():
    sessions = [session(11, idle_s=1900), session(12, "idle in transaction", idle_s=7200),
                session(13, idle_s=1799),  # not idle long enough
                session(14, "active", idle_s=9000),  # busy
                session(15, "idle in transaction (aborted)", idle_s=1800)]
    plan = pg_plan(sessions)
    assert [i["pid"] for i in plan.items] == [12, 11, 15]
    assert plan.steps[0] == ("pg_terminate_backend(12): user app, application 'psql', idle in transaction "
                             "for 2h00m")
    assert plan.action == "terminate_sessions" and plan.target == "postgres:streamflow"
    assert plan.items[0]["backend_start"] == sessions[1]["backend_start"]


def test_sessions_plan_never_takes_replication_own_or_superuser_sessions():
    sessions = [session(21, backend="walsender", app="walreceiver"), session(22, replication=True),
                session(23, app="streamflow_ops"), session(24, app="streamflow_ops:maintenance_tasks/x"),
                session(25, own=True, app="psql"), session(26, superuser=True), session(27)]
    plan = pg_plan(sessions)
    assert [i["pid"] for i in plan.items] == [27]
    assert "left alone: 2 replication sessions" in plan.notes
    assert "left alone: 3 own sessions" in plan.notes
    assert "left alone: 1 superuser session (include_superuser is off)" in plan.notes
    assert [i["pid"] for i in pg_plan(sessions, include_superuser=True).items] == [26, 27]


def test_sessions_plan_filters_by_application_and_refuses_without_permission():
    sessions = [session(31, app="grafana"), session(32, app="psql")]
    assert [i["pid"] for i in pg_plan(sessions, application="grafana").items] == [31]
    assert pg_plan([session(33, idle_s=10)]).empty
    with pytest.raises(Refused, match="'ops' may not terminate sessions.*pg_signal_backend"):
        pg_plan(sessions, may_signal=False)


def test_include_superuser_is_refused_up_front_for_a_role_that_is_not_a_superuser():
    """PostgreSQL refuses a superuser's session to a pg_signal_backend member: a plan that includes one
    would be half done. Without include_superuser the same role plans (and leaves superusers alone)."""
    sessions = [session(51, superuser=True), session(52)]
    with pytest.raises(Refused, match="include_superuser: the connection's user 'ops' is not a superuser"):
        pg_plan(sessions, include_superuser=True, is_superuser=False)
    assert [i["pid"] for i in pg_plan(sessions, is_superuser=False).items] == [52]


def test_plan_round_trips_and_renders_its_steps():
    plan = pg_plan([session(41)])
    assert Plan.from_dict(plan.to_dict()) == plan
    assert plan.to_dict()["text"].startswith("**terminate_sessions** on `postgres:streamflow`\n\n1. pg_terminate_backend(41)")


def flinkdeployment(name="flinkdeployment_stable"):
    return load("kubernetes", name)


def deployment(replicas=2):
    item = load("kubernetes", "deployments_flink_ready")["items"][1]
    item["spec"]["replicas"] = replicas
    return item


def test_taskmanager_scale_patches_the_flinkdeployment_or_the_deployment():
    cr = flinkdeployment()
    plan = plan_taskmanager_scale(4, "streamflow-processing", cr, "fraud-detection", None, "flink-taskmanager")
    assert plan.items == [{"kind": "FlinkDeployment", "namespace": "streamflow-processing", "name": "fraud-detection",
                           "patch": {"spec": {"taskManager": {"replicas": 4}}}}]
    assert "from 2 to 4" in plan.steps[0]
    plan = plan_taskmanager_scale(3, "streamflow-processing", None, "fraud-detection", deployment(2),
                                  "flink-taskmanager")
    assert plan.items[0]["kind"] == "Deployment" and plan.items[0]["patch"] == {"spec": {"replicas": 3}}
    assert plan_taskmanager_scale(2, "streamflow-processing", cr, "fraud-detection", None, "x").empty


def test_taskmanager_scale_refusals():
    with pytest.raises(Refused, match="UPGRADING"):
        plan_taskmanager_scale(3, "streamflow-processing", flinkdeployment("flinkdeployment_upgrading"),
                               "fraud-detection", None, "flink-taskmanager")
    with pytest.raises(Refused, match="nothing to scale"):
        plan_taskmanager_scale(3, "streamflow-processing", None, "fraud-detection", None, "flink-taskmanager")
    with pytest.raises(Refused, match="1..10"):
        plan_taskmanager_scale(11, "streamflow-processing", flinkdeployment(), "fraud-detection", None, "x")


JOB = {"jid": "a1", "name": "FraudDetectionJob", "state": "RUNNING"}
JAR = {"id": "abc_job.jar", "entry": [{"name": "streamflow.Job"}]}
CHECKPOINT = {"id": 41, "external_path": "file:/ckpt/a1/chk-41"}


def restart(job=JOB, checkpoint=CHECKPOINT, cr=None, jar=JAR, entry="streamflow.Job"):
    return plan_flink_restart(job, "FraudDetectionJob", checkpoint, "file:///sp", cr, "streamflow-processing",
                              "fraud-detection", jar, entry, ["--rate", "5"])


def test_flink_restart_on_the_operator_savepoints_then_bumps_the_nonce():
    cr = flinkdeployment()
    cr["spec"]["restartNonce"] = 7
    plan = restart(cr=cr)
    # No nonce is fixed at plan time: the act step reads the live resource (tests/remediation/
    # test_kubernetes_actions.py: a bump made while the plan awaited approval is not undone).
    assert "patch" not in plan.items[0] and plan.items[0]["savepoint"] is True
    assert "by one (now 7; read again when acting)" in plan.steps[1]
    assert plan.steps[0].startswith("trigger a savepoint of FraudDetectionJob (job a1) into file:///sp")
    cr["spec"]["job"]["upgradeMode"] = "stateless"
    with pytest.raises(Refused, match="stateless"):
        restart(cr=cr)


def test_flink_restart_standalone_cancels_and_resubmits_from_savepoint_or_newest_checkpoint():
    plan = restart()
    item = plan.items[0]
    assert (item["mode"], item["savepoint"], item["restore_path"], item["jar_id"]) == (
        "standalone", True, None, "abc_job.jar")
    assert [s.split(" ")[0] for s in plan.steps] == ["trigger", "cancel", "resubmit"]
    failed = restart(job={**JOB, "state": "FAILED"})
    assert failed.items[0]["savepoint"] is False and failed.items[0]["restore_path"] == "file:/ckpt/a1/chk-41"
    assert [s.split(" ")[0] for s in failed.steps] == ["resubmit"]
    with pytest.raises(Refused, match="no completed checkpoint"):
        restart(job={**JOB, "state": "FAILED"}, checkpoint=None)
    with pytest.raises(Refused, match="flink_entry_class"):
        restart(entry="")
    with pytest.raises(Refused, match="no uploaded jar"):
        restart(jar=None)


ALLOWED = [WorkloadRef(namespace="streamflow-processing", kind="Deployment", name="flink-taskmanager")]


def test_workload_restart_only_for_allow_listed_streamflow_workloads():
    plan = plan_workload_restart("streamflow-processing", "Deployment", "flink-taskmanager", ALLOWED, deployment())
    assert plan.items == [{"namespace": "streamflow-processing", "kind": "Deployment", "name": "flink-taskmanager"}]
    with pytest.raises(Refused, match="only workloads in streamflow-\\* namespaces"):
        plan_workload_restart("kube-system", "Deployment", "coredns", ALLOWED, deployment())
    with pytest.raises(Refused, match="not in remediation.restartable_workloads"):
        plan_workload_restart("streamflow-processing", "StatefulSet", "flink-taskmanager", ALLOWED, deployment())
    with pytest.raises(Refused, match="does not exist"):
        plan_workload_restart("streamflow-processing", "Deployment", "flink-taskmanager", ALLOWED, None)
    rolling = deployment()
    rolling["status"]["updatedReplicas"] = 1
    with pytest.raises(Refused, match="already rolling out"):
        plan_workload_restart("streamflow-processing", "Deployment", "flink-taskmanager", ALLOWED, rolling)
