"""Pure verdicts on Airflow REST API answers: scheduler heartbeat and the watched DAGs' runs."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from streamflow_ops.results import CheckResult, Status, worst
from streamflow_ops import registry
from streamflow_ops.timeutil import human_duration, parse_time

HEARTBEAT = registry.AIRFLOW_SCHEDULER_HEARTBEAT
FAILED_RUNS = registry.AIRFLOW_FAILED_DAG_RUNS
EXPECTED_DAGS = registry.AIRFLOW_EXPECTED_DAGS
API_SERVER = registry.AIRFLOW_API_SERVER
UNFINISHED = {"queued", "running"}


def evaluate_heartbeat(health: dict[str, Any], now: datetime, warning_s: int, critical_s: int) -> CheckResult:
    """Age of the newest scheduler heartbeat: < warning ok, up to critical warning, beyond critical critical."""
    scheduler = health.get("scheduler") or {}
    beat = parse_time(scheduler.get("latest_scheduler_heartbeat"))
    others = [f"{name} {part.get('status')}" for name, part in health.items()
              if name != "scheduler" and isinstance(part, dict) and part.get("status") not in (None, "healthy")]
    also = f" (also unhealthy: {', '.join(others)})" if others else ""
    base = dict(check_name=HEARTBEAT.name, runbook=HEARTBEAT.runbook, details=health,
                threshold=f"ok < {human_duration(warning_s)}, critical > {human_duration(critical_s)}")
    if beat is None:
        return CheckResult(status=Status.CRITICAL, **base,
                           message=f"no scheduler heartbeat recorded: the scheduler has never run or the metadata "
                                   f"database is unreachable{also} - {HEARTBEAT.first_step}")
    age = (now - beat).total_seconds()
    if age < warning_s:
        status = Status.OK
    elif age <= critical_s:
        status = Status.WARNING
    else:
        status = Status.CRITICAL
    hint = "" if status is Status.OK else f" - {HEARTBEAT.first_step}"
    return CheckResult(status=status, value=round(age, 1), **base,
                       message=f"last scheduler heartbeat {human_duration(age)} ago{also}{hint}")


def evaluate_dag_runs(dag_id: str, dag: dict[str, Any] | None, failed_in_window: int,
                      recent_runs: list[dict[str, Any]], window_h: int, critical_streak: int) -> CheckResult:
    """Failures in the window warn, a streak of consecutive failures is critical, a paused DAG warns."""
    base = dict(check_name=FAILED_RUNS.name, subject=dag_id, runbook=FAILED_RUNS.runbook,
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
    hint = f" - {FAILED_RUNS.first_step}" if failed_in_window or streak else ""
    return CheckResult(status=worst(level for level, _ in findings), value=failed_in_window, details=details, **base,
                       message=f"{dag_id}: {'; '.join(text for _, text in findings)}{latest}{hint}")


def _import_error_for(dag: dict[str, Any] | None, dag_id: str, import_errors: list[dict[str, Any]]) -> dict | None:
    """The import error of a DAG's file: by its file when Airflow knows the DAG, else a file named after it
    (a DAG that never parsed has no fileloc; the convention is one file per DAG, named like it)."""
    for error in import_errors:
        filename = error.get("filename") or ""
        if dag is not None and filename and filename in (dag.get("relative_fileloc"), dag.get("fileloc")):
            return error
        if dag is None and filename.rsplit("/", 1)[-1].removesuffix(".py") == dag_id:
            return error
    return None


def _last_line(stack_trace: str | None) -> str:
    lines = [line for line in (stack_trace or "").strip().splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else "no stack trace"


def evaluate_expected_dags(expected: list[str], dags: dict[str, dict[str, Any] | None],
                           import_errors: list[dict[str, Any]]) -> CheckResult:
    """The runbook's expected DAGs: each exists, parses and is unpaused. Missing is critical (nothing
    runs it); paused or failing to import is a warning (it exists, but will not run as it should)."""
    missing, paused, broken = [], [], []
    for dag_id in expected:
        dag = dags.get(dag_id)
        error = _import_error_for(dag, dag_id, import_errors)
        if dag is None:
            missing.append(dag_id + (f" (its file {error['filename']} fails to import: "
                                     f"{_last_line(error.get('stack_trace'))})" if error else ""))
            continue
        if dag.get("has_import_errors") or error:
            broken.append(f"{dag_id} ({_last_line(error.get('stack_trace')) if error else 'has import errors'})")
        if dag.get("is_paused"):
            paused.append(dag_id)
    details = {"expected": expected, "missing": missing, "paused": paused, "import_errors": broken,
               "import_error_files": [e.get("filename") for e in import_errors]}
    threshold = "warning: paused or import error; critical: missing"
    findings = ([f"missing: {', '.join(missing)}"] if missing else []) + \
               ([f"with import errors: {', '.join(broken)}"] if broken else []) + \
               ([f"paused: {', '.join(paused)}"] if paused else [])
    if not findings:
        return EXPECTED_DAGS.result(Status.OK, value=0, threshold=threshold, details=details,
                                    message=f"all {len(expected)} expected DAGs exist, parse and are unpaused")
    status = Status.CRITICAL if missing else Status.WARNING
    return EXPECTED_DAGS.result(status, value=len(missing) + len(broken) + len(paused), threshold=threshold,
                                details=details, message=f"expected DAGs {'; '.join(findings)}")


def evaluate_api_server(answered: int, server_errors: list[str], last_error: str | None) -> CheckResult:
    """The API server answering 5xx is broken (the runbook's "webserver returning 500 errors"): critical.
    No answer at all is unknown; answers without a 5xx are ok."""
    threshold = "critical: any HTTP 5xx from the API server"
    details = {"answered": answered, "server_errors": server_errors[:10]}
    if server_errors:
        return API_SERVER.result(Status.CRITICAL, value=len(server_errors), threshold=threshold, details=details,
                                 message=f"the Airflow API server answered {len(server_errors)} request(s) with a "
                                         f"server error: {server_errors[0][:300]}")
    if not answered:
        return API_SERVER.unknown(f"the Airflow API server did not answer: {last_error or 'no request made'}")
    return API_SERVER.result(Status.OK, value=0, threshold=threshold, details=details,
                             message=f"the Airflow API server answered {answered} request(s) without a server error")
