"""The runbook's diagnosis steps as pure functions: from what a probe read to short findings (facts, not
commands), so that the alert already says what the on-call engineer would have looked up first."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any, Sequence

from streamflow_ops.flink.evaluators import select_job


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown age"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _top(counter: Counter, n: int = 5) -> str:
    parts = [f"{name or '(none)'} {count}" for name, count in counter.most_common(n)]
    rest = len(counter) - n
    return ", ".join(parts) + (f" and {rest} more" if rest > 0 else "")


# --- PostgresHighConnections ----------------------------------------------------------------------

def connection_findings(sessions: Sequence[dict[str, Any]], max_connections: int) -> list[str]:
    """Client sessions by state, application and user; idle-in-transaction count and the oldest one."""
    clients = [s for s in sessions if s["backend_type"] == "client backend"]
    by_state = Counter(s["state"] or "unknown" for s in clients)
    findings = [f"{len(clients)} client connections of max_connections {max_connections}: {_top(by_state)}",
                f"by application: {_top(Counter(s['application_name'] for s in clients))}",
                f"by user: {_top(Counter(s['usename'] for s in clients))}"]
    in_tx = [s for s in clients if (s["state"] or "").startswith("idle in transaction")]
    if in_tx:
        oldest = max(in_tx, key=lambda s: s["idle_s"] or 0)
        findings.append(f"{len(in_tx)} idle in transaction; oldest pid {oldest['pid']} (user {oldest['usename']}, "
                        f"application {oldest['application_name'] or '(none)'}) for {_age(oldest['idle_s'])}")
    else:
        findings.append("no session idle in transaction")
    return findings


# --- FlinkJobNotRunning / FlinkCheckpointFailing --------------------------------------------------

def job_history_findings(jobs: Sequence[dict[str, Any]], job_name: str) -> list[str]:
    """The named job's runs, newest first, with their states: its recent history on this JobManager."""
    named = sorted((j for j in jobs if j.get("name") == job_name), key=lambda j: j.get("start-time", 0), reverse=True)
    if not named:
        return [f"no job named {job_name} on the JobManager"]
    runs = ", ".join(f"{j['jid'][:8]} {j['state']} (started {_ms(j.get('start-time'))})" for j in named[:5])
    return [f"{job_name} runs, newest first: {runs}"]


def root_exception_findings(exceptions: dict[str, Any]) -> list[str]:
    """The newest root exception of /jobs/<id>/exceptions (Flink 2: exceptionHistory.entries)."""
    entries = (exceptions.get("exceptionHistory") or {}).get("entries") or []
    if entries:
        entry = entries[0]
        where = f" in {entry['taskName']}" if entry.get("taskName") else ""
        return [f"root exception at {_ms(entry.get('timestamp'))}{where}: {entry.get('exceptionName')}: "
                f"{_first_line(entry.get('stacktrace'))}"]
    if exceptions.get("root-exception"):
        return [f"root exception: {_first_line(exceptions['root-exception'])}"]
    return ["no exception recorded for the job"]


def checkpoint_findings(checkpoints: dict[str, Any] | None) -> list[str]:
    """The last completed and the last failed checkpoint, with Flink's failure message."""
    if not checkpoints:
        return ["no checkpoint statistics (no job)"]
    latest, counts = checkpoints.get("latest") or {}, checkpoints.get("counts") or {}
    done, failed = latest.get("completed"), latest.get("failed")
    findings = [f"checkpoints: {counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, "
                f"{counts.get('in_progress', 0)} in progress"]
    findings.append(f"last completed: #{done['id']} at {_ms(done.get('latest_ack_timestamp'))}, "
                    f"{done.get('end_to_end_duration', 0) / 1000:g} s, state {done.get('state_size', 0):,} bytes"
                    if done else "no completed checkpoint")
    if failed:
        findings.append(f"last failed: #{failed['id']} at {_ms(failed.get('failure_timestamp'))}: "
                        f"{_first_line(failed.get('failure_message')) or 'no message'}")
    return findings


# --- KafkaConsumerLagHigh -------------------------------------------------------------------------

def lag_findings(details: dict[str, Any]) -> list[str]:
    """The lag's pattern, the producer against the consumer over the window, the time to catch up. (Spike or
    slowdown needs the usual rates too: compare these with the dashboard's.)"""
    findings = []
    rules = details.get("rules") or []
    if rules:
        findings.append(f"lag pattern over {details.get('window_minutes', '?')} min: {', '.join(rules)}")
    produced, consumed = details.get("production_per_s"), details.get("consumption_per_s")
    if produced is not None and consumed is not None:
        gap = produced - consumed
        trend = f"falling behind by {gap:,.1f}/s" if gap > 0 else f"catching up by {-gap:,.1f}/s"
        findings.append(f"producing {produced:,.1f}/s, consuming {consumed:,.1f}/s: {trend}")
    if details.get("catch_up_s") is not None:
        findings.append(f"time to catch up at the current rate: {_age(details['catch_up_s'])}")
    return findings


