"""restore_drill: restore the newest backup of each method and compare it with what the backup recorded.

Only a restore proves a backup. The nightly verification covers file backups (pg_dump, gold_export); a
CloudNativePG Backup that "completed" was never restored by anyone. The drill restores:
- pg_dump and gold_export: the newest backup folder of each method into a scratch database, compared with
  its manifest (backup/'s own verification, reused as it is: row counts per table, views refreshable,
  object counts; gold_export rows and checksums exactly);
- cnpg: a scratch `Cluster` bootstrapped with `bootstrap.recovery` from the newest completed `Backup`
  (recoveryTarget.targetImmediate: the state the backup ends at, not later WAL), then gold compared exactly
  with the live warehouse (unless a gold refresh ran since the backup started), and bronze and silver: at
  least every live row written before the backup started. The scratch Cluster is always deleted.
One ops.maintenance_audit row (action `restore_drill`) per drill: the backup, what was compared, how long
the restore took, the outcome (`passed` or `failed`). `postgres.restore_drill_age` reads those rows.
"""
from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.backup.folder import read_manifest
from streamflow_ops.backup.gold_export import relation_digest
from streamflow_ops.backup.retention import PARTIAL, scan
from streamflow_ops.backup.runner import verify_folder
from streamflow_ops.config import KubernetesConfig, StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.kubernetes.probes import CNPG_BACKUP, CNPG_CLUSTER, KubeApiError, KubeProbe
from streamflow_ops.maintenance.gold_refresh import discover
from streamflow_ops.sqlfiles import dict_rows
from streamflow_ops.store import Actor, AuditRecord, audited, ensure_ops_schema, write_audit
from streamflow_ops.timeutil import parse_time

ACTION = "restore_drill"
PASSED, FAILED = "passed", "failed"
FILE_METHODS = ("pg_dump", "gold_export")
DRILL_LABEL = "streamflow-ops/restore-drill"
HEALTHY = "Cluster in healthy state"


class DrillError(AirflowFailException):
    """The restore does not hold what the backup recorded; the message names the relation. Never retried:
    comparing the same restore again cannot change it."""


# --- pure -------------------------------------------------------------------------------------

def newest_file_backup(root: Path, method: str) -> Path | None:
    """The newest backup folder of `method` whose dump finished (verified, unverified or pending)."""
    entries = [e for e in scan(root) if e.kind.split(":")[0] == method and e.status not in PARTIAL]
    return root / max(entries, key=lambda e: e.taken_at).name if entries else None


def newest_completed_backup(backups: list[dict[str, Any]], cluster: str) -> dict[str, Any] | None:
    """The cluster's newest Backup CR in phase completed (by stoppedAt), or None."""
    done = [b for b in backups if ((b.get("spec") or {}).get("cluster") or {}).get("name") == cluster
            and (b.get("status") or {}).get("phase") == "completed" and parse_time(b["status"].get("stoppedAt"))]
    return max(done, key=lambda b: parse_time(b["status"]["stoppedAt"])) if done else None


def scratch_cluster_name(cluster: str, dag_id: str, run_id: str) -> str:
    """DNS-1123 and the same for every try of one run: a retry finds (and the cleanup deletes) the same one."""
    digest = hashlib.sha256(f"{dag_id}\x1f{run_id}".encode()).hexdigest()[:10]
    return f"{re.sub(r'[^a-z0-9-]', '-', cluster.lower())[:30].strip('-')}-drill-{digest}"


def scratch_cluster_body(name: str, namespace: str, backup: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """A one-instance Cluster recovered from `backup` (CloudNativePG "Recovery from a Backup object"), sized and
    configured like the source cluster so that its WAL replays (same image and PostgreSQL parameters)."""
    spec_src = source.get("spec") or {}
    status = backup.get("status") or {}
    recovery: dict[str, Any] = {"recoveryTarget": {"targetImmediate": True}}
    if (status.get("method") or (backup.get("spec") or {}).get("method")) == "volumeSnapshot":
        elements = {e.get("type"): e["name"] for e in (status.get("snapshotBackupStatus") or {}).get("elements", [])}
        snapshots = {"storage": {"name": elements.get("PG_DATA"), "kind": "VolumeSnapshot",
                                 "apiGroup": "snapshot.storage.k8s.io"}}
        if "PG_WAL" in elements:
            snapshots["walStorage"] = {"name": elements["PG_WAL"], "kind": "VolumeSnapshot",
                                       "apiGroup": "snapshot.storage.k8s.io"}
        recovery["volumeSnapshots"] = snapshots
    else:
        recovery["backup"] = {"name": backup["metadata"]["name"]}
    spec: dict[str, Any] = {"instances": 1, "storage": spec_src.get("storage") or {"size": "10Gi"},
                            "bootstrap": {"recovery": recovery}}
    for key in ("imageName", "postgresql", "walStorage"):
        if spec_src.get(key):
            spec[key] = spec_src[key]
    return {"apiVersion": "/".join(CNPG_CLUSTER[:2]), "kind": "Cluster",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "streamflow-ops", DRILL_LABEL: "true",
                                    "streamflow-ops/source-backup": backup["metadata"]["name"][:63]}},
            "spec": spec}


