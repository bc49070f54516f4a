"""Preconditions and plans of the remediations: pure functions from what the probes read to a Plan.

A plan is exactly what the act step will do (its `items`) and the same in words (its `steps`), shown in
the task log and in the approval form. An unsafe situation raises Refused with the reason instead: the
run stops before anyone is asked to approve anything.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from streamflow_ops.config import WorkloadRef

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
IDLE_STATES = ("idle", "idle in transaction", "idle in transaction (aborted)")
# The operator is busy with the deployment: a second change now would race it.
BUSY_LIFECYCLE_STATES = ("UPGRADING", "ROLLING_BACK", "SUSPENDED", "DEPLOYED_NOT_READY")


class Refused(Exception):
    """A precondition failed: acting now would be unsafe or pointless; the message says why."""


@dataclass(frozen=True)
class Plan:
    action: str  # the audit row's action
    target: str  # the audit row's target
    steps: list[str]  # what will be done, in order, in words
    items: list[dict[str, Any]] = field(default_factory=list)  # what the act step works on
    notes: list[str] = field(default_factory=list)  # what is left alone, and why

    @property
    def empty(self) -> bool:
        return not self.items

    def text(self) -> str:
        """Markdown for the log and the approval form."""
        lines = [f"**{self.action}** on `{self.target}`", ""]
        lines += [f"{n}. {step}" for n, step in enumerate(self.steps, 1)] or ["Nothing to do."]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**{k: v for k, v in data.items() if k != "text"})


# --- remediate_postgres_connections ---------------------------------------------------------------

def plan_session_terminations(sessions: Sequence[dict[str, Any]], idle_s: float, application: str | None,
                              include_superuser: bool, own_prefix: str, database: str,
                              may_signal: bool, user: str, is_superuser: bool) -> Plan:
    """Idle / idle-in-transaction client sessions of `database` idle for at least idle_s, oldest first.

    Never a replication connection (walsender or a replication role), never this package's own
    sessions (application_name starting with own_prefix, or the planning session itself), never a
    superuser's unless include_superuser. `sessions` are pg_stat_activity rows (remediation_sessions.sql).
    include_superuser needs a superuser connection: PostgreSQL refuses a superuser's session to anyone
    else, so planning it would promise what the action cannot do.
    """
    if not may_signal:
        raise Refused(f"the connection's user {user!r} may not terminate sessions: it needs superuser or "
                      f"membership of pg_signal_backend")
    if include_superuser and not is_superuser:
        raise Refused(f"include_superuser: the connection's user {user!r} is not a superuser, and PostgreSQL lets "
                      f"only a superuser terminate a superuser's session; run without include_superuser")
    chosen, spared = [], {"replication": 0, "superuser": 0, "own": 0}
    for s in sessions:
        if s["state"] not in IDLE_STATES or s["idle_s"] is None or s["idle_s"] < idle_s:
            continue
        if application is not None and s["application_name"] != application:
            continue
        if s["backend_type"] == "walsender" or s["is_replication"]:
            spared["replication"] += 1
        elif s["is_own"] or (s["application_name"] or "").startswith(own_prefix):
            spared["own"] += 1
        elif s["is_superuser"] and not include_superuser:
            spared["superuser"] += 1
        elif s["backend_type"] == "client backend":
            chosen.append(s)
    chosen.sort(key=lambda s: (-s["idle_s"], s["pid"]))
    minutes = f"{idle_s / 60:g} min"
    who = f" of application {application!r}" if application is not None else ""
    steps = [f"pg_terminate_backend({s['pid']}): user {s['usename']}, application "
             f"{s['application_name'] or '(none)'!r}, {s['state']} for {_age(s['idle_s'])}" for s in chosen]
    notes = [f"client sessions{who} in database {database} idle or idle in transaction for at least {minutes}; "
             f"each is terminated only if it is still the same backend and still idle when the action runs"]
    notes += [f"left alone: {n} {kind} session{'s' if n != 1 else ''}"
              + (" (include_superuser is off)" if kind == "superuser" else "")
              for kind, n in spared.items() if n]
    items = [{"pid": s["pid"], "backend_start": s["backend_start"], "usename": s["usename"],
              "application_name": s["application_name"], "state": s["state"], "idle_s": round(s["idle_s"], 1)}
             for s in chosen]
    return Plan("terminate_sessions", f"postgres:{database}", steps, items, notes)


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


# --- remediate_flink_taskmanagers ------------------------------------------------------------------

def plan_taskmanager_scale(replicas: int, namespace: str, flink_deployment: dict | None, cr_name: str,
                           deployment: dict | None, deployment_name: str) -> Plan:
    """Set the TaskManager count on the FlinkDeployment if there is one, else on the taskmanager Deployment."""
    if not 1 <= replicas <= 10:
        raise Refused(f"replicas must be 1..10, got {replicas}")
    if flink_deployment is not None:
        _refuse_busy(flink_deployment, namespace, cr_name)
        current = (flink_deployment.get("spec", {}).get("taskManager") or {}).get("replicas")
        target = f"{namespace}/FlinkDeployment/{cr_name}"
        item = {"kind": "FlinkDeployment", "namespace": namespace, "name": cr_name,
                "patch": {"spec": {"taskManager": {"replicas": replicas}}}}
        what = f"set spec.taskManager.replicas of FlinkDeployment {cr_name} from {current} to {replicas}"
    elif deployment is not None:
        current = deployment.get("spec", {}).get("replicas")
        target = f"{namespace}/Deployment/{deployment_name}"
        item = {"kind": "Deployment", "namespace": namespace, "name": deployment_name,
                "patch": {"spec": {"replicas": replicas}}}
        what = f"scale Deployment {deployment_name} from {current} to {replicas} replicas"
    else:
        raise Refused(f"neither FlinkDeployment {namespace}/{cr_name} nor Deployment {namespace}/{deployment_name} "
                      f"exists: nothing to scale")
    if current == replicas:
        return Plan("scale_taskmanagers", target, [], [], [f"already {replicas} TaskManagers: nothing to do"])
    settle = " (not waited for: new TaskManagers take a minute to register, so verify may still show the old count)"
    return Plan("scale_taskmanagers", target, [what + settle], [item])


def _refuse_busy(flink_deployment: dict, namespace: str, name: str) -> None:
    state = (flink_deployment.get("status") or {}).get("lifecycleState")
    if state in BUSY_LIFECYCLE_STATES:
        raise Refused(f"FlinkDeployment {namespace}/{name} is {state}: wait until the operator has finished")


# --- remediate_flink_restart -----------------------------------------------------------------------

def plan_flink_restart(job: dict | None, job_name: str, latest_checkpoint: dict | None, savepoint_dir: str,
                       flink_deployment: dict | None, namespace: str, cr_name: str,
                       jar: dict | None, entry_class: str, program_args: Sequence[str]) -> Plan:
    """Savepoint when the job runs, then restart: the operator's restartNonce, or cancel and resubmit.

    `job` is the /jobs/overview entry (newest of that name), `latest_checkpoint` its checkpoints'
    latest.completed, `jar` the /jars entry to resubmit on a standalone cluster.
    """
    running = job is not None and job["state"] == "RUNNING"
    steps, item = [], {"job_id": job["jid"] if job else None, "savepoint": running, "savepoint_dir": savepoint_dir}
    where = savepoint_dir or "Flink's state.savepoints.dir"
    if running:
        steps.append(f"trigger a savepoint of {job_name} (job {job['jid']}) into {where} and wait for it")
    if flink_deployment is not None:
        _refuse_busy(flink_deployment, namespace, cr_name)
        spec = flink_deployment.get("spec", {})
        mode = (spec.get("job") or {}).get("upgradeMode", "stateless")
        if mode == "stateless":
            raise Refused(f"FlinkDeployment {namespace}/{cr_name} has upgradeMode stateless: a restart would drop "
                          f"the job's state; set upgradeMode savepoint or last-state first")
        # The nonce is read again when acting (the approval may come an hour later, after someone else's
        # bump): the plan promises "one more than it is then", never a number.
        item.update(mode="operator", namespace=namespace, name=cr_name)
        steps.append(f"bump spec.restartNonce of FlinkDeployment {cr_name} by one (now "
                     f"{int(spec.get('restartNonce') or 0)}; read again when acting): the operator restarts the "
                     f"job (upgradeMode {mode}); wait until it reports that nonce reconciled and the job RUNNING "
                     f"with a new start time")
        return Plan("restart_flink_job", f"{namespace}/FlinkDeployment/{cr_name}", steps, [item])
    if not running and not (latest_checkpoint and latest_checkpoint.get("external_path")):
        raise Refused(f"{job_name} is not running ({job['state'] if job else 'absent'}) and has no completed "
                      f"checkpoint to restore from: a restart would start from empty state")
    if not entry_class:
        raise Refused("a standalone cluster needs remediation.flink_entry_class to resubmit the job")
    if jar is None:
        raise Refused(f"no uploaded jar on the JobManager has the entry class {entry_class}")
    restore = "the savepoint of step 1" if running else f"checkpoint {latest_checkpoint['id']} " \
                                                         f"({latest_checkpoint['external_path']})"
    item.update(mode="standalone", jar_id=jar["id"], entry_class=entry_class, program_args=list(program_args),
                restore_path=None if running else latest_checkpoint["external_path"])
    if job is not None and job["state"] not in ("CANCELED", "FAILED", "FINISHED"):
        steps.append(f"cancel job {job['jid']} and wait until it is CANCELED")
    steps.append(f"resubmit jar {jar['id']} ({entry_class} {' '.join(program_args)}) from {restore}, "
                 f"and wait until it is RUNNING")
    return Plan("restart_flink_job", f"flink:{job_name}", steps, [item])


def operator_restart_seen(flink_deployment: dict | None, nonce: int, generation: int | None,
                          start_before: str | None) -> bool:
    """Whether the operator has done the restart asked for by restartNonce `nonce`: it observed the patched
    generation, reconciled a spec with that nonce (DEPLOYED), and the job is RUNNING with a start time other
    than before the patch. Only then is the restart done; a patched spec alone is a request."""
    if flink_deployment is None:
        return False
    status = flink_deployment.get("status") or {}
    reconciliation, job = status.get("reconciliationStatus") or {}, status.get("jobStatus") or {}
    try:
        reconciled = json.loads(reconciliation.get("lastReconciledSpec") or "{}").get("spec") or {}
    except ValueError:
        return False
    return (generation is None or int(status.get("observedGeneration") or 0) >= generation) \
        and reconciliation.get("state") == "DEPLOYED" and reconciled.get("restartNonce") == nonce \
        and job.get("state") == "RUNNING" and job.get("startTime") not in (None, start_before)


# --- remediate_restart_workload --------------------------------------------------------------------

def refuse_unlisted_workload(namespace: str, kind: str, name: str, allowed: Sequence[WorkloadRef]) -> None:
    """Refused unless a streamflow-* workload of remediation.restartable_workloads (at plan and again at act)."""
    ref = f"{namespace}/{kind}/{name}"
    if not namespace.startswith("streamflow-"):
        raise Refused(f"{ref}: only workloads in streamflow-* namespaces may be restarted")
    if not any((w.namespace, w.kind, w.name) == (namespace, kind, name) for w in allowed):
        listed = ", ".join(f"{w.namespace}/{w.kind}/{w.name}" for w in allowed) or "none"
        raise Refused(f"{ref} is not in remediation.restartable_workloads (allowed: {listed})")


def plan_workload_restart(namespace: str, kind: str, name: str, allowed: Sequence[WorkloadRef],
                          workload: dict | None) -> Plan:
    """A rollout restart (what `kubectl rollout restart` does) of one allow-listed workload."""
    ref = f"{namespace}/{kind}/{name}"
    refuse_unlisted_workload(namespace, kind, name, allowed)
    if workload is None:
        raise Refused(f"{ref} does not exist")
    meta, spec, status = workload.get("metadata", {}), workload.get("spec", {}), workload.get("status", {})
    if status.get("observedGeneration", 0) < meta.get("generation", 0) or \
            status.get("updatedReplicas", 0) < spec.get("replicas", 1):
        raise Refused(f"{ref} is already rolling out ({status.get('updatedReplicas', 0)} of "
                      f"{spec.get('replicas', 1)} updated): wait for it to finish")
    return Plan("rollout_restart", ref,
                [f"set the pod template annotation {RESTARTED_AT} of {kind} {name} to the time of the action: "
                 f"its {spec.get('replicas', 1)} pods are replaced one by one"],
                [{"namespace": namespace, "kind": kind, "name": name}])
