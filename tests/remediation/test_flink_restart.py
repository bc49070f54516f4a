"""remediate_flink_restart on the real sandbox Flink (standalone): savepoint, cancel, resubmit from the
savepoint; the new job RUNNING and restored from exactly that savepoint. Lean: one restart."""
from __future__ import annotations

import httpx
import pytest

from sandbox import flink
from streamflow_ops.config import load_config
from streamflow_ops.remediation import runner

pytestmark = [pytest.mark.flink]


def rest(layout, path: str) -> dict:
    return httpx.get(f"{flink.rest_url(layout)}{path}", timeout=10).json()


def test_savepoint_then_restart_from_it(flink_service, sandbox_connections, tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)  # standalone: no operator
    layout = flink_service
    [old] = [j for j in flink.running_jobs(layout) if j["name"] == flink.JOB_NAME]
    config = load_config({"remediation": {
        "flink_savepoint_dir": (tmp_path / "savepoints").as_uri(), "flink_entry_class": flink.MAIN_CLASS,
        "flink_program_args": ["--name", flink.JOB_NAME, "--checkpoint-interval-ms", "2000", "--rate", "50"],
        "flink_savepoint_timeout_s": 60, "flink_restart_timeout_s": 90}})

    plan = runner.plan_restart(config, {"dry_run": False})
    [item] = plan.items
    assert (item["mode"], item["job_id"], item["savepoint"]) == ("standalone", old["jid"], True)
    assert [s.split(" ")[0] for s in plan.steps] == ["trigger", "cancel", "resubmit"]

    outcome = runner.act_restart(config, plan, {"dry_run": False})

    assert rest(layout, f"/jobs/{old['jid']}")["state"] == "CANCELED"
    savepoint = rest(layout, f"/jobs/{old['jid']}/checkpoints")["latest"]["savepoint"]
    assert savepoint["external_path"] == outcome["savepoint"] == outcome["restored_from"]
    assert outcome["savepoint"].startswith((tmp_path / "savepoints").as_uri().replace("file:///", "file:/"))
    new = rest(layout, f"/jobs/{outcome['new_job_id']}")
    assert (new["name"], new["state"]) == (flink.JOB_NAME, "RUNNING")
    restored = rest(layout, f"/jobs/{outcome['new_job_id']}/checkpoints")["latest"]["restored"]
    assert (restored["id"], restored["external_path"], restored["is_savepoint"]) == (
        savepoint["id"], savepoint["external_path"], True)
    assert outcome["restored"]["id"] == savepoint["id"]
