"""flink.* health checks: read the JobManager REST API once per run, judge with the pure evaluators.

Each check runs through guarded(): a REST failure makes that check `unknown` with the URL and status,
never `ok`, and never takes the other checks down.
"""
from __future__ import annotations

from datetime import datetime

from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.flink import evaluators as ev
from streamflow_ops.flink.probes import FlinkRest, JobView
from streamflow_ops.registry import Family, register, run_guarded
from streamflow_ops.results import CheckResult
from streamflow_ops.timeutil import utcnow


def run_checks(config: StreamflowOpsConfig, now: datetime | None = None) -> list[CheckResult]:
    """Every flink.* check; `now` is injectable so the age bands can be tested on real payloads."""
    return run_guarded(config, FAMILY.specs, lambda: _run(config, utcnow(now)))


def _run(config: StreamflowOpsConfig, now: datetime) -> list[CheckResult]:
    cfg = config.flink
    rest = FlinkRest.from_config(cfg)
    view, name = JobView(rest, cfg.job_name), cfg.job_name
    checks = {
        ev.JOB_RUNNING: lambda: ev.evaluate_job_running(view.jobs, name),
        ev.CHECKPOINT_AGE: lambda: ev.evaluate_checkpoint_age(view.target, view.checkpoints, name, cfg, now),
        ev.CHECKPOINT_FAILURES: lambda: ev.evaluate_checkpoint_failures(view.target, view.checkpoints,
                                                                        view.checkpoint_config, name),
        ev.BACKPRESSURE: lambda: _backpressure(view, cfg.backpressure_warning_ratio),
        ev.TASKMANAGERS: lambda: ev.evaluate_taskmanagers(rest.overview(), cfg.expected_taskmanagers),
    }
    results: list[CheckResult] = []
    for check, probe in checks.items():
        results += check.guarded(probe, subject="" if check is ev.TASKMANAGERS else name)
    return results


def _backpressure(view: JobView, warning_ratio: float) -> CheckResult:
    running = view.target is not None and view.target.get("state") == "RUNNING"
    samples = view.backpressure() if running else {}
    return ev.evaluate_backpressure(view.target, view.vertices if running else [], samples, view.job_name,
                                    warning_ratio)


def job_running(config: StreamflowOpsConfig) -> CheckResult:
    """flink.job_running alone (the maintenance preflight's service check); a REST failure is unknown."""
    cfg = config.flink
    rest = FlinkRest.from_config(cfg)
    return ev.JOB_RUNNING.guarded(lambda: ev.evaluate_job_running(rest.jobs(), cfg.job_name), subject=cfg.job_name)[0]


FAMILY = register(Family("flink", run_checks))
