"""Kubernetes checks: pure evaluators on real API documents, and the family through KubernetesHook
against a local server that answers like the Kubernetes API."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from streamflow_ops.config import load_config
from streamflow_ops.kubernetes import evaluators as ev
from streamflow_ops.kubernetes.checks import run_checks
from streamflow_ops.results import Status
from tests.fakes.http_api import FakeApi, unused_port, write_kubeconfig
from tests.fakes.payloads import load
from tests.runbook import HEADINGS

NOW = datetime(2026, 5, 21, 12, 0, tzinfo=timezone.utc)
RULES = ev.PodRules(restart_warning=3, restart_window=timedelta(hours=24), not_ready_grace=timedelta(minutes=5))


def k8s(name):
    return load("kubernetes", name)


def pod_list(*names):
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "48999"},
            "items": [k8s(n) for n in names]}


def test_payloads_deserialize_with_the_real_kubernetes_client():
    """The fixtures are documents the kubernetes client accepts as Pods and Deployments."""
    from kubernetes.client import ApiClient

    class Raw:
        def __init__(self, doc):
            self.data = json.dumps(doc)

    client = ApiClient()
    pods = client.deserialize(Raw(pod_list("pod_running_ready", "pod_crashloopbackoff", "pod_pending_unschedulable")),
                              "V1PodList")
    assert pods.items[1].status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    deployments = client.deserialize(Raw(k8s("deployments_flink_ready")), "V1DeploymentList")
    assert deployments.items[0].status.ready_replicas == 1


# --- kubernetes.pods -------------------------------------------------------------------------------

@pytest.mark.parametrize("names, expected, fragment", [
    (["pod_running_ready"], Status.OK, "all running and Ready"),
    (["pod_running_ready", "pod_succeeded"], Status.OK, "all running and Ready"),
    (["pod_crashloopbackoff"], Status.CRITICAL, "CrashLoopBackOff (container flink-main-container, 14 restarts"),
    (["pod_imagepullbackoff"], Status.CRITICAL, "ImagePullBackOff"),
    (["pod_error"], Status.CRITICAL, "Error (container run-airflow-migrations, exit code 1)"),
    (["pod_not_ready"], Status.WARNING, "not Ready for 30 min"),
    (["pod_restarting"], Status.WARNING, "restarted 4 times (OOMKilled, last 108 min ago)"),
    (["pod_pending_unschedulable"], Status.WARNING, "Unschedulable: 0/1 nodes are available"),
    (["pod_evicted"], Status.WARNING, "pod Evicted"),
    (["pod_running_ready", "pod_not_ready", "pod_crashloopbackoff"], Status.CRITICAL, "2 of 3 pods unhealthy"),
])
def test_pods_bands(names, expected, fragment):
    result = ev.evaluate_pods("streamflow-x", pod_list(*names)["items"], RULES, NOW)
    assert result.status is expected
    assert fragment in result.message
    assert result.subject == "streamflow-x"
    assert result.runbook == "Appendix: Useful Commands > Kubernetes"  # no section of its own


def test_pods_worst_first_and_every_unhealthy_pod_in_details():
    result = ev.evaluate_pods("ns", pod_list("pod_not_ready", "pod_crashloopbackoff", "pod_running_ready")["items"],
                              RULES, NOW)
    assert [p["pod"] for p in result.details["unhealthy"]] == ["fraud-detection-taskmanager-1-1",
                                                               "streamflow-postgres-2"]
    assert result.value == 2


def test_pods_not_ready_within_grace_and_old_restarts_are_not_problems():
    two_minutes_in = datetime(2026, 5, 21, 11, 32, tzinfo=timezone.utc)  # not Ready since 11:30
    just_started = ev.evaluate_pods("ns", pod_list("pod_not_ready")["items"], RULES, two_minutes_in)
    assert just_started.status is Status.OK
    long_ago = ev.evaluate_pods("ns", pod_list("pod_restarting")["items"], RULES, NOW + timedelta(days=2))
    assert long_ago.status is Status.OK


def test_pods_below_restart_threshold_is_ok():
    rules = ev.PodRules(restart_warning=5, restart_window=RULES.restart_window, not_ready_grace=RULES.not_ready_grace)
    assert ev.evaluate_pods("ns", pod_list("pod_restarting")["items"], rules, NOW).status is Status.OK


def test_pods_terminating_pod_is_ignored():
    pod = k8s("pod_crashloopbackoff")
    pod["metadata"]["deletionTimestamp"] = "2026-05-21T11:59:30Z"
    assert ev.evaluate_pods("ns", [pod], RULES, NOW).status is Status.OK


def test_pods_empty_namespace_warns():
    result = ev.evaluate_pods("streamflow-data", [], RULES, NOW)
    assert result.status is Status.WARNING
    assert "no pods in namespace streamflow-data" in result.message


def test_pods_long_lists_are_cut_but_details_keep_all():
    pods = []
    for i in range(7):
        pod = k8s("pod_crashloopbackoff")
        pod["metadata"]["name"] = f"tm-{i}"
        pods.append(pod)
    result = ev.evaluate_pods("ns", pods, RULES, NOW)
    assert "and 2 more (see details)" in result.message
    assert len(result.details["unhealthy"]) == 7


# --- kubernetes.strimzi_kafka ----------------------------------------------------------------------

def test_strimzi_ready_is_ok():
    result = ev.evaluate_strimzi_kafka("streamflow-kafka", "streamflow-kafka", k8s("kafka_ready"))
    assert result.status is Status.OK
    assert "Ready (Kafka 3.9.0)" in result.message


def test_strimzi_not_ready_is_critical_with_reason():
    result = ev.evaluate_strimzi_kafka("streamflow-kafka", "streamflow-kafka", k8s("kafka_not_ready"))
    assert result.status is Status.CRITICAL
    assert "TimeoutException" in result.message and "kubectl describe kafka" in result.message


def test_strimzi_ready_false_is_critical_and_warnings_are_reported_on_ok():
    kafka = k8s("kafka_ready")
    kafka["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "FatalProblem", "message": "boom"}]
    assert ev.evaluate_strimzi_kafka("k", "ns", kafka).status is Status.CRITICAL
    kafka = k8s("kafka_ready")
    kafka["status"]["conditions"].append({"type": "Warning", "status": "True", "reason": "KafkaStorage",
                                          "message": "The storage type is deprecated"})
    result = ev.evaluate_strimzi_kafka("k", "ns", kafka)
    assert result.status is Status.OK and "1 operator warning(s): KafkaStorage" in result.message


def test_strimzi_unreconciled_warns_and_missing_is_critical():
    kafka = k8s("kafka_ready")
    del kafka["status"]
    assert ev.evaluate_strimzi_kafka("k", "ns", kafka).status is Status.WARNING
    missing = ev.evaluate_strimzi_kafka("k", "ns", None)
    assert missing.status is Status.CRITICAL and "not found" in missing.message


# --- kubernetes.cnpg_cluster -----------------------------------------------------------------------

def test_cnpg_healthy_reports_primary():
    result = ev.evaluate_cnpg_cluster("streamflow-postgres", "streamflow-data", k8s("cnpg_cluster_healthy"))
    assert result.status is Status.OK
    assert "primary streamflow-postgres-1, 3/3 instances ready" in result.message
    assert result.details["currentPrimary"] == "streamflow-postgres-1"


def test_cnpg_failing_over_is_critical():
    result = ev.evaluate_cnpg_cluster("streamflow-postgres", "streamflow-data", k8s("cnpg_cluster_failing_over"))
    assert result.status is Status.CRITICAL
    assert "primary down/degraded" in result.message and "Failing over" in result.message


def test_cnpg_other_phase_warns():
    result = ev.evaluate_cnpg_cluster("streamflow-postgres", "streamflow-data", k8s("cnpg_cluster_creating_replica"))
    assert result.status is Status.WARNING
    assert "Creating a new replica" in result.message and "2/3" in result.message


@pytest.mark.parametrize("change", [
    {"currentPrimary": ""},
    {"instancesStatus": {"healthy": ["streamflow-postgres-2"], "failed": ["streamflow-postgres-1"]}},
    {"readyInstances": 0},
    {"phase": "Cluster is in an unrecoverable state, needs manual intervention"},
])
def test_cnpg_primary_down_is_critical(change):
    cluster = k8s("cnpg_cluster_healthy")
    cluster["status"].update(change)
    assert ev.evaluate_cnpg_cluster("c", "ns", cluster).status is Status.CRITICAL


def test_cnpg_healthy_phase_with_missing_replica_warns_and_absent_cluster_is_critical():
    cluster = k8s("cnpg_cluster_healthy")
    cluster["status"]["readyInstances"] = 2
    assert ev.evaluate_cnpg_cluster("c", "ns", cluster).status is Status.WARNING
    assert ev.evaluate_cnpg_cluster("c", "ns", None).status is Status.CRITICAL


# --- kubernetes.flink_deployment -------------------------------------------------------------------

@pytest.mark.parametrize("name, expected, fragment", [
    ("flinkdeployment_stable", Status.OK, "jobManagerDeploymentStatus READY, lifecycleState STABLE, job RUNNING"),
    ("flinkdeployment_upgrading", Status.WARNING, "lifecycleState UPGRADING"),
    ("flinkdeployment_failed", Status.CRITICAL, "DeploymentFailedException"),
])
def test_flink_deployment_bands(name, expected, fragment):
    result = ev.evaluate_flink_deployment("fraud-detection", "streamflow-processing", k8s(name))
    assert result.status is expected
    assert fragment in result.message


def test_flink_deployment_planned_upgrade_only_warns():
    upgrading = k8s("flinkdeployment_upgrading")
    upgrading["status"].update({"jobManagerDeploymentStatus": "MISSING", "jobStatus": {"state": "FINISHED"}})
    assert ev.evaluate_flink_deployment("f", "ns", upgrading).status is Status.WARNING


def test_flink_deployment_suspended_is_critical_and_no_status_warns():
    suspended = k8s("flinkdeployment_stable")
    suspended["status"].update({"lifecycleState": "SUSPENDED", "jobStatus": {"state": "FINISHED"}})
    assert ev.evaluate_flink_deployment("f", "ns", suspended).status is Status.CRITICAL
    fresh = k8s("flinkdeployment_stable")
    del fresh["status"]
    assert ev.evaluate_flink_deployment("f", "ns", fresh).status is Status.WARNING


@pytest.mark.parametrize("name, expected, fragment", [
    ("deployments_flink_ready", Status.OK, "flink-jobmanager 1/1 ready, flink-taskmanager 2/2 ready"),
    ("deployments_flink_partly_ready", Status.WARNING, "flink-taskmanager 1/2 ready"),
    ("deployments_flink_jobmanager_down", Status.CRITICAL, "flink-jobmanager 0/1 ready"),
])
def test_flink_fallback_deployments_bands(name, expected, fragment):
    result = ev.evaluate_flink_workloads("fraud-detection", "streamflow-processing", "component in (a,b)",
                                         k8s(name)["items"])
    assert result.status is expected
    assert fragment in result.message


def test_flink_fallback_missing_component_is_critical():
    only_jm = k8s("deployments_flink_ready")["items"][:1]
    result = ev.evaluate_flink_workloads("fraud-detection", "ns", "sel", only_jm)
    assert result.status is Status.CRITICAL and "no taskmanager Deployment" in result.message
    assert ev.evaluate_flink_workloads("fraud-detection", "ns", "sel", []).status is Status.CRITICAL


# --- the family through KubernetesHook against a fake API server -----------------------------------

CONFIG = load_config()
NAMESPACES = CONFIG.kubernetes.namespaces
INVENTORY = list(CONFIG.kubernetes.expected_workloads)


@pytest.fixture
def kube_api(tmp_path, monkeypatch):
    """A fake Kubernetes API with a healthy platform; tests override routes to break things."""
    with FakeApi() as api:
        api.route("GET", r"/api/v1/namespaces/[^/]+/pods", pod_list("pod_running_ready"))
        for namespace in INVENTORY:  # the runbook's expected pods, each Running and Ready
            api.route("GET", f"/api/v1/namespaces/{namespace}/pods", k8s(f"podlist_{namespace}"))
        api.route("GET", r"/apis/kafka.strimzi.io/v1beta2/namespaces/streamflow-kafka/kafkas/streamflow-kafka",
                  k8s("kafka_ready"))
        api.route("GET", r"/apis/postgresql.cnpg.io/v1/namespaces/streamflow-data/clusters/streamflow-postgres",
                  k8s("cnpg_cluster_healthy"))
        api.route("GET", r"/apis/flink.apache.org/v1beta1/namespaces/streamflow-processing/flinkdeployments/"
                         r"fraud-detection", k8s("flinkdeployment_stable"))
        use_kubeconfig(tmp_path, monkeypatch, api.url)
        yield api


def use_kubeconfig(tmp_path, monkeypatch, server_url):
    path = write_kubeconfig(tmp_path / "kubeconfig", server_url)
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES",
                       json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": path}}))


def by_subject(results):
    return {(r.check_name, r.subject): r for r in results}


def test_family_healthy_platform_is_all_ok(kube_api):
    results = run_checks(CONFIG, now=NOW)
    assert [(r.check_name, r.status) for r in results] == (
        [("kubernetes.pods", Status.OK)] * len(NAMESPACES)
        + [("kubernetes.expected_workloads", Status.OK)] * len(INVENTORY)
        + [("kubernetes.strimzi_kafka", Status.OK), ("kubernetes.cnpg_cluster", Status.OK),
           ("kubernetes.flink_deployment", Status.OK), ("kubernetes.pvc_usage", Status.SKIPPED)])
    assert not [(r.check_name, r.runbook) for r in results if r.runbook not in HEADINGS]
    # one pod listing per namespace feeds both pod checks
    assert {r.path for r in kube_api.calls("GET", r"/api/v1/namespaces/.*/pods")} == {
        f"/api/v1/namespaces/{ns}/pods" for ns in NAMESPACES}
    assert all(r.headers["authorization"] == "Bearer fake-token" for r in kube_api.requests)


def test_family_reports_each_namespace_on_its_own(kube_api):
    kube_api.route("GET", r"/api/v1/namespaces/streamflow-processing/pods",
                   pod_list("pod_running_ready", "pod_crashloopbackoff"))
    kube_api.route("GET", r"/apis/postgresql.cnpg.io/v1/namespaces/streamflow-data/clusters/streamflow-postgres",
                   k8s("cnpg_cluster_failing_over"))
    results = by_subject(run_checks(CONFIG, now=NOW))
    assert results[("kubernetes.pods", "streamflow-processing")].status is Status.CRITICAL
    assert results[("kubernetes.pods", "streamflow-kafka")].status is Status.OK
    assert results[("kubernetes.cnpg_cluster", "streamflow-data/streamflow-postgres")].status is Status.CRITICAL


def test_family_falls_back_to_deployments_without_flinkdeployment(kube_api):
    kube_api.route("GET", r"/apis/flink.apache.org/.*", (404, k8s("status_not_found_flinkdeployment")))
    kube_api.route("GET", r"/apis/apps/v1/namespaces/streamflow-processing/deployments",
                   k8s("deployments_flink_partly_ready"))
    results = by_subject(run_checks(CONFIG, now=NOW))
    flink = results[("kubernetes.flink_deployment", "streamflow-processing/fraud-detection")]
    assert flink.status is Status.WARNING and flink.details["source"] == "deployments"
    [listing] = kube_api.calls("GET", r"/apis/apps/v1/namespaces/streamflow-processing/deployments")
    assert listing.query["labelSelector"] == ["component in (jobmanager,taskmanager)"]


def test_family_forbidden_namespace_is_unknown_and_names_url_and_status(kube_api):
    kube_api.route("GET", r"/api/v1/namespaces/streamflow-kafka/pods", (403, k8s("status_forbidden")))
    results = by_subject(run_checks(CONFIG, now=NOW))
    denied = results[("kubernetes.pods", "streamflow-kafka")]
    assert denied.status is Status.UNKNOWN
    assert "/api/v1/namespaces/streamflow-kafka/pods -> HTTP 403" in denied.message
    assert "cannot list resource" in denied.message
    assert results[("kubernetes.pods", "streamflow-data")].status is Status.OK


def test_family_server_error_and_garbage_are_unknown(kube_api):
    kube_api.route("GET", r"/apis/kafka.strimzi.io/.*",
                   (500, {"kind": "Status", "code": 500, "message": "etcdserver: leader changed"}))
    kube_api.route("GET", r"/apis/postgresql.cnpg.io/.*", (200, b"<html>proxy error</html>"))
    results = by_subject(run_checks(CONFIG, now=NOW))
    strimzi = results[("kubernetes.strimzi_kafka", "streamflow-kafka/streamflow-kafka")]
    assert strimzi.status is Status.UNKNOWN and "HTTP 500" in strimzi.message and "leader changed" in strimzi.message
    cnpg = results[("kubernetes.cnpg_cluster", "streamflow-data/streamflow-postgres")]
    assert cnpg.status is Status.UNKNOWN and "not JSON" in cnpg.message


def test_family_unreachable_api_is_unknown_everywhere(tmp_path, monkeypatch):
    port = unused_port()
    use_kubeconfig(tmp_path, monkeypatch, f"http://127.0.0.1:{port}")
    results = [r for r in run_checks(CONFIG, now=NOW) if r.check_name != "kubernetes.pvc_usage"]
    assert len(results) == len(NAMESPACES) + len(INVENTORY) + 3
    assert all(r.status is Status.UNKNOWN for r in results)
    assert all(f"127.0.0.1:{port}" in r.message and "did not answer" in r.message for r in results)


def test_family_without_connection_is_skipped(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    results = run_checks(CONFIG, now=NOW)
    assert {r.check_name for r in results} == {"kubernetes.pods", "kubernetes.strimzi_kafka",
                                               "kubernetes.cnpg_cluster", "kubernetes.flink_deployment",
                                               "kubernetes.expected_workloads", "kubernetes.pvc_usage"}
    assert all(r.status is Status.SKIPPED for r in results)
    # PVC usage comes from Prometheus, so it names that connection; the rest need the API server.
    assert {r.check_name: r.message.split("'")[1] for r in results} == {
        **{r.check_name: "streamflow_kubernetes" for r in results}, "kubernetes.pvc_usage": "streamflow_prometheus"}


def test_family_hanging_api_costs_one_timeout(kube_api):
    """An API server that accepts but never answers trips the probe: later calls fail without waiting."""
    import time

    def hang(request):
        time.sleep(1.5)
        return 200, pod_list("pod_running_ready")

    kube_api.route("GET", r"/api/v1/namespaces/[^/]+/pods", hang)
    results = [r for r in run_checks(load_config({"kubernetes": {"request_timeout_s": 0.3}}), now=NOW)
               if r.check_name != "kubernetes.pvc_usage"]  # Prometheus, not the API server
    assert all(r.status is Status.UNKNOWN and "did not answer" in r.message for r in results)
    assert len(kube_api.requests) == 1


# --- kubernetes.expected_workloads --------------------------------------------------------------------

def inventory_pods(namespace, drop=(), not_ready=()):
    """The runbook's pods of a namespace (real PodList payload) minus `drop`, with `not_ready` failing."""
    pods = [p for p in k8s(f"podlist_{namespace}")["items"] if p["metadata"]["name"] not in drop]
    for pod in pods:
        if pod["metadata"]["name"] in not_ready:
            next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["status"] = "False"
    return pods


