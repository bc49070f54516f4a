"""The package on a real distributed Airflow: CeleryExecutor, Redis, workers w1 and w2 (one session cluster).

Every state comes from the REST API (/api/v2); expected values from SQL or the files the test planted.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tests.distributed.conftest import (run_state, task_instance, task_instances, tries, trigger,
                                        wait_for_run)
from tests.kafka.broker import commit, create_topic, produce, unique
from tests.polling import wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.kafka, pytest.mark.flink]

WORKER_HOSTS = {"w1", "w2"}
DESTRUCTIVE = ("bronze_retention", "vacuum", "gold_refresh", "backup.dump")
RETENTION_DAYS = 7  # the config default the cluster runs with


def xcom(api, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
    response = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                       params={"deserialize": True})
    response.raise_for_status()
    return response.json()["value"]


def ran(tis: dict[str, dict]) -> dict[str, dict]:
    return {t: ti for t, ti in tis.items() if ti["state"] == "success"}


def bronze_rows_after_retention(dsn: str, reference: datetime) -> tuple[int, int]:
    """(rows now, rows that must remain): promoted rows strictly older than reference - 7 days go."""
    with psycopg.connect(dsn) as conn:
        now, doomed = conn.execute(
            """select count(*),
                      count(*) filter (where b.transaction_time < extract(epoch from %s::timestamptz)
                                       and exists (select 1 from silver.transactions_enriched s
                                                   where s.transaction_id = b.transaction_id))
               from bronze.transactions b""", (reference - timedelta(days=RETENTION_DAYS),)).fetchone()
    return now, now - doomed


def bronze_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select count(*) from bronze.transactions").fetchone()[0]


def test_sweep_families_run_in_parallel_on_both_workers(celery_cluster, api):
    run_id = trigger(api, "platform_health_sweep", {"dry_run": True})
    assert wait_for_run(api, "platform_health_sweep", run_id) == "success"
    tis = task_instances(api, "platform_health_sweep", run_id)
    families = {t: ti for t, ti in tis.items() if t.startswith("check_")}
    assert len(families) == 7 and all(ti["state"] == "success" for ti in families.values())
    assert {ti["queue"] for ti in families.values()} == {"default"}
    spread = {t: ti["hostname"] for t, ti in tis.items()}
    print(f"sweep task -> worker: {spread}")
    assert {ti["hostname"] for ti in families.values()} == WORKER_HOSTS, spread


def _plant_logs(folder: Path, age_days: float) -> Path:
    path = folder / "dag_id=old_dag" / f"run_id=planted_{age_days}" / "task_id=t" / "attempt=1.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("planted\n")
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


def test_sensors_defer_free_the_worker_and_complete_in_the_triggerer(celery_cluster, api, bootstrap):
    topic = create_topic(bootstrap, partitions=1, prefix="dist")
    group = unique("dist-group")
    produce(bootstrap, topic, {0: 5})
    commit(bootstrap, group, topic, {0: 0})  # 5 behind
    dag_id = "distributed_sensor_handoff"
    run_id = trigger(api, dag_id, {"group": group, "topic": topic})

    seen: dict[str, list[str]] = {"kafka_lag": [], "flink_checkpoint": []}

    def kafka_deferred_flink_done() -> bool:
        tis = task_instances(api, dag_id, run_id)
        for task_id, states in seen.items():
            if not states or states[-1] != tis[task_id]["state"]:
                states.append(tis[task_id]["state"])
        return tis["kafka_lag"]["state"] == "deferred" and tis["flink_checkpoint"]["state"] in ("success", "failed")

    wait_for("kafka_lag deferred and flink_checkpoint finished", kafka_deferred_flink_done, 120, every=0.2)
    assert seen["flink_checkpoint"][-1] == "success", seen
    kafka_ti = task_instance(api, dag_id, run_id, "kafka_lag")
    assert kafka_ti["state"] == "deferred" and kafka_ti["hostname"] in WORKER_HOSTS
    assert kafka_ti["trigger"] and kafka_ti["trigger"]["classpath"].endswith("KafkaConsumerLagTrigger")
    # While it waits, no worker runs anything: the wait costs no slot. (flink_checkpoint's Celery task
    # may still be winding down for a moment after its task instance turned success.)
    def idle_workers():
        active = celery_cluster.live_workers()
        return set(active) == {f"{w}@streamflow-sandbox" for w in celery_cluster.workers} and \
            all(tasks == [] for tasks in active.values())
    wait_for("both workers alive with no active task", idle_workers, 15, every=0.3)
    assert task_instance(api, dag_id, run_id, "kafka_lag")["state"] == "deferred"

    commit(bootstrap, group, topic, {0: 5})  # drained: the trigger fires, a worker finishes the task
    assert wait_for_run(api, dag_id, run_id, timeout=120) == "success"
    assert xcom(api, dag_id, run_id, "kafka_lag") == 0
    assert xcom(api, dag_id, run_id, "flink_checkpoint")["checkpoint_id"] > 0
    print(f"sensor states seen: {seen}")
    triggered = list((celery_cluster.home / "logs" / "components").glob(
        f"dag_id={dag_id}/run_id={run_id}/task_id=flink_checkpoint/*trigger*"))
    assert "deferred" in seen["flink_checkpoint"] or triggered, (seen, "no trigger log of flink_checkpoint")


def _pin(celery_cluster, queue: str, worker: str):
    """Only `worker` consumes `queue` (Celery remote control); returns the undo."""
    app = celery_cluster.celery_app()
    others = [f"{w}@streamflow-sandbox" for w in celery_cluster.workers if w != worker]
    app.control.cancel_consumer(queue, destination=others, reply=True, timeout=5)

    def undo():
        app.control.add_consumer(queue, destination=others, reply=True, timeout=5)
    return undo


def backup_split_over_workers(celery_cluster, api) -> tuple[str, str]:
    """postgres_backup with its default-queue tasks (validate) on w1 and its maintenance-queue task (dump)
    on w2; the workers consume all their queues again afterwards. The run id and its final state."""
    undo = [_pin(celery_cluster, "default", "w1"), _pin(celery_cluster, "maintenance", "w2")]
    try:
        run_id = trigger(api, "postgres_backup")
        return run_id, wait_for_run(api, "postgres_backup", run_id, timeout=180)
    finally:
        for step in undo:
            step()


def test_backup_validated_on_one_worker_is_dumped_and_verified_on_the_other(celery_cluster, api):
    run_id, state = backup_split_over_workers(celery_cluster, api)
    tis = task_instances(api, "postgres_backup", run_id)
    assert state == "success", {t: ti["state"] for t, ti in tis.items()}
    validate, dump = tis["backup.validate"], tis["backup.dump"]
    assert (validate["hostname"], dump["hostname"]) == ("w1", "w2")
    outcome = xcom(api, "postgres_backup", run_id, "backup.dump")
    location = Path(outcome["location"])
    assert location.parent == celery_cluster.home / "backups" and (location / "manifest.json").exists()
    assert outcome["verified"] is True


def test_the_maintenance_pool_runs_one_destructive_step_at_a_time(celery_cluster, api):
    """Two manual maintenance DAGs (dry runs) triggered together, four idle worker slots: the pool of one
    slot is what keeps their steps apart."""
    runs = {dag_id: trigger(api, dag_id) for dag_id in ("postgres_vacuum", "gold_refresh")}
    for dag_id, run_id in runs.items():
        assert wait_for_run(api, dag_id, run_id, timeout=120) == "success"
    steps = [task_instance(api, "postgres_vacuum", runs["postgres_vacuum"], "vacuum"),
             task_instance(api, "gold_refresh", runs["gold_refresh"], "gold_refresh")]
    assert {(t["queue"], t["pool"], t["pool_slots"]) for t in steps} == {("maintenance", "streamflow_maintenance", 1)}
    first, second = sorted(steps, key=lambda t: datetime.fromisoformat(t["start_date"]))
    assert datetime.fromisoformat(first["end_date"]) <= datetime.fromisoformat(second["start_date"]), \
        [(t["task_id"], t["start_date"], t["end_date"]) for t in steps]


def test_window_survives_a_killed_worker_and_cleans_each_workers_own_logs(celery_cluster, api, cluster_warehouse):
    """One window (the budget allows one): a worker is SIGKILLed while bronze retention runs on it."""
    old = {w: _plant_logs(celery_cluster.worker_log_folder(w), 45) for w in celery_cluster.workers}
    recent = {w: _plant_logs(celery_cluster.worker_log_folder(w), 2) for w in celery_cluster.workers}
    # Old task logs outside any worker's folder (the scheduler's and triggerer's folder) are not theirs.
    outside = _plant_logs(celery_cluster.home / "logs" / "components", 45)
    logical_date = datetime.now(timezone.utc)
    before, expected = bronze_rows_after_retention(cluster_warehouse, logical_date)
    assert expected < before  # something to delete, so that the kill can land mid-deletion
    run_id = trigger(api, "maintenance_tasks", logical_date=logical_date)

    def retention_deleting():
        ti = task_instance(api, "maintenance_tasks", run_id, "bronze_retention")
        if ti["state"] != "running" or ti["hostname"] not in WORKER_HOSTS or bronze_rows(cluster_warehouse) == before:
            return None
        return ti["hostname"]

    victim = wait_for("bronze_retention running and its first batches committed", retention_deleting, 120,
                      every=0.05)
    killed = celery_cluster.kill_worker(victim)
    assert killed
    survivor = (WORKER_HOSTS - {victim}).pop()
    print(f"killed {victim} (pids {killed}) with bronze at {bronze_rows(cluster_warehouse)} of {before} rows, "
          f"{expected} to remain")

    def retried_to_success():
        attempts = tries(api, "maintenance_tasks", run_id, "bronze_retention")
        return attempts[-1]["state"] == "success" and attempts
    attempts = wait_for("bronze_retention retried to success", retried_to_success, 120, every=0.3)
    assert [(a["hostname"], a["state"]) for a in attempts] == [(victim, "failed"), (survivor, "success")]
    assert bronze_rows(cluster_warehouse) == expected

    # The dead worker's own log-cleanup task waits in its queue; the run ends once the worker is back.
    assert run_state(api, "maintenance_tasks", run_id) == "running"
    celery_cluster.start_worker(victim)
    assert wait_for_run(api, "maintenance_tasks", run_id, timeout=180) == "success"
    assert bronze_rows(cluster_warehouse) == expected

    tis = task_instances(api, "maintenance_tasks", run_id)
    spread = {t: ti["hostname"] for t, ti in ran(tis).items()}
    print(f"window task -> worker: {spread}")
    assert set(spread.values()) == WORKER_HOSTS, spread
    for task_id in DESTRUCTIVE:
        assert (tis[task_id]["queue"], tis[task_id]["pool"]) == ("maintenance", "streamflow_maintenance"), task_id
    for worker in celery_cluster.workers:
        task_id = f"housekeeping.task_logs_{worker}"
        assert (tis[task_id]["hostname"], tis[task_id]["queue"]) == (worker, worker)
        outcome = xcom(api, "maintenance_tasks", run_id, task_id)
        assert outcome["folder"] == str(celery_cluster.worker_log_folder(worker))
        assert outcome["removed"] == [str(old[worker].relative_to(celery_cluster.worker_log_folder(worker)))]
        assert not old[worker].exists() and recent[worker].exists()
    assert outside.exists()


def test_backup_folder_not_shared_is_refused_before_any_work(celery_cluster, api):
    """Last in the module: it leaves w2 with a backup folder of its own (restarting costs ~20 s)."""
    private = celery_cluster.home / "backups-w2-only"
    celery_cluster.stop_worker("w2")
    celery_cluster.start_worker("w2", {"backup": {"folder": str(private)}})
    celery_cluster.wait_for_workers()
    run_id, state = backup_split_over_workers(celery_cluster, api)
    tis = task_instances(api, "postgres_backup", run_id)
    assert state == "failed" and tis["backup.dump"]["state"] == "failed"
    assert tis["backup.dump"]["try_number"] == 1  # refused without retries
    log = api.get(f"/dags/postgres_backup/dagRuns/{run_id}/taskInstances/backup.dump/logs/1",
                  params={"full_content": True}, headers={"Accept": "text/plain"})
    dump_log = log.text if log.status_code == 200 else ""
    if not dump_log:  # the API server reads w2's log folder only through w2's log server port
        dump_log = "".join(p.read_text() for p in celery_cluster.worker_log_folder("w2").glob(
            f"dag_id=postgres_backup/run_id={run_id}/task_id=backup.dump/*.log"))
    assert "backup.folder" in dump_log and "is not shared between the workers" in dump_log
    assert not private.exists() or not any(private.glob("streamflow-backup-*"))
