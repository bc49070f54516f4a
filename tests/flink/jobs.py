"""Test jobs of our own on the shared sandbox Flink: the shared FraudDetectionJob is never touched."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from sandbox import flink
from sandbox.proc import Layout
from tests.polling import wait_for

# Every checkpoint sleeps 10 s in snapshotState but may take only 3 s: each one expires, the job runs on.
EXPIRING = {"checkpoint_timeout_ms": 3000, "snapshot_delay_ms": 10000}


def unique_name(prefix: str) -> str:
    return f"flinkchecks-{prefix}-{uuid.uuid4().hex[:6]}"


def rest(layout: Layout, path: str) -> Any:
    return requests.get(flink.rest_url(layout) + path, timeout=10).json()


@contextmanager
def own_job(layout: Layout, prefix: str, **settings: Any) -> Iterator[tuple[str, str]]:
    """(name, job id) of a freshly submitted RUNNING job, cancelled afterwards (the cluster has 4 slots)."""
    name = unique_name(prefix)
    job_id = flink.submit_job(layout, name=name, **settings)
    try:
        wait_for(f"{name} RUNNING", lambda: rest(layout, f"/jobs/{job_id}")["state"] == "RUNNING")
        yield name, job_id
    finally:
        flink.cancel_job(layout, job_id)


def failed_checkpoints(layout: Layout, job_id: str, at_least: int = 2) -> dict:
    """The job's /checkpoints once `at_least` checkpoints have expired (latest.failed is set)."""
    def ready():
        payload = rest(layout, f"/jobs/{job_id}/checkpoints")
        failed = (payload.get("latest") or {}).get("failed")
        return payload if failed and failed["id"] >= at_least else None
    return wait_for(f"{at_least} expired checkpoints of {job_id}", ready)