def expected(namespace, executor="CeleryExecutor", **kw):
    return ev.evaluate_expected_workloads(namespace, inventory_pods(namespace, **kw),
                                          CONFIG.kubernetes.expected_workloads[namespace], executor)


@pytest.mark.parametrize("namespace", INVENTORY)
def test_expected_workloads_full_inventory_is_ok(namespace):
    result = expected(namespace)
    assert result.status is Status.OK and result.subject == namespace
    assert result.runbook.startswith("Service Health Checks > ") and namespace in result.runbook


@pytest.mark.parametrize("namespace, drop, status, fragment", [
    # a single-instance core workload absent: critical
    ("streamflow-kafka", {"streamflow-kafka-kafka-0"}, Status.CRITICAL, "Kafka broker (streamflow-kafka-kafka-0): 0/1"),
    ("streamflow-processing", {"flink-jobmanager-7c9f8d6b5-r8t4v"}, Status.CRITICAL, "Flink JobManager"),
    ("streamflow-orchestration", {"airflow-scheduler-5d8f9c7b6-k2j4h"}, Status.CRITICAL, "Airflow scheduler"),
    # the primary gone (replicas left): critical, and the instance count is short too
    ("streamflow-data", {"streamflow-postgres-1"}, Status.CRITICAL, "PostgreSQL primary"),
    # fewer replicas than expected, or a non-core workload absent: warning
    ("streamflow-processing", {"flink-taskmanager-6b8c7d5f4-z6p1q"}, Status.WARNING, "Flink TaskManagers"),
    ("streamflow-data", {"streamflow-postgres-3"}, Status.WARNING, "PostgreSQL instances"),
    ("streamflow-monitoring", {"kube-prometheus-stack-grafana-7f8d9c6b5-t7y8u"}, Status.WARNING, "Grafana"),
])
def test_expected_workloads_missing_pods(namespace, drop, status, fragment):
    result = expected(namespace, drop=drop)
    assert result.status is status
    assert fragment in result.message and "kubectl get deployments,pods -n " + namespace in result.message
    short = [w for w in result.details["workloads"] if w["serving"] < w["expected"]]
    assert short and all(w["serving"] == w["expected"] - 1 or w["expected"] == 1 for w in short)


