"""`python -m bench fault_matrix`: one real fault per runbook alert on the live sandbox, seen through the
sweep's core (families, diagnosis, alert state, delivery) exactly as platform_health_sweep runs it.

For each row: inject the fault for real, sweep until the expected check reaches the expected severity
(at most MAX_SWEEPS), heal, sweep until it answers ok again. Each row records which check saw it, at
what severity and under which runbook heading, whether the diagnosis was gathered, the PagerDuty events
the local stand-in received for it (a critical is paged once and resolved once; a warning is never
paged), and how many sweeps each way took. Before the rows, HEALTHY_SWEEPS sweeps of the healthy,
flowing pipeline must page nothing.

Time is compressed in two rows, and the row says so: PipelineLatencyHigh deletes the silver rows of the
last 20 minutes while the consumer is paused (waiting 15 minutes is not a benchmark), and HighFraudRate's
burst is removed to heal it (the hour it counts would otherwise have to pass).

The same rows run as a test (tests/health/test_fault_matrix.py); bench and test share run_matrix().
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
HEALTHY_SWEEPS = 24
MAX_SWEEPS = 8
FAILING_DAG = "airflow_housekeeping"  # fails at its metadata step without a scheduler image (dry run too)
BURST_PREFIX = "fault-matrix-burst-"


@dataclass
class Env:
    """What the rows act on: the sandbox profile, the pipeline (its own broker), the warehouse, the far
    ends, and (optionally) an airflow standalone."""

    layout: Any  # sandbox.proc.Layout: PostgreSQL, Flink, monitoring
    pipeline: Any  # the live pipeline's Layout (its Tansu is the sweep's streamflow_kafka)
    dsn: str  # the warehouse the pipeline writes and the sweep reads
    pagerduty: Any  # tests.fakes.http_api.FakeApi
    config_overrides: dict = field(default_factory=dict)
    standalone: Any = None  # scripts.ui.Standalone, or None: the AirflowDAGFailure row is not injected
    monitoring: bool = True  # the sandbox's Prometheus and Pushgateway run (PostgresPVCNearlyFull)
    held: list = field(default_factory=list)  # what a fault holds open (connections)
    sweeps: int = 0

    def config(self):
        from sandbox import connections
        from streamflow_ops.config import load_config

        base = connections.SANDBOX_CONFIG
        watched = base["airflow_api"]["watched_dags"] + [FAILING_DAG]
        return load_config({**base, "airflow_api": {**base["airflow_api"], "watched_dags": watched},
                            **self.config_overrides})


@dataclass(frozen=True)
class Fault:
    alert: str  # the runbook alert this row stands for
    check: str
    subject: str
    severity: str  # what the check must report
    how: str  # how the fault is injected (and healed), in words
    inject: Callable[[Env], None]
    heal: Callable[[Env], None]
    needs: str = ""  # "standalone" or "monitoring": not injected without it


def sweep(env: Env) -> dict:
    """One real sweep (not a dry run): results, diagnosis, ops.alert_state, deliveries."""
    from streamflow_ops.sweep import run_sweep

    env.sweeps += 1
    summary, _ = run_sweep(env.config(), f"fault_matrix__{env.sweeps}__{int(time.time())}")
    return summary


def pd_events(env: Env, since: int, dedup_key: str | None = None) -> list[tuple[str, str]]:
    """(event_action, dedup_key) the PagerDuty stand-in received after the first `since` requests."""
    events = [r.json() for r in env.pagerduty.calls("POST", "/v2/enqueue")[since:]]
    return [(e["event_action"], e["dedup_key"]) for e in events if dedup_key is None or e["dedup_key"] == dedup_key]


def _result(summary: dict, check: str, subject: str) -> dict | None:
    """The check's result for subject, else its worst result for any subject (a failed probe has none)."""
    same = [r for r in summary["results"] if r["check_name"] == check]
    exact = next((r for r in same if r["subject"] == subject), None)
    return exact or max(same, key=lambda r: RANK[r["status"]], default=None)


RANK = {"skipped": 0, "ok": 1, "unknown": 2, "warning": 3, "critical": 4}