def flink_capacity_findings(jobs: Sequence[dict[str, Any]], job_name: str, overview: dict[str, Any],
                            vertices: Sequence[dict[str, Any]], samples: dict[str, dict[str, Any]]) -> list[str]:
    """Job state, TaskManagers and slots, and the backpressure of each vertex."""
    job = select_job(list(jobs), job_name)
    findings = [f"{job_name}: {job['state'] if job else 'absent'}",
                f"{overview.get('taskmanagers', 0)} TaskManager(s), {overview.get('slots-available', 0)} of "
                f"{overview.get('slots-total', 0)} slots free"]
    levels = []
    for vertex in vertices:
        sample = samples.get(vertex["id"]) or {}
        ratio = max((s.get("ratio", 0) for s in sample.get("subtasks") or []), default=None)
        level = sample.get("backpressure-level") or sample.get("backpressureLevel") or "not sampled"
        levels.append(f"{vertex['name'][:40]} {level}" + (f" ({ratio:.0%})" if ratio is not None else ""))
    if levels:
        findings.append("backpressure per vertex: " + "; ".join(levels))
    return findings


# --- KafkaBrokerDown ------------------------------------------------------------------------------

def broker_pod_findings(pods: Sequence[dict[str, Any]], cluster: str) -> list[str]:
    """The broker pods' phase, restarts and last termination reason (Kubernetes keeps the last one)."""
    brokers = [p for p in pods if p["metadata"]["name"].startswith(f"{cluster}-kafka-")
               or p["metadata"].get("labels", {}).get("strimzi.io/kind") == "Kafka"
               and p["metadata"].get("labels", {}).get("strimzi.io/name") == f"{cluster}-kafka"]
    if not brokers:
        return [f"no broker pod of {cluster} in the namespace"]
    findings = []
    for pod in brokers:
        status = pod.get("status", {})
        containers = status.get("containerStatuses") or []
        restarts = sum(c.get("restartCount", 0) for c in containers)
        waiting = next((c["state"]["waiting"].get("reason") for c in containers
                        if (c.get("state") or {}).get("waiting")), None)
        last = next(((c.get("lastState") or {}).get("terminated") for c in containers
                     if (c.get("lastState") or {}).get("terminated")), None)
        line = f"{pod['metadata']['name']}: {waiting or status.get('phase', 'unknown')}, {restarts} restart(s)"
        if last:
            line += (f"; last terminated {last.get('reason', '?')} (exit {last.get('exitCode', '?')})"
                     + (f": {_first_line(last.get('message'))}" if last.get("message") else ""))
        findings.append(line)
    return findings


# --- HighFraudRate / PipelineLatencyHigh ----------------------------------------------------------

def fraud_rule_findings(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Fraud alerts by rule id in the last hour against the same hour the day before."""
    if not rows:
        return ["no fraud alerts in the last hour or the same hour yesterday"]
    parts = [f"{r['rule_id'] or '(none)'} {r['last_hour']} (yesterday {r['day_before']})" for r in rows[:8]]
    return ["fraud alerts by rule, last hour vs the same hour yesterday: " + ", ".join(parts)]


def stage_findings(stages: dict[str, Any]) -> list[str]:
    """Which stage is late: the newest bronze row against the newest silver row."""
    bronze, silver = stages.get("bronze_age_s"), stages.get("silver_age_s")
    findings = [f"newest bronze row {_age(bronze)} old, newest silver row {_age(silver)} old"]
    if bronze is not None and silver is not None:
        findings.append("ingestion (Kafka -> bronze) is late: silver waits for input" if bronze > 300 and
                        silver - bronze < 300 else "enrichment (Flink/silver writer) is late: bronze is fresh"
                        if silver - bronze >= 300 else "both stages are current")
    return findings


# --- AirflowDAGFailure ----------------------------------------------------------------------------

def dag_failure_findings(dag_id: str, run: dict[str, Any] | None, failed_tasks: Sequence[dict[str, Any]],
                         ui_url: str) -> list[str]:
    if run is None:
        return [f"no failed run of {dag_id} found"]
    findings = [f"{dag_id} run {run['dag_run_id']} failed (ended {run.get('end_date') or 'unknown'})"]
    for ti in failed_tasks[:5]:
        findings.append(f"failed task {ti['task_id']}, try {ti.get('try_number')}; log: {ui_url}/dags/{dag_id}/runs/"
                        f"{run['dag_run_id']}/tasks/{ti['task_id']}")
    if not failed_tasks:
        findings.append("no task of that run is in state failed (upstream_failed or a timeout?)")
    return findings


def _ms(value: Any) -> str:
    if not value or value <= 0:
        return "unknown time"
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _first_line(text: Any, limit: int = 200) -> str:
    line = next((ln.strip() for ln in str(text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit] + "..."