def test_expected_workloads_not_ready_pod_does_not_count():
    result = expected("streamflow-processing", not_ready={"flink-taskmanager-6b8c7d5f4-w3n9x"})
    assert result.status is Status.WARNING and "Flink TaskManagers (flink-taskmanager-*): 1/2 serving" in result.message


def test_expected_workloads_empty_namespace_is_a_finding_not_silence():
    pods = inventory_pods("streamflow-kafka", drop={p["metadata"]["name"]
                                                     for p in k8s("podlist_streamflow-kafka")["items"]})
    wanted = CONFIG.kubernetes.expected_workloads["streamflow-kafka"]
    result = ev.evaluate_expected_workloads("streamflow-kafka", pods, wanted, "CeleryExecutor")
    assert result.status is Status.CRITICAL and result.message.startswith("namespace streamflow-kafka has no pods")
    assert pods == [] and result.value == len(wanted)  # every expected workload short


def test_expected_workloads_webserver_or_api_server_and_worker_only_with_celery():
    # The payload runs Airflow 3's api-server, accepted for the runbook's airflow-webserver.
    assert expected("streamflow-orchestration").status is Status.OK
    no_worker = expected("streamflow-orchestration", drop={"airflow-worker-0"})
    assert no_worker.status is Status.WARNING and "Airflow Celery worker" in no_worker.message
    assert expected("streamflow-orchestration", executor="KubernetesExecutor", drop={"airflow-worker-0"}).status \
        is Status.OK


