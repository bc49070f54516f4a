"""CloudNativePG backups: the Backup custom resource (what `kubectl cnpg backup` creates) and its checks.

Field names follow postgresql.cnpg.io/v1: Backup.status.{phase,error,beginWal,endWal,beginLSN,endLSN,
startedAt,stoppedAt,backupId,destinationPath,method}; Cluster.status.{lastSuccessfulBackup,
lastSuccessfulBackupByMethod}. Phases: pending, started, running, finalizing, completed, failed,
walArchivingFailing.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from streamflow_ops.config import KubernetesConfig, StreamflowOpsConfig
from streamflow_ops.kubernetes.probes import CNPG_BACKUP, CNPG_CLUSTER, KubeApiError, KubeProbe
from streamflow_ops.timeutil import parse_time

DONE = "completed"
# Terminal without success: CNPG stops on these, waiting longer cannot help.
FAILED = ("failed", "walArchivingFailing")
IN_PROGRESS = ("", "pending", "started", "running", "finalizing")


def backup_name(cluster: str, dag_id: str, run_id: str, task_id: str) -> str:
    """DNS-1123 name, the same for every try of one task in one run: a retry adopts its own CR (409)
    instead of starting a second backup. Nothing time-dependent goes into it."""
    digest = hashlib.sha256("\x1f".join((dag_id, run_id, task_id)).encode()).hexdigest()[:12]
    name = re.sub(r"[^a-z0-9-]", "-", cluster.lower())[:63 - 17].strip("-")
    return f"{name}-sfo-{digest}"


def backup_body(name: str, config: StreamflowOpsConfig, labels: dict[str, str] | None = None) -> dict[str, Any]:
    cfg = config.backup
    spec: dict[str, Any] = {"cluster": {"name": cfg.cnpg_cluster}, "method": cfg.cnpg_backup_method}
    if cfg.cnpg_backup_method == "plugin":
        spec["pluginConfiguration"] = {"name": cfg.cnpg_plugin_name}
    return {
        "apiVersion": "/".join(CNPG_BACKUP[:2]),
        "kind": "Backup",
        "metadata": {"name": name, "namespace": cfg.cnpg_namespace,
                     "labels": {"app.kubernetes.io/managed-by": "streamflow-ops", **(labels or {})}},
        "spec": spec,
    }


def backup_outcome(backup: dict[str, Any]) -> tuple[str, str]:
    """("completed" | "failed" | "waiting", message) for one observation of a Backup CR. Pure."""
    status = backup.get("status") or {}
    phase = status.get("phase") or ""
    name = f"{backup['metadata'].get('namespace')}/{backup['metadata']['name']}"
    if phase == DONE:
        return "completed", f"Backup {name} completed (backupId {status.get('backupId', '-')})"
    if phase in FAILED:
        error = status.get("error") or status.get("commandError") or "no error given in status.error"
        return "failed", f"CNPG Backup {name} is {phase}: {error}"
    return "waiting", f"Backup {name} is {phase or 'not yet picked up by the operator'}"


def verify_backup(backup: dict[str, Any], cluster: dict[str, Any]) -> list[str]:
    """What is wrong with a finished backup as evidence of a good base backup; [] when it holds. Pure.

    Checked: phase completed, WAL range present, and the Cluster records a successful backup at least as
    new as this one (by its method, else the overall field). Not checked: that the object store or the
    snapshots still hold the data, or that it restores: only a recovery cluster can prove that.
    """
    status = backup.get("status") or {}
    problems = []
    if status.get("phase") != DONE:
        problems.append(f"phase is {status.get('phase')!r}, not 'completed'")
    for field in ("beginWal", "endWal"):
        if not status.get(field):
            problems.append(f"status.{field} is empty: the backup has no WAL range to recover from")
    started = parse_time(status.get("startedAt"))
    cluster_status = cluster.get("status") or {}
    method = status.get("method") or (backup.get("spec") or {}).get("method") or "barmanObjectStore"
    recorded = parse_time((cluster_status.get("lastSuccessfulBackupByMethod") or {}).get(method)
                     or cluster_status.get("lastSuccessfulBackup"))
    if recorded is None:
        problems.append(f"Cluster {cluster['metadata']['name']} has no status.lastSuccessfulBackup")
    elif started is not None and recorded < started:
        problems.append(f"Cluster {cluster['metadata']['name']} records its last successful backup at "
                        f"{recorded.isoformat()}, before this backup started ({started.isoformat()})")
    return problems


def backup_details(backup: dict[str, Any]) -> dict[str, Any]:
    """The audit row's details for a CNPG backup."""
    status = backup.get("status") or {}
    started, stopped = parse_time(status.get("startedAt")), parse_time(status.get("stoppedAt"))
    meta = backup["metadata"]
    return {
        "method": "cnpg",
        "cnpg_method": status.get("method") or backup.get("spec", {}).get("method"),
        "location": status.get("destinationPath") or f"cnpg://{meta.get('namespace')}/{meta['name']}",
        "backup": f"{meta.get('namespace')}/{meta['name']}",
        "backup_id": status.get("backupId"),
        "size_bytes": None,  # CNPG does not report a base backup's size
        "duration_s": (stopped - started).total_seconds() if started and stopped else None,
        **{key: status.get(key) for key in ("beginWal", "endWal", "beginLSN", "endLSN", "startedAt", "stoppedAt")},
    }


# --- I/O: through the package's one Kubernetes client (kubernetes.probes.KubeProbe) ----------------

def create_backup(config: StreamflowOpsConfig, body: dict[str, Any]) -> dict[str, Any]:
    """Create the CR; if a retry finds it already there (409 AlreadyExists), return the existing one."""
    probe = KubeProbe(config.kubernetes)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        return probe.create_custom_object(CNPG_BACKUP, namespace, body)
    except KubeApiError as exc:
        if exc.status != 409:
            raise
    return probe.custom_object(CNPG_BACKUP, namespace, name, missing_ok=False)


def fetch_backup(conn_id: str, namespace: str, name: str, request_timeout_s: float) -> dict[str, Any]:
    """One Backup CR; KubeApiError with status 404 if it is gone (blocking: triggers call it through
    asyncio.to_thread)."""
    kube = KubernetesConfig(conn_id=conn_id, request_timeout_s=request_timeout_s)
    return KubeProbe(kube).custom_object(CNPG_BACKUP, namespace, name, missing_ok=False)


def fetch_cluster(config: StreamflowOpsConfig) -> dict[str, Any]:
    return KubeProbe(config.kubernetes).custom_object(CNPG_CLUSTER, config.backup.cnpg_namespace,
                                                      config.backup.cnpg_cluster, missing_ok=False)


def running_backups(config: StreamflowOpsConfig) -> list[str]:
    """Names of the cluster's Backup CRs that have not finished."""
    items = KubeProbe(config.kubernetes).list_custom_objects(CNPG_BACKUP, config.backup.cnpg_namespace)
    return [item["metadata"]["name"] for item in items
            if (item.get("spec") or {}).get("cluster", {}).get("name") == config.backup.cnpg_cluster
            and ((item.get("status") or {}).get("phase") or "") in IN_PROGRESS]
