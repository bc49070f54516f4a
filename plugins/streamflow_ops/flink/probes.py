"""Reads of the Flink JobManager REST API (connection `streamflow_flink`) through HttpHook.

Short timeouts and one retry per request; an HTTP error or a non-JSON answer raises ProbeError naming
the URL and status, which the checks report as `unknown`. Payloads are returned as Flink sends them:
the evaluators read Flink's own field names.
"""
from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from streamflow_ops.config import FlinkConfig
from streamflow_ops.flink.evaluators import (
    NOT_SAMPLED, Freshness, checkpoint_freshness, not_sampled, select_job,
)
from streamflow_ops.http_probe import HttpJson
from streamflow_ops.results import describe_error
from streamflow_ops.timeutil import utcnow


class FlinkRest:
    """One client per check run (or trigger poll): a dead JobManager costs one timeout, not one per call."""

    def __init__(self, conn_id: str, connect_timeout_s: float = 3, request_timeout_s: float = 10,
                 resample_wait_s: float = 5) -> None:
        self.http = HttpJson(conn_id, connect_timeout_s, request_timeout_s, retries=1)
        self.resample_wait_s = resample_wait_s

    @classmethod
    def from_config(cls, cfg: FlinkConfig) -> FlinkRest:
        return cls(cfg.conn_id, cfg.connect_timeout_s, cfg.request_timeout_s, cfg.backpressure_resample_wait_s)

    def _get(self, endpoint: str, **kwargs: Any) -> Any:
        return self.http.get(endpoint, **kwargs)[1]

    def jobs(self) -> list[dict[str, Any]]:
        """/jobs/overview: every job with jid, name, state and start-time (plain /jobs has no names)."""
        return list(self._get("/jobs/overview")["jobs"])

    def job(self, job_id: str) -> dict[str, Any]:
        """/jobs/<id>: state, timestamps and the vertices (ids and names)."""
        return self._get(f"/jobs/{job_id}")

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        """/jobs/<id>/checkpoints: counts, latest {completed, failed, ...} and history."""
        return self._get(f"/jobs/{job_id}/checkpoints")

    def exceptions(self, job_id: str) -> dict[str, Any]:
        """/jobs/<id>/exceptions: the exception history (root causes, newest first)."""
        return self._get(f"/jobs/{job_id}/exceptions")

    def checkpoint_config(self, job_id: str) -> dict[str, Any]:
        """/jobs/<id>/checkpoints/config: interval and timeout in ms."""
        return self._get(f"/jobs/{job_id}/checkpoints/config")

    def overview(self) -> dict[str, Any]:
        """/overview: taskmanagers, slots and job counts of the cluster."""
        return self._get("/overview")

    def backpressure(self, job_id: str, vertex_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each vertex's /backpressure answer. Vertices not sampled yet are asked once more after one
        shared pause; a vertex still unsampled then keeps its "deprecated" answer (read as unknown)."""
        samples = {vid: self._vertex_backpressure(job_id, vid) for vid in vertex_ids}
        pending = [vid for vid, sample in samples.items() if not_sampled(sample)]
        if pending:
            time.sleep(self.resample_wait_s)
            samples.update({vid: self._vertex_backpressure(job_id, vid) for vid in pending})
        return samples

    def _vertex_backpressure(self, job_id: str, vertex_id: str) -> dict[str, Any]:
        # Flink 2.3 answers HTTP 500 "NoSuchElementException: No value present" instead of the
        # "deprecated" status when a vertex has no backpressure metrics yet: both mean "not sampled".
        status, body = self.http.get(f"/jobs/{job_id}/vertices/{vertex_id}/backpressure", accept=(500,))
        if status == 500:
            errors = " ".join(body.get("errors", [])) if isinstance(body, dict) else str(body)
            if "NoSuchElementException" not in errors:
                return {"status": "error", "error": f"HTTP 500: {errors[:200]}"}
            return {"status": NOT_SAMPLED}
        return body


class JobView:
    """The configured job as one check run sees it: each REST read happens once, on first use."""

    def __init__(self, rest: FlinkRest, job_name: str) -> None:
        self.rest = rest
        self.job_name = job_name

    @cached_property
    def jobs(self) -> list[dict[str, Any]]:
        return self.rest.jobs()

    @cached_property
    def target(self) -> dict[str, Any] | None:
        """The /jobs/overview entry of the job the checks judge (see select_job), or None."""
        return select_job(self.jobs, self.job_name)

    @cached_property
    def checkpoints(self) -> dict[str, Any] | None:
        return self.rest.checkpoints(self.target["jid"]) if self.target else None

    @cached_property
    def checkpoint_config(self) -> dict[str, Any] | None:
        return self.rest.checkpoint_config(self.target["jid"]) if self.target else None

    @cached_property
    def vertices(self) -> list[dict[str, Any]]:
        return list(self.rest.job(self.target["jid"]).get("vertices", [])) if self.target else []

    def backpressure(self) -> dict[str, dict[str, Any]]:
        return self.rest.backpressure(self.target["jid"], [v["id"] for v in self.vertices])


def read_freshness(conn_id: str, job_name: str, max_age_s: float | None, triggered_after_ms: float | None,
                   connect_timeout_s: float, request_timeout_s: float) -> tuple[Freshness | None, str | None]:
    """The sensor's and the trigger's one poll, on a client of its own: (the named job's checkpoints judged
    by checkpoint_freshness, None), or (None, why not). Never raises: a failed read only means "not yet"."""
    now = utcnow()
    try:
        rest = FlinkRest(conn_id, connect_timeout_s, request_timeout_s)
        job = select_job(rest.jobs(), job_name)
        if job is None:
            raise LookupError(f"no job named {job_name} on the JobManager")
        return checkpoint_freshness(rest.checkpoints(job["jid"]), now, max_age_s, triggered_after_ms), None
    except Exception as exc:  # noqa: BLE001 - retried by the caller until its deadline
        return None, describe_error(exc)