def test_expected_workloads_inventory_is_overridable(kube_api):
    config = load_config({"kubernetes": {"expected_workloads": {
        "streamflow-kafka": [{"pod": "my-broker-*", "core": True, "description": "our broker"}]}}})
    results = {r.subject: r for r in run_checks(config, now=NOW) if r.check_name == "kubernetes.expected_workloads"}
    assert list(results) == ["streamflow-kafka"]
    assert results["streamflow-kafka"].status is Status.CRITICAL and "our broker" in results["streamflow-kafka"].message


# --- kubernetes.pvc_usage -----------------------------------------------------------------------------

GIB = 2 ** 30


def pvc_results(used="query_kubelet_volume_used", capacity="query_kubelet_volume_capacity"):
    return ev.evaluate_pvc_usage(load("prometheus", used)["data"]["result"],
                                 load("prometheus", capacity)["data"]["result"], NAMESPACES,
                                 CONFIG.kubernetes.pvc_warning_ratio, CONFIG.kubernetes.pvc_critical_ratio)


def test_pvc_usage_bands_per_pvc_in_the_streamflow_namespaces():
    used = {(s["metric"]["namespace"], s["metric"]["persistentvolumeclaim"]): int(s["value"][1])
            for s in load("prometheus", "query_kubelet_volume_used")["data"]["result"]}
    results = {r.subject: r for r in pvc_results()}
    assert "kube-system/not-ours" not in results  # outside the streamflow namespaces
    for (namespace, pvc), used_bytes in used.items():
        if namespace not in NAMESPACES:
            continue
        ratio = used_bytes / (20 * GIB)  # every PVC of the payload has 20 GiB
        want = Status.CRITICAL if ratio > 0.95 else Status.WARNING if ratio >= 0.80 else Status.OK
        assert results[f"{namespace}/{pvc}"].status is want, (pvc, ratio)
    assert results["streamflow-data/streamflow-postgres-1"].status is Status.WARNING  # exactly 80 %
    assert results["streamflow-data/streamflow-postgres-3"].status is Status.WARNING  # exactly 95 %: not above