def run_fault(env: Env, fault: Fault) -> dict:
    from streamflow_ops.alerting.state import dedup_key

    row: dict[str, Any] = {"alert": fault.alert, "check": fault.check, "subject": fault.subject,
                           "expected": fault.severity, "how": fault.how}
    key = dedup_key(fault.check, fault.subject)
    before = len(env.pagerduty.calls("POST", "/v2/enqueue"))
    started = time.perf_counter()
    fault.inject(env)
    seen, worst = None, None
    for n in range(1, MAX_SWEEPS + 1):
        result = _result(sweep(env), fault.check, fault.subject)
        if result and (worst is None or RANK[result["status"]] > RANK[worst["status"]]):
            worst = result
        if result and result["status"] == fault.severity:
            seen = result
            row["sweeps_to_detect"] = n
            break
    seen = seen or worst or {}
    diagnosis = (seen.get("details") or {}).get("diagnosis") or {}
    row.update(seen=seen.get("status"), seen_subject=seen.get("subject"), runbook=seen.get("runbook"),
               message=seen.get("message"),
               diagnosis_gathered=bool(diagnosis.get("findings")),
               diagnosis_findings=len(diagnosis.get("findings", [])),
               diagnosis_not_gathered=diagnosis.get("not_gathered", []))
    fault.heal(env)
    for n in range(1, MAX_SWEEPS + 1):
        result = _result(sweep(env), fault.check, fault.subject)
        if result and result["status"] == "ok":
            row["sweeps_to_resolve"] = n
            break
    row["resolved"] = "sweeps_to_resolve" in row
    events = pd_events(env, before)
    row["pages"] = [action for action, k in events if k == key]
    row["other_pages"] = [f"{action} {k}" for action, k in events if k != key]
    row["paged_once"] = row["pages"] == (["trigger", "resolve"] if fault.severity == "critical" else [])
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def healthy_baseline(env: Env, sweeps: int = HEALTHY_SWEEPS) -> dict:
    """`sweeps` sweeps of the healthy flowing pipeline: the pages sent, and the worst statuses seen."""
    before = len(env.pagerduty.calls("POST", "/v2/enqueue"))
    problems: dict[str, str] = {}
    started = time.perf_counter()
    for _ in range(sweeps):
        for r in sweep(env)["results"]:
            if r["status"] in ("critical", "warning"):
                problems[f"{r['check_name']}[{r['subject']}]"] = r["status"]
    return {"sweeps": sweeps, "pages": pd_events(env, before), "warnings_or_criticals": problems,
            "seconds": round(time.perf_counter() - started, 1)}


def run_matrix(env: Env, faults: list[Fault] | None = None) -> dict:
    rows = []
    for fault in faults or FAULTS:
        missing = {"standalone": env.standalone is None, "monitoring": not env.monitoring}.get(fault.needs, False)
        if missing:
            rows.append({"alert": fault.alert, "check": fault.check, "subject": fault.subject,
                         "expected": fault.severity, "how": fault.how,
                         "not_injected": f"no {fault.needs} in this environment"})
            continue
        rows.append(run_fault(env, fault))
    return {"rows": rows}


# --- the faults ------------------------------------------------------------------------------------

def _produce(layout, messages_per_partition: int) -> None:
    from confluent_kafka import Producer

    from sandbox import kafka

    # One message per request: Tansu miscounts high watermarks of batched produces.
    producer = Producer({"bootstrap.servers": kafka.bootstrap(layout), "batch.num.messages": 1, "linger.ms": 0})
    for partition in range(kafka.PARTITIONS):
        for _ in range(messages_per_partition):
            producer.produce(kafka.GROUP_TOPIC, value=b"{}", partition=partition)
            producer.poll(0)
    producer.flush(60)


def _lag_inject(env: Env) -> None:
    from sandbox import pipeline

    pipeline.pause(env.pipeline)
    _produce(env.pipeline, 600)  # a backlog the paused consumer does not read: lag > 1,000, offsets still


def _lag_heal(env: Env) -> None:
    from sandbox import pipeline

    pipeline.resume(env.pipeline)
    deadline = time.monotonic() + 120
    while (pipeline.lag(env.pipeline) or 0) >= 1000 and time.monotonic() < deadline:
        time.sleep(1)


def _broker_down(env: Env) -> None:
    from sandbox import kafka

    kafka.stop(env.pipeline)


def _broker_up(env: Env) -> None:
    """Tansu keeps topics in memory: a restarted broker is seeded again, the pipeline restarted on it."""
    from sandbox import kafka, pipeline

    pipeline.stop(env.pipeline)
    kafka.start(env.pipeline)
    pipeline.start(env.pipeline, dsn=env.dsn)


def flink_job(env: Env) -> dict | None:
    from sandbox import flink

    return next((j for j in flink.running_jobs(env.layout) if j["name"] == flink.JOB_NAME), None)


def _cancel_job(env: Env) -> None:
    from sandbox import flink

    job = flink_job(env)
    if job:
        flink.cancel_job(env.layout, job["jid"])


