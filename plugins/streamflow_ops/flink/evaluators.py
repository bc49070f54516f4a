"""Pure verdicts on Flink REST payloads (as the JobManager sends them) and a given `now`.

Flink timestamps are epoch milliseconds. No I/O here: the probe reads, these judge, so every band is
unit-tested with real payloads and a shifted clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from streamflow_ops.config import FlinkConfig
from streamflow_ops.http_probe import shorten
from streamflow_ops.results import CheckResult, Status, banded
from streamflow_ops import registry
from streamflow_ops.registry import CheckSpec
from streamflow_ops.timeutil import human_duration

JOB_RUNNING = registry.FLINK_JOB_RUNNING
CHECKPOINT_AGE = registry.FLINK_CHECKPOINT_AGE
CHECKPOINT_FAILURES = registry.FLINK_CHECKPOINT_FAILURES
BACKPRESSURE = registry.FLINK_BACKPRESSURE
TASKMANAGERS = registry.FLINK_TASKMANAGERS

TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED"})
# Starting up or being reconciled: not yet processing, but on its way to RUNNING.
STARTING_STATES = frozenset({"CREATED", "INITIALIZING", "RECONCILING", "RESTARTING"})
NOT_SAMPLED = "deprecated"  # Flink's backpressure status for "no sample yet, ask again"


def _result(spec: CheckSpec, status: Status, message: str, job_name: str, **kwargs: Any) -> CheckResult:
    return spec.result(status, message, subject=job_name, **kwargs)


def _ms_to_dt(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def _stamp(ms: float) -> str:
    return _ms_to_dt(ms).isoformat(timespec="seconds")


def _age_s(now: datetime, ms: float) -> float:
    return now.timestamp() - ms / 1000


# --- flink.job_running ------------------------------------------------------------------------------

def select_job(jobs: list[dict[str, Any]], job_name: str) -> dict[str, Any] | None:
    """The job the checks judge among those named `job_name`: the newest live one, else the newest
    ended one (so a cancelled job is reported as CANCELED rather than absent), else None."""
    named = sorted((j for j in jobs if j.get("name") == job_name), key=lambda j: j.get("start-time", 0),
                   reverse=True)
    live = [j for j in named if j.get("state") not in TERMINAL_STATES]
    return (live or named or [None])[0]


def evaluate_job_running(jobs: list[dict[str, Any]], job_name: str) -> CheckResult:
    """RUNNING ok; starting or RESTARTING warning; FAILED, CANCELED, other ended states, or absent critical."""
    job = select_job(jobs, job_name)
    if job is None:
        live = sorted({j.get("name", "?") for j in jobs if j.get("state") not in TERMINAL_STATES})
        seen = ", ".join(live[:10]) + (f" and {len(live) - 10} more" if len(live) > 10 else "") or "none"
        return _result(JOB_RUNNING, Status.CRITICAL, job_name=job_name,
                       message=f"FlinkJobNotRunning: no job named {job_name} on the JobManager (live jobs: {seen})",
                       step="resubmit the job from its last checkpoint or savepoint (remediate_flink_restart)")
    state, jid = job.get("state", "?"), job.get("jid", "?")
    named = sum(1 for j in jobs if j.get("name") == job_name)
    others = f" ({named} jobs with this name, newest live one judged)" if named > 1 else ""
    details = {"job_id": jid, "state": state, "start_time_ms": job.get("start-time")}
    if state == "RUNNING":
        return _result(JOB_RUNNING, Status.OK, f"{job_name} ({jid}) is RUNNING{others}", job_name, details=details)
    if state in STARTING_STATES:
        return _result(JOB_RUNNING, Status.WARNING, job_name=job_name, details=details,
                       message=f"{job_name} ({jid}) is {state}{others}",
                       step=f"if it keeps restarting, read the JobManager log and /jobs/{jid}/exceptions for the cause")
    return _result(JOB_RUNNING, Status.CRITICAL, job_name=job_name, details=details,
                   message=f"FlinkJobNotRunning: {job_name} ({jid}) is {state}{others}",
                   step=f"read the JobManager log and /jobs/{jid}/exceptions for the cause, then restart the job "
                        f"from its last checkpoint (remediate_flink_restart)")


# --- flink.checkpoint_age -----------------------------------------------------------------------------

def _latest(checkpoints: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    return ((checkpoints or {}).get("latest") or {}).get(kind)


def _failure_hint(checkpoints: dict[str, Any] | None) -> str:
    failed = _latest(checkpoints, "failed")
    if not failed:
        return ""
    return f"; latest failure: checkpoint {failed.get('id')}: {shorten(failed.get('failure_message') or 'no message', 200)}"


def evaluate_checkpoint_age(job: dict[str, Any] | None, checkpoints: dict[str, Any] | None, job_name: str,
                            cfg: FlinkConfig, now: datetime) -> CheckResult:
    """now - latest completed checkpoint's last ack, banded (>= warning, >= critical).

    With no completed checkpoint ever, the age is undefined, so the job's run time decides: its first
    checkpoint is due while the job is younger than the warning age, overdue (warning) until the critical
    age, and from then on "none ever" is critical (SPEC). A job whose start time Flink does not report
    is unknown: we cannot say the first checkpoint is still due. No job at all: nothing is checkpointed.
    """
    threshold = (f"warning >= {cfg.checkpoint_warning_s} s, critical >= {cfg.checkpoint_critical_s} s "
                 f"or none since the job started >= {cfg.checkpoint_critical_s} s ago")
    if job is None:
        return _result(CHECKPOINT_AGE, Status.CRITICAL, job_name=job_name, threshold=threshold,
                       message=f"no job named {job_name}, so nothing is checkpointing its state (see flink.job_running)")
    jid, state = job.get("jid", "?"), job.get("state", "?")
    stopped = "" if state == "RUNNING" else f" (job is {state})"
    completed = _latest(checkpoints, "completed")
    details = {"job_id": jid, "checkpoint_id": completed.get("id") if completed else None}
    if completed:
        age = _age_s(now, completed["latest_ack_timestamp"])
        status = banded(age, cfg.checkpoint_warning_s, cfg.checkpoint_critical_s)
        message = (f"last completed checkpoint {completed.get('id')} was {human_duration(age)} ago "
                   f"(acknowledged {_stamp(completed['latest_ack_timestamp'])}){stopped}")
        details["age_s"] = round(age, 1)
    else:
        started_ms = job.get("start-time")
        if not isinstance(started_ms, (int, float)) or started_ms <= 0:
            return _result(CHECKPOINT_AGE, Status.UNKNOWN, job_name=job_name, threshold=threshold, details=details,
                           message=f"no completed checkpoint and Flink reports no start time for job {jid}: "
                                   f"cannot tell whether its first checkpoint is overdue")
        ran_s = _age_s(now, started_ms)
        status = banded(ran_s, cfg.checkpoint_warning_s, cfg.checkpoint_critical_s)
        message = (f"no completed checkpoint ever; the job started {human_duration(ran_s)} ago{stopped}"
                   + (", its first checkpoint is still due" if status is Status.OK else ""))
        details["job_running_s"] = round(ran_s, 1)
        age = None
    if status is not Status.OK:
        message = "FlinkCheckpointFailing: " + message + _failure_hint(checkpoints)
    return _result(CHECKPOINT_AGE, status, message, job_name, value=None if age is None else round(age, 1),
                   threshold=threshold, details=details,
                   step=f"read the checkpoint statistics and state size (/jobs/{jid}/checkpoints); if checkpoints "
                        f"expire, raise the checkpoint timeout")


# --- flink.checkpoint_failures -------------------------------------------------------------------------

def evaluate_checkpoint_failures(job: dict[str, Any] | None, checkpoints: dict[str, Any] | None,
                                 checkpoint_config: dict[str, Any] | None, job_name: str) -> CheckResult:
    """A failed checkpoint newer than the last completed one is a warning quoting Flink's failure message.

    The failure Flink counts right after start (a checkpoint triggered before every task ran) never gets
    a `latest.failed` entry, so counts.failed > 0 with nothing in latest.failed is not reported.
    """
    if job is None:
        return _result(CHECKPOINT_FAILURES, Status.UNKNOWN, job_name=job_name,
                       message=f"no job named {job_name}: no checkpoints to judge (see flink.job_running)")
    jid = job.get("jid", "?")
    counts = (checkpoints or {}).get("counts") or {}
    completed, failed = _latest(checkpoints, "completed"), _latest(checkpoints, "failed")
    details = {"job_id": jid, "counts": counts}
    if failed is None or (completed is not None and failed["id"] < completed["id"]):
        since = f" since checkpoint {completed['id']}" if completed else ""
        older = f" ({counts.get('failed', 0)} failed in total, all older)" if counts.get("failed") else ""
        return _result(CHECKPOINT_FAILURES, Status.OK, f"no failed checkpoint{since}{older}", job_name,
                       details=details)
    newer = [h for h in (checkpoints or {}).get("history", [])
             if h.get("status") == "FAILED" and (completed is None or h.get("id", 0) > completed["id"])]
    count = max(len(newer), 1)
    reason = shorten(failed.get("failure_message") or "no failure message", 300)
    timeout_ms = (checkpoint_config or {}).get("timeout")
    timeout = f" (checkpoint timeout {human_duration(timeout_ms / 1000)})" if timeout_ms else ""
    since = f"since the last completed checkpoint {completed['id']}" if completed else "and none ever completed"
    details |= {"failed_checkpoint_id": failed["id"], "failure_message": failed.get("failure_message"),
                "failure_time": _stamp(failed["failure_timestamp"]) if failed.get("failure_timestamp") else None}
    return _result(CHECKPOINT_FAILURES, Status.WARNING, job_name=job_name, value=count, details=details,
                   threshold="any failure newer than the last completed checkpoint",
                   message=f"FlinkCheckpointFailing: {count} checkpoint(s) failed {since}; latest, "
                           f"checkpoint {failed['id']}: \"{reason}\"{timeout} (slowest subtask: "
                           f"/jobs/{jid}/checkpoints/details/{failed['id']})")


# --- flink.backpressure ----------------------------------------------------------------------------

def not_sampled(sample: dict[str, Any]) -> bool:
    return sample.get("status") == NOT_SAMPLED


def _ratio(sample: dict[str, Any], key: str) -> float:
    return max((float(s.get(key) or 0) for s in sample.get("subtasks", [])), default=0.0)


def evaluate_backpressure(job: dict[str, Any] | None, vertices: list[dict[str, Any]],
                          samples: dict[str, dict[str, Any]], job_name: str, warning_ratio: float) -> CheckResult:
    """Any vertex's backpressure ratio above `warning_ratio` is a warning naming the busiest vertex,
    where the slowness usually is (the backpressured vertices are upstream of it). Vertices still not
    sampled after the probe's second poll make the check unknown unless another is already over."""
    threshold = f"warning > {warning_ratio:.0%}"
    if job is None or job.get("state") != "RUNNING":
        state = "absent" if job is None else f"{job.get('state')}"
        return _result(BACKPRESSURE, Status.UNKNOWN, job_name=job_name, threshold=threshold,
                       message=f"{job_name} is {state}: no backpressure to sample (see flink.job_running)")
    names = {v["id"]: v.get("name", v["id"]) for v in vertices}
    sampled = {vid: s for vid, s in samples.items() if s.get("status") == "ok"}
    unsampled = [names.get(vid, vid) for vid in samples if vid not in sampled]
    pressure = {vid: _ratio(s, "ratio") for vid, s in sampled.items()}
    busy = {vid: _ratio(s, "busyRatio") for vid, s in sampled.items()}
    worst_vid = max(pressure, key=pressure.get, default=None)
    details = {"job_id": job.get("jid"), "backpressure": {names.get(v, v): r for v, r in pressure.items()},
               "busy": {names.get(v, v): r for v, r in busy.items()}, "not_sampled": unsampled}
    worst = pressure.get(worst_vid, 0.0)
    if worst > warning_ratio:
        slowest = max(busy, key=busy.get)
        return _result(BACKPRESSURE, Status.WARNING, job_name=job_name, value=worst, threshold=threshold,
                       details=details,
                       message=f"vertex '{names.get(worst_vid)}' is backpressured {worst:.0%} of the time; "
                               f"slowest vertex: '{names.get(slowest)}' (busy {busy[slowest]:.0%})",
                       step=f"speed up or scale out '{names.get(slowest)}': scale up the TaskManagers "
                            f"(remediate_flink_taskmanagers)")
    if unsampled or not samples:
        what = ", ".join(unsampled) or "no vertices"
        return _result(BACKPRESSURE, Status.UNKNOWN, job_name=job_name, threshold=threshold, details=details,
                       message=f"backpressure not sampled for {what} after a second poll: state unknown "
                               f"(the JobManager's metric fetcher has no sample yet)")
    return _result(BACKPRESSURE, Status.OK, job_name=job_name, value=worst, threshold=threshold, details=details,
                   message=f"every vertex <= {warning_ratio:.0%} backpressured (highest {worst:.0%}, "
                           f"'{names.get(worst_vid)}')")


