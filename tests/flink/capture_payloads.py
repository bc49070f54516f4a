"""Re-capture tests/fakes/payloads/flink/*.json from a running sandbox Flink (the unit tests' inputs).

    STREAMFLOW_SANDBOX_PORT_BASE=... .venv/bin/python -m tests.flink.capture_payloads

Everything saved is exactly what the JobManager answered; the only edits the unit tests make to these
payloads happen in the tests themselves, in plain sight.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from sandbox import flink
from sandbox.proc import Layout
from tests.flink.jobs import EXPIRING, failed_checkpoints, own_job, rest
from tests.polling import wait_for

OUT = Path(__file__).resolve().parents[1] / "fakes" / "payloads" / "flink"


def save(name: str, payload) -> None:
    (OUT / f"{name}.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print("saved", name)


def first_backpressure_answer(layout: Layout, job_id: str, vertex_id: str) -> dict:
    """A vertex's very first /backpressure answer: Flink 2.3 fails it (500) until metrics exist."""
    answer = requests.get(f"{flink.rest_url(layout)}/jobs/{job_id}/vertices/{vertex_id}/backpressure", timeout=10)
    return {"http_status": answer.status_code, "body": answer.json()}


def main() -> None:
    layout = Layout.from_env()
    flink.start(layout)
    OUT.mkdir(parents=True, exist_ok=True)
    healthy = next(j for j in flink.running_jobs(layout) if j["name"] == flink.JOB_NAME)["jid"]
    job = rest(layout, f"/jobs/{healthy}")
    save("job_healthy", job)
    save("checkpoints_healthy", rest(layout, f"/jobs/{healthy}/checkpoints"))
    save("checkpoints_config_healthy", rest(layout, f"/jobs/{healthy}/checkpoints/config"))
    vertex = job["vertices"][0]["id"]
    sampled = f"/jobs/{healthy}/vertices/{vertex}/backpressure"
    wait_for("a backpressure sample", lambda: rest(layout, sampled).get("status") == "ok")
    save("backpressure_ok", rest(layout, sampled))
    save("overview", rest(layout, "/overview"))
    save("taskmanagers", rest(layout, "/taskmanagers"))

    with own_job(layout, "twice") as (name, first_id):
        pass  # cancelled on exit: the same name then runs again, newer
    with own_job(layout, "expiring", **EXPIRING) as (expiring_name, expiring_id):
        fresh = rest(layout, f"/jobs/{expiring_id}")
        save("backpressure_not_sampled", first_backpressure_answer(layout, expiring_id, fresh["vertices"][1]["id"]))
        save("checkpoints_expiring", failed_checkpoints(layout, expiring_id, at_least=3))
        save("checkpoints_config_expiring", rest(layout, f"/jobs/{expiring_id}/checkpoints/config"))
        flink.submit_job(layout, name=name)
        time.sleep(1)
        second = wait_for(f"{name} running again", lambda: [
            j for j in rest(layout, "/jobs/overview")["jobs"] if j["name"] == name and j["state"] == "RUNNING"])
        overview = rest(layout, "/jobs/overview")
        save("jobs_overview", overview)
        save("capture_names", {"twice": name, "expiring": expiring_name, "first_id": first_id,
                               "second_id": second[0]["jid"], "expiring_id": expiring_id,
                               "healthy_id": healthy})
        flink.cancel_job(layout, second[0]["jid"])


if __name__ == "__main__":
    main()