def job_running_again(env: Env, **job_args) -> None:
    """A new FraudDetectionJob (like the remediation's resubmit), waited for until it has checkpointed."""
    from sandbox import flink

    _cancel_job(env)
    job_id = flink.submit_job(env.layout, **job_args)
    deadline = time.monotonic() + 60
    while not flink._has_completed_checkpoint(env.layout, job_id) and time.monotonic() < deadline:
        time.sleep(0.5)


def _stall_checkpoints(env: Env) -> None:
    """The job restarted with snapshots slower than the checkpoint timeout: every checkpoint expires."""
    from sandbox import flink

    _cancel_job(env)
    flink.submit_job(env.layout, checkpoint_interval_ms=1000, checkpoint_timeout_ms=1000, snapshot_delay_ms=5000)


def _hold_connections(env: Env) -> None:
    """Idle client sessions until 85 % of max_connections are in use (warning band: 80-95 %)."""
    import psycopg

    with psycopg.connect(env.dsn) as conn:
        max_conn = int(conn.execute("show max_connections").fetchone()[0])
        in_use = conn.execute("select count(*) from pg_stat_activity where backend_type = 'client backend'"
                              ).fetchone()[0]
    for _ in range(max(0, math.ceil(max_conn * 0.85) - in_use)):
        env.held.append(psycopg.connect(env.dsn, autocommit=True, application_name="fault-matrix-idle"))


def release_connections(env: Env) -> None:
    while env.held:
        env.held.pop().close()


def _pvc(used_ratio: float):
    from sandbox import monitoring

    return tuple((ns, name, int(capacity * used_ratio) if ns == "streamflow-data" else used, capacity)
                 for ns, name, used, capacity in monitoring.SANDBOX_PVCS)


def _pvc_push(env: Env, ratio: float | None) -> None:
    """kubelet_volume_stats_* through the Pushgateway, and wait until Prometheus has scraped them."""
    from sandbox import monitoring

    pvcs = _pvc(ratio) if ratio is not None else monitoring.SANDBOX_PVCS
    monitoring.push_kubelet_volume_stats(env.layout, pvcs)
    used = next(p[2] for p in pvcs if p[0] == "streamflow-data")
    monitoring.wait_for(env.layout, f'kubelet_volume_stats_used_bytes{{namespace="streamflow-data"}} == {used}')


def _fraud_burst(env: Env) -> None:
    """As many fraudulent transactions (score 0.95) as the last hour's silver rows: a rate above 50 %."""
    import psycopg

    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute(
            "insert into silver.transactions_enriched (transaction_id, customer_id, amount, fraud_score, "
            "transaction_time, enriched_at) "
            "select %s || g, 'fault-matrix', 999.00, 0.95, extract(epoch from now())::bigint, now() "
            "from generate_series(1, greatest(100, (select count(*) from silver.transactions_enriched "
            "where transaction_time >= extract(epoch from now() - interval '1 hour')))) g", (BURST_PREFIX,))


def _fraud_burst_over(env: Env) -> None:
    import psycopg

    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute("delete from silver.transactions_enriched where transaction_id like %s", (BURST_PREFIX + "%",))


def _consumer_stopped_20_min_ago(env: Env) -> None:
    """The consumer stops; its last 20 minutes of silver rows are deleted, as if it had stopped then."""
    import psycopg

    from sandbox import pipeline

    pipeline.pause(env.pipeline)
    time.sleep(1)  # a batch the consumer was writing lands before the cut
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute("delete from silver.transactions_enriched "
                     "where transaction_time > extract(epoch from now() - interval '20 minutes')")


def _consumer_back(env: Env) -> None:
    from sandbox import pipeline

    pipeline.resume(env.pipeline)
    deadline, before = time.monotonic() + 60, pipeline.stats(env.pipeline, "consumer").get("silver_rows", 0)
    while pipeline.stats(env.pipeline, "consumer").get("silver_rows", 0) <= before and time.monotonic() < deadline:
        time.sleep(0.5)


def _dag_runs(env: Env, state: str) -> list[dict]:
    with env.standalone.client() as api:
        return api.get(f"/dags/{FAILING_DAG}/dagRuns", params={"state": [state], "limit": 100}).json()["dag_runs"]