def test_pvc_usage_cites_postgres_or_kafka_runbook_steps():
    results = {r.subject: r for r in pvc_results()}
    postgres = results["streamflow-data/streamflow-postgres-1"]
    assert postgres.runbook == "Alert Response Procedures > Alert: PostgresPVCNearlyFull"
    assert "bronze_retention" in postgres.message
    kafka = results["streamflow-kafka/data-0-streamflow-kafka-kafka-0"]
    assert kafka.status is Status.CRITICAL and kafka.runbook == "Alert Response Procedures > Alert: KafkaBrokerDown"
    assert "log segments" in kafka.message


def test_pvc_usage_nan_or_inf_reading_is_unknown_not_ok():
    def vector(value):
        return [{"metric": {"namespace": "streamflow-data", "persistentvolumeclaim": "pgdata"}, "value": [0, value]}]

    for used, capacity in [("NaN", str(20 * GIB)), (str(19 * GIB), "+Inf"), ("+Inf", str(20 * GIB))]:
        [result] = ev.evaluate_pvc_usage(vector(used), vector(capacity), NAMESPACES, 0.8, 0.95)
        assert (result.subject, result.status) == ("streamflow-data/pgdata", Status.UNKNOWN), (used, capacity)


def test_pvc_usage_without_kubelet_series_is_unknown():
    [result] = pvc_results(used="query_empty", capacity="query_empty")
    assert result.status is Status.UNKNOWN and "kubelet" in result.message


