"""Flink health checks (probe + evaluator)."""
from __future__ import annotations

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.results import CheckResult, Status
from streamflow_ops.runbook import section


def job_running(config: StreamflowOpsConfig) -> CheckResult:
    """flink.job_running: the configured job's state from the JobManager REST API."""
    from airflow.providers.http.hooks.http import HttpHook

    name = "flink.job_running"
    hook = HttpHook(method="GET", http_conn_id=config.flink.conn_id)
    try:
        jobs = hook.run("/jobs/overview", extra_options={"timeout": config.flink.request_timeout_s}).json()["jobs"]
    except Exception as exc:  # noqa: BLE001 - a failed probe is unknown, not healthy
        return CheckResult(name, Status.UNKNOWN, runbook=section(name),
                           message=f"Flink REST ({config.flink.conn_id}) failed: {type(exc).__name__}: {str(exc)[:300]}")
    matching = sorted((j for j in jobs if j.get("name") == config.flink.job_name),
                      key=lambda j: j.get("start-time", 0), reverse=True)
    if not matching:
        return CheckResult(name, Status.CRITICAL, subject=config.flink.job_name, runbook=section(name),
                           message=f"FlinkJobNotRunning: no job named {config.flink.job_name}")
    state = matching[0]["state"]
    status = {"RUNNING": Status.OK, "RESTARTING": Status.WARNING}.get(state, Status.CRITICAL)
    return CheckResult(name, status, subject=config.flink.job_name, runbook=section(name),
                       message=f"{config.flink.job_name} is {state}", details={"job_id": matching[0]["jid"]})