def fail_dag(env: Env, runs: int = 3) -> None:
    """`runs` real failed runs of FAILING_DAG in airflow standalone, one after the other."""
    import httpx

    env.standalone.unpause((FAILING_DAG,))
    with env.standalone.client() as api:
        for _ in range(runs):
            answer = api.post(f"/dags/{FAILING_DAG}/dagRuns", json={"logical_date": None, "conf": {"dry_run": True}})
            answer.raise_for_status()
            run_id, deadline, state = answer.json()["dag_run_id"], time.monotonic() + 300, "queued"
            while state not in ("success", "failed"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{FAILING_DAG} run {run_id} still {state} after 300 s")
                time.sleep(1)
                try:
                    state = api.get(f"/dags/{FAILING_DAG}/dagRuns/{run_id}").json()["state"]
                except httpx.TimeoutException:  # a loaded 2-core machine: the next poll may answer
                    continue
            if state != "failed":
                raise AssertionError(f"{FAILING_DAG} run {run_id} was expected to fail, it {state}")


def mark_failed_runs_fixed(env: Env) -> None:
    """What the on-call does once the cause is fixed and the runs redone by hand: mark them success
    (REST PATCH), so the check sees no failed run in its window."""
    with env.standalone.client() as api:
        for run in _dag_runs(env, "failed") + _dag_runs(env, "queued") + _dag_runs(env, "running"):
            api.patch(f"/dags/{FAILING_DAG}/dagRuns/{run['dag_run_id']}", json={"state": "success"}
                      ).raise_for_status()


FAULTS: list[Fault] = [
    # Warning: critical needs > 10,000 behind, or offsets still over the whole 180-min window (which here
    # holds the healthy sweeps' moving offsets).
    Fault("KafkaConsumerLagHigh", "kafka.consumer_lag", "flink-fraud-detector", "warning",
          "consumer paused (python -m sandbox pipeline pause) with 1,800 more messages behind it; "
          "healed by resume", _lag_inject, _lag_heal),
    Fault("KafkaBrokerDown", "kafka.broker_reachable", "", "critical",
          "the pipeline's Tansu broker stopped; healed by starting it again (and the pipeline on it)",
          _broker_down, _broker_up),
    Fault("FlinkJobNotRunning", "flink.job_running", "FraudDetectionJob", "critical",
          "FraudDetectionJob cancelled (Flink REST PATCH /jobs/<id>?mode=cancel); healed by resubmitting it",
          _cancel_job, lambda env: job_running_again(env)),
    # Warning: flink.checkpoint_age turns critical only after 30 min without a completed checkpoint.
    Fault("FlinkCheckpointFailing", "flink.checkpoint_failures", "FraudDetectionJob", "warning",
          "FraudDetectionJob resubmitted with snapshots slower than the checkpoint timeout: every checkpoint "
          "expires, none completes; healed by resubmitting it with normal checkpoints",
          _stall_checkpoints, lambda env: job_running_again(env)),
    Fault("PostgresHighConnections", "postgres.connections", "", "warning",
          "idle client sessions held open up to 85 % of max_connections; healed by closing them",
          _hold_connections, release_connections),
    Fault("PostgresPVCNearlyFull", "kubernetes.pvc_usage", "streamflow-data/streamflow-postgres-1", "critical",
          "kubelet_volume_stats_used_bytes of the PostgreSQL PVC pushed at 97 % (real Pushgateway and Prometheus); "
          "healed by pushing the normal usage", lambda env: _pvc_push(env, 0.97), lambda env: _pvc_push(env, None),
          needs="monitoring"),
    Fault("HighFraudRate", "business.fraud_rate", "", "critical",
          "a burst of fraudulent transactions in silver (score 0.95, as many as the hour's rows); healed by "
          "removing the burst (time compressed: the hour would have to pass)", _fraud_burst, _fraud_burst_over),
    Fault("PipelineLatencyHigh", "business.pipeline_latency", "", "critical",
          "consumer paused and its last 20 min of silver rows removed (time compressed); healed by resume",
          _consumer_stopped_20_min_ago, _consumer_back),
    Fault("AirflowDAGFailure", "airflow.failed_dag_runs", FAILING_DAG, "critical",
          f"3 consecutive real failed runs of {FAILING_DAG} in airflow standalone; healed by marking them "
          f"success (REST), as after a fix and a manual rerun", fail_dag, mark_failed_runs_fixed,
          needs="standalone"),
]


# --- the benchmark ---------------------------------------------------------------------------------

def main() -> None:
    import pytest

    from sandbox import connections, kafka, monitoring, pipeline, postgres
    from sandbox import flink as sandbox_flink
    from sandbox.__main__ import seed_postgres
    from sandbox.proc import Layout, running_group
    from scripts.ui import Standalone
    from tests.health.fake_alerts import alert_far_ends

    layout = Layout.from_env()
    live = Layout(root=layout.root / "fault_matrix_pipeline", port_base=layout.port_base + 7)
    modules = (postgres, sandbox_flink, monitoring)
    started = [m for m in modules if not m.status(layout).split(":", 1)[1].strip().startswith("running")]
    for module in modules:
        module.start(layout)
    standalone = Standalone(layout, sandbox_connections=False)
    own_standalone = running_group(standalone.pid_file) is None
    env = None
    try:
        with pytest.MonkeyPatch.context() as mp, alert_far_ends(mp) as (_, pd_api):
            for key, value in connections.airflow_env(layout).items():
                mp.setenv(key, value)
            seed_postgres(layout)
            dsn = postgres.dsn(layout)
            kafka.start(live)
            pipeline.start(live, dsn=dsn)
            mp.setenv("AIRFLOW_CONN_STREAMFLOW_KAFKA", json.dumps({"conn_type": "kafka", "extra": {
                "bootstrap.servers": kafka.bootstrap(live), "socket.timeout.ms": 3000}}))
            standalone.start(extra_env={"AIRFLOW_CONN_STREAMFLOW_POSTGRES": dsn,
                                        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                                        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"})
            mp.setenv("AIRFLOW_CONN_STREAMFLOW_AIRFLOW_API", standalone_connection(standalone))
            env = Env(layout, live, dsn, pd_api, standalone=standalone)
            prepare(env)
            baseline = healthy_baseline(env)
            matrix = run_matrix(env)
    finally:
        if env is not None:
            release_connections(env)
        pipeline.stop(live)
        kafka.stop(live)
        if own_standalone:
            standalone.stop()
        for module in reversed(started):
            module.stop(layout)
    write(baseline, matrix)


def standalone_connection(standalone) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": standalone.api_port, "schema": "http",
                       "login": "admin", "password": standalone.password()})


def prepare(env: Env) -> None:
    """A healthy start: a verified backup of three hours ago, the Flink job checkpointing, normal PVC usage,
    no failed run of the watched DAG in its window, and no alert state left from an earlier run."""
    import psycopg

    from streamflow_ops.store import AuditRecord, ensure_ops_schema, write_audit

    finished = datetime.now(timezone.utc) - timedelta(hours=3)
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        ensure_ops_schema(conn)
        conn.execute("delete from ops.alert_state")
        write_audit(conn, AuditRecord("postgres_backup", "fault_matrix", "backup", "backup", "gold", dry_run=False,
                                      started_at=finished - timedelta(minutes=3), finished_at=finished,
                                      outcome="verified", details={"method": "pg_dump", "duration_s": 180}))
    if flink_job(env) is None:
        job_running_again(env)
    _pvc_push(env, None)
    if env.standalone is not None:
        env.standalone.unpause((FAILING_DAG,))
        mark_failed_runs_fixed(env)


def diagnosis_cell(row: dict) -> str:
    return "gathered" if row["diagnosis_gathered"] else "not gathered: " + "; ".join(row["diagnosis_not_gathered"])


def write(baseline: dict, matrix: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    meta = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "max_sweeps": MAX_SWEEPS}
    (RESULTS / "fault_matrix.json").write_text(json.dumps({"meta": meta, "healthy": baseline, **matrix}, indent=2,
                                                          default=str))
    lines = ["# Fault matrix on the live sandbox", "",
             f"{meta['when']}, Python {meta['python']}, {meta['cpus']} CPUs (shared). `python -m bench fault_matrix`; "
             f"what each row does: docs/fault_matrix.md.",
             "", f"Healthy, flowing pipeline: {baseline['sweeps']} sweeps in {baseline['seconds']} s, "
                 f"{len(baseline['pages'])} PagerDuty events.", "",
             "| alert | injected | check (severity seen / expected) | runbook heading | diagnosis | PagerDuty | "
             "sweeps to see / to resolve | resolved | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in matrix["rows"]:
        if "not_injected" in r:
            lines.append(f"| {r['alert']} | not injected: {r['not_injected']} | {r['check']} | | | | | |")
            continue
        label = r["check"] + (f" [{r['subject']}]" if r["subject"] else "")
        lines.append(f"| {r['alert']} | {r['how']} | {label} ({r['seen']} / {r['expected']}) | {r['runbook']} | "
                     f"{diagnosis_cell(r)} | "
                     f"{' + '.join(r['pages']) or 'none'}{'' if r['paged_once'] else ' (WRONG)'} | "
                     f"{r.get('sweeps_to_detect', '-')} / {r.get('sweeps_to_resolve', '-')} | "
                     f"{'yes' if r['resolved'] else 'NO'} | {r['seconds']} |")
    others = [f"- {r['alert']}: {', '.join(r['other_pages'])}" for r in matrix["rows"] if r.get("other_pages")]
    if others:
        lines += ["", "PagerDuty events for other checks during a row:", *others]
    (RESULTS / "fault_matrix.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
