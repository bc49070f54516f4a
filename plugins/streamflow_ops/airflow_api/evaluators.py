"""Pure verdicts on Airflow REST API answers: scheduler heartbeat and the watched DAGs' runs."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from streamflow_ops.results import CheckResult, Status, worst
from streamflow_ops.runbook import section
from streamflow_ops.timeutil import human_duration, parse_time

HEARTBEAT = "airflow.scheduler_heartbeat"
FAILED_RUNS = "airflow.failed_dag_runs"
UNFINISHED = {"queued", "running"}


def evaluate_heartbeat(health: dict[str, Any], now: datetime, warning_s: int, critical_s: int) -> CheckResult:
    """Age of the newest scheduler heartbeat: < warning ok, up to critical warning, beyond critical critical."""
    scheduler = health.get("scheduler") or {}
    beat = parse_time(scheduler.get("latest_scheduler_heartbeat"))
    others = [f"{name} {part.get('status')}" for name, part in health.items()
              if name != "scheduler" and isinstance(part, dict) and part.get("status") not in (None, "healthy")]
    also = f" (also unhealthy: {', '.join(others)})" if others else ""
    base = dict(check_name=HEARTBEAT, runbook=section(HEARTBEAT), details=health,
                threshold=f"ok < {human_duration(warning_s)}, critical > {human_duration(critical_s)}")
    if beat is None:
        return CheckResult(status=Status.CRITICAL, **base,
                           message=f"no scheduler heartbeat recorded: the scheduler has never run or the metadata "
                                   f"database is unreachable{also} - check the scheduler pod")
    age = (now - beat).total_seconds()
    if age < warning_s:
        status = Status.OK
    elif age <= critical_s:
        status = Status.WARNING
    else:
        status = Status.CRITICAL
    hint = "" if status is Status.OK else " - check the scheduler pod (kubectl logs) and its database connection"
    return CheckResult(status=status, value=round(age, 1), **base,
                       message=f"last scheduler heartbeat {human_duration(age)} ago{also}{hint}")


def evaluate_dag_runs(dag_id: str, dag: dict[str, Any] | None, failed_in_window: int,
                      recent_runs: list[dict[str, Any]], window_h: int, critical_streak: int) -> CheckResult:
    """Failures in the window warn, a streak of consecutive failures is critical, a paused DAG warns."""
    base = dict(check_name=FAILED_RUNS, subject=dag_id, runbook=section(FAILED_RUNS),
                threshold=f"warning: any failed run in {window_h} h, or paused; "
                          f"critical: {critical_streak}+ consecutive failed runs")
    if dag is None:
        return CheckResult(status=Status.WARNING, **base,
                           message=f"watched DAG {dag_id} does not exist in Airflow: renamed, deleted, or its file "
                                   f"fails to import (see Browse > Import errors); if renamed, update "
                                   f"airflow_api.watched_dags")
    finished = [run for run in recent_runs if run.get("state") not in UNFINISHED]
    streak = next((i for i, run in enumerate(finished) if run.get("state") != "failed"), len(finished))
    findings: list[tuple[Status, str]] = []
    if streak >= critical_streak:
        findings.append((Status.CRITICAL, f"{streak} consecutive failed runs"))
    if failed_in_window:
        findings.append((Status.WARNING, f"{failed_in_window} failed run(s) in the last {window_h} h"))
    if dag.get("is_paused"):
        findings.append((Status.WARNING, "DAG is paused, so it does not run: unpause it if that was not intended"))
    if dag.get("has_import_errors"):
        findings.append((Status.WARNING, "its DAG file currently has import errors"))
    details = {"is_paused": dag.get("is_paused"), "failed_in_window": failed_in_window,
               "consecutive_failures": streak,
               "recent_runs": [{key: run.get(key) for key in ("dag_run_id", "state", "run_after", "end_date")}
                               for run in recent_runs[:10]]}
    last = finished[0] if finished else None
    latest = (f"; latest finished run {last.get('dag_run_id')} {last.get('state')} at "
              f"{last.get('end_date') or last.get('run_after')}") if last else "; no finished runs yet"
    if not findings:
        return CheckResult(status=Status.OK, value=0, details=details, **base,
                           message=f"{dag_id}: no failed runs in the last {window_h} h{latest}")
    hint = " - read the failed task logs, fix, then clear the run" if failed_in_window or streak else ""
    return CheckResult(status=worst(level for level, _ in findings), value=failed_in_window, details=details, **base,
                       message=f"{dag_id}: {'; '.join(text for _, text in findings)}{latest}{hint}")
