"""Metadata cleanup: the pod `airflow db clean` runs in, built by the real KubernetesPodOperator (created
at run time by MetadataCleanupOperator) and sent to a local server answering like the Kubernetes API."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace
from datetime import datetime, timezone

import pytest
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.config import load_config
from streamflow_ops.housekeeping.metadata import MetadataCleanupOperator, db_clean_arguments
from tests.backup.conftest import kube  # noqa: F401 - the fake Kubernetes API fixture
from tests.fakes.http_api import FakeApi

REFERENCE = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)
IMAGE = "registry.streamflow.internal/airflow:3.3.2-streamflow.4"
CONFIG = load_config({"housekeeping": {"scheduler_image": IMAGE}})
PODS = "/api/v1/namespaces/streamflow-orchestration/pods"


def test_db_clean_arguments():
    before = datetime(2025, 12, 10, 3, 0, tzinfo=timezone.utc)
    assert db_clean_arguments(before, dry_run=False) == [
        "db", "clean", "--clean-before-timestamp", "2025-12-10T03:00:00+00:00", "--skip-archive", "--yes"]
    assert db_clean_arguments(before, dry_run=True)[-1] == "--dry-run"


@pytest.mark.parametrize("params, expected_args", [
    ({"dry_run": True}, ["db", "clean", "--clean-before-timestamp", "2025-12-10T03:00:00+00:00", "--skip-archive",
                         "--yes", "--dry-run"]),
    ({"dry_run": False, "metadata_retention_days": 30},
     ["db", "clean", "--clean-before-timestamp", "2026-02-08T03:00:00+00:00", "--skip-archive", "--yes"]),
])
def test_pod_runs_db_clean_in_the_scheduler_image_with_the_metadata_secret(kube, params, expected_args):
    op = MetadataCleanupOperator(task_id="metadata_cleanup")
    pod = op.pod_operator(CONFIG, params, REFERENCE).build_pod_request_obj(dry_run=True)
    (container,) = pod.spec.containers
    assert pod.metadata.namespace == "streamflow-orchestration"
    assert container.image == IMAGE
    assert container.command == ["airflow"] and container.args == expected_args
    (env,) = [e for e in container.env if e.name == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert (env.value_from.secret_key_ref.name, env.value_from.secret_key_ref.key) == ("airflow-metadata", "connection")
    assert pod.spec.restart_policy == "Never"


def test_missing_image_or_connection_fails_before_any_pod(kube, monkeypatch):
    op = MetadataCleanupOperator(task_id="metadata_cleanup")
    with pytest.raises(AirflowFailException, match="^housekeeping.scheduler_image: not set"):
        op.pod_operator(load_config(), {}, REFERENCE)
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES")
    with pytest.raises(AirflowFailException, match="^kubernetes.conn_id: the Kubernetes connection"):
        op.pod_operator(CONFIG, {}, REFERENCE)
    assert kube.requests == []


def serve_pods(kube: FakeApi, exit_code: int = 0) -> dict:
    """Answer pod create/read/log/delete like the API server for a pod that runs and exits with exit_code
    (0: Succeeded/Completed; otherwise Failed/Error, e.g. the metadata DB refused the connection)."""
    created: dict = {}
    phase, reason = ("Succeeded", "Completed") if exit_code == 0 else ("Failed", "Error")

    def create(request):
        created.update(request.json(), status={"phase": "Pending"})
        return 201, created

    def read(request):
        pod = json.loads(json.dumps(created))
        pod["status"] = {"phase": phase, "containerStatuses": [{
            "name": "base", "ready": False, "restartCount": 0, "image": IMAGE, "imageID": "", "started": False,
            "state": {"terminated": {"exitCode": exit_code, "reason": reason,
                                     "startedAt": "2026-03-10T03:00:05Z", "finishedAt": "2026-03-10T03:00:41Z"}}}]}
        return 200, pod

    kube.route("GET", PODS, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []})
    kube.route("POST", PODS, create)
    kube.route("GET", rf"{PODS}/[^/]+", read)
    kube.route("GET", rf"{PODS}/[^/]+/log", (200, b"Performing dry run for db clean.\n"))
    kube.route("DELETE", rf"{PODS}/[^/]+", lambda request: (200, created))
    kube.route("GET", "/api/v1/namespaces/streamflow-orchestration/events",
               {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []})
    return created


def sent_container(kube: FakeApi) -> dict:
    (post,) = kube.calls("POST", PODS)
    assert kube.calls("DELETE", rf"{PODS}/{re.escape(post.json()['metadata']['name'])}")
    return post.json()["spec"]["containers"][0]


def test_the_pod_is_created_followed_and_deleted_through_the_api(kube):
    """The whole operator against the fake API server: create, wait, read logs, delete."""
    serve_pods(kube)
    op = MetadataCleanupOperator(task_id="metadata_cleanup", poll_interval=0.01)
    pod = op.pod_operator(CONFIG, {"dry_run": True}, REFERENCE)
    ti = SimpleNamespace(dag_id="airflow_housekeeping", task_id="housekeeping.metadata_cleanup", map_index=-1,
                         try_number=1, xcom_push=lambda *a, **k: None)
    pod.execute({"params": {"dry_run": True}, "ti": ti, "task_instance": ti, "run_id": "manual__test",
                     "dag": SimpleNamespace(dag_id="airflow_housekeeping")})
    sent = sent_container(kube)
    assert sent["image"] == IMAGE and sent["command"] == ["airflow"] and sent["args"][-1] == "--dry-run"
    assert sent["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "airflow-metadata", "key": "connection"}