def cluster_state(cluster: dict[str, Any]) -> tuple[str, str]:
    """("ready" | "waiting", message) for one observation of the scratch Cluster."""
    status = cluster.get("status") or {}
    phase, ready = status.get("phase") or "", status.get("readyInstances") or 0
    wanted = (cluster.get("spec") or {}).get("instances") or 1
    message = f"Cluster {cluster['metadata']['name']}: {phase or 'no phase yet'}, {ready}/{wanted} instances ready"
    return ("ready" if phase == HEALTHY and ready >= wanted else "waiting"), message


def compare_cluster(gold_live: dict[str, tuple[int, str]], gold_restored: dict[str, tuple[int, str] | None],
                    rows_live: dict[str, int], rows_restored: dict[str, int], gold_refreshed_since: str | None,
                    ) -> tuple[list[str], list[str]]:
    """(problems, notes): gold views exactly (rows and md5), unless a refresh since the backup explains a
    difference; bronze and silver: the restore holds at least the live rows written before the backup."""
    problems, notes = [], []
    for view, live in sorted(gold_live.items()):
        got = gold_restored.get(view)
        if got is None:
            problems.append(f"materialized view {view} is missing in the restore")
        elif got != live:
            what = f"materialized view {view}: {got[0]} rows (md5 {got[1][:12]}) restored, {live[0]} live " \
                   f"(md5 {live[1][:12]})"
            (notes if gold_refreshed_since else problems).append(
                what + (f"; gold was refreshed since the backup ({gold_refreshed_since})" if gold_refreshed_since
                        else ""))
    for table, live in sorted(rows_live.items()):
        got = rows_restored.get(table, 0)
        if got < live:
            problems.append(f"table {table}: {got} rows written before the backup started are in the restore, "
                            f"{live} in the live warehouse")
    return problems, notes


# --- I/O --------------------------------------------------------------------------------------

def drill_file_backup(config: StreamflowOpsConfig, method: str, actor: Actor, dry_run: bool) -> dict[str, Any] | None:
    """Restore the newest `method` folder into a scratch database and compare with its manifest (None: no
    backup of that method to drill). A mismatch raises the verification's error, naming the relation."""
    folder = newest_file_backup(Path(config.backup.folder), method)
    if folder is None:
        return None
    manifest = read_manifest(folder)
    with warehouse_connection(config.warehouse) as conn:
        ensure_ops_schema(conn, config.warehouse.ops_schema)
        with audited(conn, actor, ACTION, str(folder), dry_run) as record:
            return _drill_folder(config, method, folder, manifest, actor, dry_run, record)


def _drill_folder(config: StreamflowOpsConfig, method: str, folder: Path, manifest: dict[str, Any], actor: Actor,
                  dry_run: bool, record) -> dict[str, Any]:
    """What was restored and compared, into the open audit row."""
    record.details.update(method=method, backup=str(folder), backup_started_at=manifest.get("started_at"),
                          backup_status=manifest.get("status"))
    if dry_run:
        record.details["would"] = f"restore {folder} into a scratch database and compare it with its manifest"
        return record.details
    started = time.monotonic()
    proof = verify_folder(config, folder, actor)
    record.outcome = PASSED
    record.details.update(restore_seconds=round(time.monotonic() - started, 3), compared=proof,
                          proved=f"{method} {folder.name} restores and matches its manifest")
    return record.details


def plan_cluster_drill(config: StreamflowOpsConfig, actor: Actor) -> dict[str, Any] | None:
    """The newest completed Backup of the cluster and the scratch Cluster to recover it into (None: none)."""
    probe = KubeProbe(config.kubernetes)
    namespace, cluster = config.backup.cnpg_namespace, config.backup.cnpg_cluster
    backup = newest_completed_backup(probe.list_custom_objects(CNPG_BACKUP, namespace), cluster)
    if backup is None:
        return None
    source = probe.custom_object(CNPG_CLUSTER, namespace, cluster, missing_ok=False)
    name = scratch_cluster_name(cluster, actor.dag_id, actor.run_id)
    return {"backup": backup["metadata"]["name"], "backup_started_at": backup["status"].get("startedAt"),
            "backup_stopped_at": backup["status"].get("stoppedAt"), "namespace": namespace, "cluster": name,
            "body": scratch_cluster_body(name, namespace, backup, source)}


