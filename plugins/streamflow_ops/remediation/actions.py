"""The imperative shell of the remediations: reads for the planners, and the approved actions.

PostgreSQL through the warehouse connection (PostgresHook), Kubernetes through KubernetesHook (the
probe's client), Flink through the REST helper (HttpHook). Every wait has a deadline.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

import psycopg

from streamflow_ops.http_probe import HttpJson, ProbeError, shorten
from streamflow_ops.kubernetes.probes import FLINK_DEPLOYMENT, KubeProbe
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.remediation.plans import BUSY_LIFECYCLE_STATES, RESTARTED_AT, operator_restart_seen

log = logging.getLogger(__name__)

# Kubernetes PATCH content types, as kubectl sends them: a merge patch for custom resources and the
# scale subresource, a strategic merge patch for a pod template (kubectl rollout restart).
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ActionError(RuntimeError):
    """The approved action did not complete; the message says how far it got, and `outcome` what was done
    (the audit row records it: a half-done action must say which half)."""

    def __init__(self, message: str, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome or {}


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 1.0) -> Any:
    """Poll until condition() is truthy and return it; ActionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ActionError(f"{what}: not done after {timeout_s:g} s")
        time.sleep(interval_s)


# --- PostgreSQL ------------------------------------------------------------------------------------

def read_sessions(conn) -> list[dict[str, Any]]:
    rows = dict_rows(conn, "remediation_sessions.sql")
    for row in rows:
        row["backend_start"] = row["backend_start"].isoformat() if row["backend_start"] else None
    return rows


def signal_permission(conn) -> dict[str, Any]:
    """username, may_signal (superuser or pg_signal_backend) and is_superuser of this connection's role."""
    return dict_rows(conn, "remediation_may_signal.sql")[0]


def terminate_sessions(conn, items: list[dict[str, Any]], idle_s: float) -> dict[str, Any]:
    """pg_terminate_backend for each approved session that is still the same backend and still idle.

    One statement per session (autocommit): PostgreSQL refuses some with an ERROR (a superuser's session
    to a pg_signal_backend member), and in one statement that error would hide the sessions already
    terminated before it. Returns the pids asked, terminated, failed (pid -> error) and left (ended,
    reused or busy since the plan)."""
    terminated, failed, left = [], {}, []
    for item in items:
        try:
            rows = dict_rows(conn, "remediation_terminate_sessions.sql",
                             {"pids": [item["pid"]], "backend_starts": [item["backend_start"]], "idle_s": idle_s})
        except psycopg.Error as exc:
            failed[item["pid"]] = shorten(str(exc).strip(), 300)
            continue
        (terminated if any(r["terminated"] for r in rows) else left).append(item["pid"])
    return {"asked_pids": [i["pid"] for i in items], "terminated_pids": terminated, "failed_pids": failed,
            "left_pids": left}


# --- Kubernetes ------------------------------------------------------------------------------------