@pytest.fixture
def prometheus_api(monkeypatch):
    with FakeApi() as api:
        def answer(request):
            metric = request.query["query"][0].split("{", 1)[0]
            name = {"kubelet_volume_stats_used_bytes": "query_kubelet_volume_used",
                    "kubelet_volume_stats_capacity_bytes": "query_kubelet_volume_capacity"}[metric]
            return 200, load("prometheus", name)

        api.route("GET", "/api/v1/query", answer)
        monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_PROMETHEUS",
                           json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": api.port}))
        yield api


def test_pvc_usage_probe_queries_prometheus_for_the_namespaces(prometheus_api, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    results = [r for r in run_checks(CONFIG, now=NOW) if r.check_name == "kubernetes.pvc_usage"]
    assert {r.subject for r in results} == {
        f"{s['metric']['namespace']}/{s['metric']['persistentvolumeclaim']}"
        for s in load("prometheus", "query_kubelet_volume_used")["data"]["result"]
        if s["metric"]["namespace"] in NAMESPACES}
    queries = sorted(r.query["query"][0] for r in prometheus_api.calls("GET", "/api/v1/query"))
    assert [q.split("{")[0] for q in queries] == ["kubelet_volume_stats_capacity_bytes",
                                                   "kubelet_volume_stats_used_bytes"]
    assert all("namespace=~" in q and all(ns in q for ns in NAMESPACES) for q in queries)


def test_pvc_usage_prometheus_error_is_unknown(prometheus_api):
    prometheus_api.route("GET", "/api/v1/query", (400, load("prometheus", "query_bad_data")))
    [result] = [r for r in run_checks(CONFIG, now=NOW) if r.check_name == "kubernetes.pvc_usage"]
    assert result.status is Status.UNKNOWN and "HTTP 400" in result.message