def create_scratch_cluster(config: StreamflowOpsConfig, plan: dict[str, Any]) -> None:
    """Create the scratch Cluster; a retry that finds its own (409) goes on with it."""
    try:
        KubeProbe(config.kubernetes).create_custom_object(CNPG_CLUSTER, plan["namespace"], plan["body"])
    except KubeApiError as exc:
        if exc.status != 409:
            raise


def fetch_scratch_cluster(conn_id: str, namespace: str, name: str, request_timeout_s: float) -> dict[str, Any]:
    """The scratch Cluster CR (blocking: the trigger calls it through asyncio.to_thread)."""
    kube = KubernetesConfig(conn_id=conn_id, request_timeout_s=request_timeout_s)
    return KubeProbe(kube).custom_object(CNPG_CLUSTER, namespace, name, missing_ok=False)


def delete_scratch_cluster(config: StreamflowOpsConfig, namespace: str, name: str) -> bool:
    """Delete the scratch Cluster; False if it was not there (never created, or already gone)."""
    return KubeProbe(config.kubernetes).delete_custom_object(CNPG_CLUSTER, namespace, name) is not None


def _gold(conn, schema: str) -> dict[str, tuple[int, str]]:
    return {f"{schema}.{view.name}": relation_digest(conn, schema, view.name) for view in discover(conn, schema)}


def _rows_before(conn, config: StreamflowOpsConfig, before: datetime) -> dict[str, int]:
    w = config.warehouse
    tables = {f"{w.bronze_schema}.{w.bronze_table}": ((w.bronze_schema, w.bronze_table), "ingested_at"),
              f"{w.silver_schema}.{w.silver_table}": ((w.silver_schema, w.silver_table), w.enriched_at_column)}
    return {name: dict_rows(conn, "drill_rows_before.sql", {"before": before}, table=table, column=column)[0]["rows"]
            for name, (table, column) in tables.items()}


def compare_scratch_cluster(config: StreamflowOpsConfig, plan: dict[str, Any]) -> dict[str, Any]:
    """Connect to the recovered cluster and to the live warehouse; DrillError listing every difference."""
    settings, w = config.recovery, config.warehouse
    before = parse_time(plan["backup_started_at"])
    host = settings.drill_host.format(cluster=plan["cluster"], namespace=plan["namespace"])
    with warehouse_connection(w, statement_timeout_s=settings.statement_timeout_s) as live:
        ensure_ops_schema(live, w.ops_schema)
        gold_live, rows_live = _gold(live, w.gold_schema), _rows_before(live, config, before)
        refreshed = dict_rows(live, "drill_gold_refreshed_since.sql", {"since": before}, ops=w.ops_schema)
    with warehouse_connection(w, host=host, port=settings.drill_port, database=settings.drill_database or None,
                              statement_timeout_s=settings.statement_timeout_s) as restored:
        gold_restored = {view: relation_digest(restored, *view.split(".", 1)) if view in
                         {f"{w.gold_schema}.{v.name}" for v in discover(restored, w.gold_schema)} else None
                         for view in gold_live}
        rows_restored = _rows_before(restored, config, before)
    since = refreshed[0]["finished_at"].isoformat() if refreshed else None
    problems, notes = compare_cluster(gold_live, gold_restored, rows_live, rows_restored, since)
    compared = {"gold_views": {v: {"rows": d[0], "md5": d[1]} for v, d in gold_live.items()},
                "rows_before_backup": {t: {"live": n, "restored": rows_restored.get(t)} for t, n in rows_live.items()},
                "notes": notes}
    if problems:
        raise DrillError(f"the recovery of Backup {plan['backup']} into Cluster {plan['cluster']} does not hold what "
                         "the backup recorded: " + "; ".join(problems))
    return compared


def record_cluster_drill(config: StreamflowOpsConfig, actor: Actor, plan: dict[str, Any], outcome: str,
                         details: dict[str, Any], started_at: datetime) -> int:
    """The CNPG drill's one audit row, written by the cleanup step that runs whatever happened."""
    with warehouse_connection(config.warehouse) as conn:
        ensure_ops_schema(conn, config.warehouse.ops_schema)
        return write_audit(conn, AuditRecord(
            dag_id=actor.dag_id, run_id=actor.run_id, task_id=actor.task_id, action=ACTION,
            target=f"cnpg://{plan['namespace']}/{plan['backup']}", dry_run=False, outcome=outcome,
            started_at=started_at, finished_at=datetime.now(timezone.utc),
            details={"method": "cnpg", "backup": plan["backup"], "backup_started_at": plan["backup_started_at"],
                     "scratch_cluster": plan["cluster"], **details}), config.warehouse.ops_schema)
