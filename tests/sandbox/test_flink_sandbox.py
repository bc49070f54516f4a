"""The Flink sandbox against a real local cluster: start, checkpoints, failing checkpoints, cancel, stop.

Runs its own cluster in a temporary profile (own data dir; base + 6 of the session's profile: Flink
base+29/30/87, used by nothing else), not the session fixture's.
"""
from __future__ import annotations

import pytest
import requests

from sandbox import flink
from sandbox.proc import Layout, SandboxError, group_alive, port_in_use, running_group, wait_until

pytestmark = pytest.mark.flink


@pytest.fixture(scope="module")
def layout(tmp_path_factory, sandbox_layout):
    # A private profile on its own ports: never the session's shared cluster.
    layout = Layout(root=tmp_path_factory.mktemp("flink-sandbox"), port_base=sandbox_layout.port_base + 6)
    flink.start(layout)
    yield layout
    flink.stop(layout)


def _get(layout: Layout, path: str) -> dict:
    response = requests.get(flink.rest_url(layout) + path, timeout=10)
    response.raise_for_status()
    return response.json()


def _pgids(layout: Layout) -> list[int]:
    svc = layout.service_dir("flink")
    return [running_group(svc / "jobmanager.pid"), running_group(svc / "taskmanager.pid")]


def test_start_leaves_fraud_job_running_with_a_completed_checkpoint(layout):
    jobs = [job for job in flink.running_jobs(layout) if job["name"] == flink.JOB_NAME]

    assert len(jobs) == 1
    assert _get(layout, f"/jobs/{jobs[0]['jid']}/checkpoints")["counts"]["completed"] >= 1
    config = _get(layout, f"/jobs/{jobs[0]['jid']}/checkpoints/config")
    assert config["state_backend"] == "HashMapStateBackend"
    assert config["checkpoint_storage"] == "FileSystemCheckpointStorage"
    assert any((layout.root / "flink" / "checkpoints" / jobs[0]["jid"]).glob("chk-*"))
    assert flink.status(layout).startswith("flink: running")
    assert f"{flink.JOB_NAME} RUNNING" in flink.status(layout)


def test_start_again_reuses_cluster_and_job(layout):
    before_jobs = {job["jid"] for job in flink.running_jobs(layout)}
    before_pgids = _pgids(layout)

    flink.start(layout)

    assert {job["jid"] for job in flink.running_jobs(layout)} == before_jobs
    assert _pgids(layout) == before_pgids


def test_slow_snapshots_make_checkpoints_fail_until_cancelled(layout):
    job_id = flink.submit_job(layout, name="SlowSnapshotJob", checkpoint_interval_ms=500,
                              checkpoint_timeout_ms=1000, snapshot_delay_ms=3000)
    log = layout.root / "flink" / "jobmanager.log"
    wait_until(lambda: _get(layout, f"/jobs/{job_id}")["state"] == "RUNNING", 60, "job start", log)
    failed_at_start = _get(layout, f"/jobs/{job_id}/checkpoints")["counts"]["failed"]

    wait_until(lambda: _get(layout, f"/jobs/{job_id}/checkpoints")["counts"]["failed"]
               >= failed_at_start + 2, 60, "checkpoint expiry", log)

    checkpoints = _get(layout, f"/jobs/{job_id}/checkpoints")
    assert checkpoints["counts"]["completed"] == 0
    assert _get(layout, f"/jobs/{job_id}")["state"] == "RUNNING"
    assert "SlowSnapshotJob" in {job["name"] for job in flink.running_jobs(layout)}

    flink.cancel_job(layout, job_id)

    assert _get(layout, f"/jobs/{job_id}")["state"] == "CANCELED"
    assert job_id not in {job["jid"] for job in flink.running_jobs(layout)}


def test_stop_leaves_no_process_and_frees_ports(layout):
    pgids = _pgids(layout)
    assert all(pgid is not None for pgid in pgids)

    flink.stop(layout)

    assert not any(group_alive(pgid) for pgid in pgids)
    assert flink.status(layout) == "flink: stopped"
    assert not any(port_in_use(port) for port in
                   (layout.flink_rest_port, layout.flink_rpc_port, layout.flink_blob_port))


def test_missing_java_is_one_actionable_error(tmp_path, monkeypatch, sandbox_layout):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(SandboxError, match=r"java not found: install a JDK 17 \(apt-get install"):
        flink.start(Layout(root=tmp_path, port_base=sandbox_layout.port_base + 6))