class KubeActions(KubeProbe):
    """The probe's KubernetesHook client, plus the reads and PATCHes the remediations need."""

    def flink_deployment(self, namespace: str, name: str) -> dict | None:
        return self.custom_object(FLINK_DEPLOYMENT, namespace, name)

    def workload(self, namespace: str, kind: str, name: str) -> dict | None:
        """A Deployment or StatefulSet as the API returns it, or None if it does not exist."""
        plural = "deployments" if kind == "Deployment" else "statefulsets"
        read = self._apps("read_namespaced_deployment" if kind == "Deployment" else "read_namespaced_stateful_set")
        return self._call(f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}",
                          lambda hook: read(hook)(name, namespace, _preload_content=False,
                                                  _request_timeout=self._timeout), missing_ok=True)

    def patch_flink_deployment(self, namespace: str, name: str, patch: dict) -> dict:
        group, version, plural = FLINK_DEPLOYMENT
        return self._patch(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                           lambda hook: hook.custom_object_client.patch_namespaced_custom_object(
                               group, version, namespace, plural, name, patch, _preload_content=False,
                               _request_timeout=self._timeout, _content_type=MERGE_PATCH))

    def scale_deployment(self, namespace: str, name: str, patch: dict) -> dict:
        return self._patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
                           lambda hook: hook.apps_v1_client.patch_namespaced_deployment_scale(
                               name, namespace, patch, _preload_content=False, _request_timeout=self._timeout,
                               _content_type=MERGE_PATCH))

    def rollout_restart(self, namespace: str, kind: str, name: str, at: datetime) -> dict:
        """What `kubectl rollout restart` sends: the pod template's restartedAt annotation (RFC 3339)."""
        patch = {"spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT: at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}}}}
        plural = "deployments" if kind == "Deployment" else "statefulsets"
        method = self._apps("patch_namespaced_deployment" if kind == "Deployment" else "patch_namespaced_stateful_set")
        return self._patch(f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}",
                           lambda hook: method(hook)(name, namespace, patch, _preload_content=False,
                                                     _request_timeout=self._timeout,
                                                     _content_type=STRATEGIC_MERGE_PATCH))

    @staticmethod
    def _apps(method: str) -> Callable:
        return lambda hook: getattr(hook.apps_v1_client, method)

    def _patch(self, path: str, call: Callable) -> dict:
        try:
            return self._call(path, call)
        except ProbeError as exc:
            raise ActionError(f"PATCH {path} failed: {str(exc).removeprefix('GET ')}") from None


# --- Flink REST ------------------------------------------------------------------------------------

class FlinkControl:
    """Savepoint, cancel and submit through the JobManager REST API. No retries: none of these is idempotent."""

    def __init__(self, conn_id: str, connect_timeout_s: float, request_timeout_s: float) -> None:
        self.http = HttpJson(conn_id, connect_timeout_s, request_timeout_s)

    def jars(self) -> list[dict]:
        return list(self.http.get("/jars")[1].get("files", []))

    def jar_for(self, entry_class: str) -> dict | None:
        """The newest uploaded jar whose entry points include entry_class."""
        matching = [j for j in self.jars() if any(e.get("name") == entry_class for e in j.get("entry") or [])]
        return max(matching, key=lambda j: j.get("uploaded", 0)) if matching else None

    def savepoint(self, job_id: str, target_dir: str, timeout_s: float) -> str:
        """Trigger a savepoint and wait for it; its location."""
        body = {"cancel-job": False, **({"target-directory": target_dir} if target_dir else {})}
        trigger = self.http.request("POST", f"/jobs/{job_id}/savepoints", json_body=body)[1]["request-id"]

        def done() -> dict | None:
            answer = self.http.get(f"/jobs/{job_id}/savepoints/{trigger}")[1]
            return answer if answer["status"]["id"] == "COMPLETED" else None

        operation = wait_for(done, timeout_s, f"savepoint {trigger} of job {job_id}").get("operation") or {}
        if "location" not in operation:
            cause = operation.get("failure-cause", {}).get("stack-trace", "no location and no failure cause")
            raise ActionError(f"savepoint of job {job_id} failed: {shorten(cause, 400)}")
        return operation["location"]

    def job_state(self, job_id: str) -> str:
        return self.http.get(f"/jobs/{job_id}")[1]["state"]

    def cancel(self, job_id: str, timeout_s: float) -> None:
        self.http.request("PATCH", f"/jobs/{job_id}?mode=cancel")
        wait_for(lambda: self.job_state(job_id) == "CANCELED", timeout_s, f"cancelling job {job_id}")

    def submit(self, jar_id: str, entry_class: str, program_args: list[str], restore_path: str | None) -> str:
        body = {"entryClass": entry_class, "programArgsList": program_args, "allowNonRestoredState": False,
                **({"savepointPath": restore_path} if restore_path else {})}
        return self.http.request("POST", f"/jars/{jar_id}/run", json_body=body)[1]["jobid"]

    def restored(self, job_id: str) -> dict | None:
        """latest.restored of the job's checkpoints: what it started from (id, external_path, is_savepoint)."""
        return (self.http.get(f"/jobs/{job_id}/checkpoints")[1].get("latest") or {}).get("restored")