# --- flink.taskmanagers ------------------------------------------------------------------------------

def evaluate_taskmanagers(overview: dict[str, Any], expected: int) -> CheckResult:
    """TaskManagers registered with the JobManager against the expected count."""
    count = int(overview.get("taskmanagers", 0))
    slots = f"{overview.get('slots-available', '?')}/{overview.get('slots-total', '?')} slots free"
    status = Status.OK if count >= expected else Status.WARNING if count > 0 else Status.CRITICAL
    return TASKMANAGERS.result(status, f"{count} of {expected} TaskManagers registered ({slots})", value=count,
                               threshold=f">= {expected}", details=dict(overview))


# --- FlinkCheckpointAgeSensor -------------------------------------------------------------------------

@dataclass(frozen=True)
class Freshness:
    """What the sensor saw on one poll: is the wanted checkpoint there, and what to say if not."""

    satisfied: bool
    checkpoint_id: int | None = None
    age_s: float | None = None
    failure_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"satisfied": self.satisfied, "checkpoint_id": self.checkpoint_id, "age_s": self.age_s,
                "failure_message": self.failure_message}


def checkpoint_freshness(checkpoints: dict[str, Any], now: datetime, max_age_s: float | None = None,
                         triggered_after_ms: float | None = None) -> Freshness:
    """Satisfied when the latest completed checkpoint is younger than `max_age_s` (if given) and was
    triggered at or after `triggered_after_ms` (if given): "a fresh checkpoint from now on"."""
    completed = _latest(checkpoints, "completed")
    failed = _latest(checkpoints, "failed")
    failure = failed.get("failure_message") if failed and (not completed or failed["id"] > completed["id"]) else None
    if not completed:
        return Freshness(False, failure_message=failure)
    age = _age_s(now, completed["latest_ack_timestamp"])
    satisfied = ((max_age_s is None or age <= max_age_s)
                 and (triggered_after_ms is None or completed["trigger_timestamp"] >= triggered_after_ms))
    return Freshness(satisfied, completed["id"], round(age, 1), failure)


def describe_wanted(max_age_s: float | None, triggered_after_ms: float | None) -> str:
    parts = [f"younger than {human_duration(max_age_s)}" if max_age_s is not None else "",
             f"triggered after {_stamp(triggered_after_ms)}" if triggered_after_ms is not None else ""]
    return " and ".join(p for p in parts if p) or "any"


def sensor_timeout_message(job_name: str, last: Freshness | None, wanted: str, waited_s: float,
                           error: str | None = None) -> str:
    """Why FlinkCheckpointAgeSensor gave up: the last checkpoint's age and the latest failure message."""
    if last is None:
        seen = "checkpoints never read"
    elif last.checkpoint_id is None:
        seen = "no completed checkpoint at all"
    else:
        seen = f"last completed checkpoint {last.checkpoint_id} is {human_duration(last.age_s or 0)} old"
    message = f"no completed checkpoint of {job_name} {wanted} after {human_duration(waited_s)}: {seen}"
    if last is not None and last.failure_message:
        message += f"; latest failure: {shorten(last.failure_message, 300)}"
    if error:
        message += f"; last read error: {error}"
    return message + f"; runbook: {CHECKPOINT_AGE.runbook}"