def operator_restart(kube: KubeActions, namespace: str, name: str, timeout_s: float) -> dict[str, Any]:
    """Bump the live FlinkDeployment's restartNonce by one and wait until the operator reports the restart
    done (operator_restart_seen); ActionError if it is busy, gone, or has not restarted the job in time."""
    ref = f"FlinkDeployment {namespace}/{name}"
    live = kube.flink_deployment(namespace, name)
    if live is None:
        raise ActionError(f"{ref} is gone: nothing restarted")
    state = (live.get("status") or {}).get("lifecycleState")
    if state in BUSY_LIFECYCLE_STATES:
        raise ActionError(f"{ref} is {state} now: nothing restarted (wait until the operator has finished)")
    nonce = int(live.get("spec", {}).get("restartNonce") or 0) + 1
    start_before = ((live.get("status") or {}).get("jobStatus") or {}).get("startTime")
    patch = {"spec": {"restartNonce": nonce}}
    generation = (kube.patch_flink_deployment(namespace, name, patch).get("metadata") or {}).get("generation")
    done = {"patched": patch, "job_start_before": start_before}
    seen: dict[str, Any] = {}

    def restarted() -> bool:
        seen["cr"] = kube.flink_deployment(namespace, name)
        return operator_restart_seen(seen["cr"], nonce, generation, start_before)

    try:
        wait_for(restarted, timeout_s, f"the operator to restart the job of {ref} (restartNonce {nonce})")
    except ActionError as exc:
        status = (seen.get("cr") or {}).get("status") or {}
        observed = {"lifecycleState": status.get("lifecycleState"), "observedGeneration":
                    status.get("observedGeneration"), "job": status.get("jobStatus", {}).get("state"),
                    "job_start": status.get("jobStatus", {}).get("startTime")}
        raise ActionError(f"{exc}: restartNonce is {nonce}, but the operator reports {observed}: "
                          f"not restarted (yet); look at the operator before asking again",
                          {**done, "observed": observed}) from None
    job = seen["cr"]["status"]["jobStatus"]
    return {**done, "job_start_after": job.get("startTime"), "operator_job_id": job.get("jobId")}


def restart_flink(item: dict[str, Any], flink: FlinkControl, kube: KubeActions | None, savepoint_timeout_s: float,
                  restart_timeout_s: float) -> dict[str, Any]:
    """The approved restart: savepoint first when planned, then the operator's nonce or cancel + resubmit."""
    outcome: dict[str, Any] = {"job_id": item["job_id"]}
    if item["mode"] == "standalone" and not item["savepoint"] and item["job_id"] \
            and flink.job_state(item["job_id"]) == "RUNNING":
        # Planned while it was down: Flink recovered it meanwhile. Cancelling it now without a savepoint and
        # restoring the planned checkpoint would throw away what it did since; that was not what was approved.
        raise ActionError(f"job {item['job_id']} is RUNNING again since the plan: not cancelled, nothing done "
                          f"(a restart from {item['restore_path']} would drop its progress; plan again)")
    if item["savepoint"]:
        outcome["savepoint"] = flink.savepoint(item["job_id"], item["savepoint_dir"], savepoint_timeout_s)
        log.info("savepoint of job %s: %s", item["job_id"], outcome["savepoint"])
    if item["mode"] == "operator":
        try:
            outcome.update(operator_restart(kube, item["namespace"], item["name"], restart_timeout_s))
        except ActionError as exc:  # the savepoint taken belongs in the audit row too
            raise ActionError(str(exc), {**outcome, **exc.outcome}) from None
        return outcome
    if item["job_id"] and flink.job_state(item["job_id"]) not in ("CANCELED", "FAILED", "FINISHED"):
        flink.cancel(item["job_id"], restart_timeout_s)
    restore = outcome.get("savepoint") or item["restore_path"]
    new_job = flink.submit(item["jar_id"], item["entry_class"], item["program_args"], restore)
    outcome.update(new_job_id=new_job, restored_from=restore)
    wait_for(lambda: flink.job_state(new_job) == "RUNNING", restart_timeout_s, f"job {new_job} to run")
    outcome["restored"] = wait_for(lambda: flink.restored(new_job), restart_timeout_s,
                                   f"job {new_job} to report what it restored")
    return outcome
