"""A remediation run's report: every way a run can end, and its post to #streamflow-alerts."""
from __future__ import annotations

import pytest

from streamflow_ops.config import load_config
from streamflow_ops.remediation.plans import Plan
from streamflow_ops.remediation.report import build_report, post_report
from streamflow_ops.remediation.runner import REMEDIATIONS
from tests.health.fake_alerts import alert_far_ends

REMEDIATION = REMEDIATIONS["remediate_restart_workload"]
PLAN = Plan("rollout_restart", "streamflow-processing/Deployment/flink-taskmanager", ["set the annotation"],
            [{"namespace": "streamflow-processing", "kind": "Deployment", "name": "flink-taskmanager"}])
PLANNED = {"plan": PLAN.to_dict(), "before": [], "dry_run": False}
ADMIN = {"id": "admin", "name": "admin"}


def report(planned=PLANNED, refused=None, approval=None, acted=None, verified=None):
    return build_report(REMEDIATION, {"dry_run": planned["dry_run"] if planned else False}, "manual__1", planned,
                        refused, approval, acted, verified)


@pytest.mark.parametrize("kwargs, outcome, headline", [
    ({"refused": "x is not in remediation.restartable_workloads", "planned": None}, "refused",
     "refused: x is not in remediation.restartable_workloads"),
    ({"planned": None}, "failed", "could not plan (see the plan task's log); nothing done"),
    ({"planned": {**PLANNED, "dry_run": True}}, "dry_run", "dry run: would do 1 thing(s); nothing done"),
    ({"planned": {**PLANNED, "plan": Plan("rollout_restart", "t", []).to_dict()}}, "nothing_to_do", "nothing to do"),
    ({}, "failed", "the approval step did not complete; nothing done"),
    ({"approval": {"chosen_options": ["Reject"], "responded_by_user": None}}, "timed_out",
     "not approved in time (the approval defaults to Reject); nothing done"),
    ({"approval": {"chosen_options": ["Reject"], "responded_by_user": ADMIN}}, "rejected",
     "rejected by admin; nothing done"),
    ({"approval": {"chosen_options": ["Approve"], "responded_by_user": ADMIN}}, "failed",
     "approved, but the action failed (see the act task's log and the audit row)"),
    ({"approval": {"chosen_options": ["Approve"], "responded_by_user": ADMIN}, "acted": {"rows_affected": 1},
      "verified": {"lines": ["kubernetes.pods [streamflow-processing]: warning -> ok: all running"]}}, "done",
     "done (approved by admin)"),
])
def test_every_ending_has_its_outcome(kwargs, outcome, headline):
    built = report(**kwargs)
    assert (built["outcome"], built["headline"]) == (outcome, headline)
    assert built["text"].startswith(f"remediate_restart_workload: {headline}")


def test_the_done_report_carries_plan_outcome_and_before_after():
    built = report(approval={"chosen_options": ["Approve"], "responded_by_user": ADMIN}, acted={"rows_affected": 1},
                   verified={"lines": ["kubernetes.pods [streamflow-processing]: warning -> ok: all running"]})
    assert built["text"].splitlines()[1:] == [
        *PLAN.text().splitlines(), "outcome: rows_affected=1", "before -> after:",
        "kubernetes.pods [streamflow-processing]: warning -> ok: all running"]


def test_posted_to_slack_through_the_alerting_sender(monkeypatch):
    built = report(approval={"chosen_options": ["Reject"], "responded_by_user": ADMIN})
    config = load_config()
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", raising=False)
    assert post_report(config, built) == "not posted: connection slack_streamflow_alerts is not defined"
    with alert_far_ends(monkeypatch) as (slack_api, _):
        assert post_report(config, built) == "posted to #streamflow-alerts"
        [post] = slack_api.calls("POST")
    body = post.json()
    assert body["text"] == "remediate_restart_workload: rejected by admin; nothing done"
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": f"*{body['text']}*"}}
    assert body["blocks"][1]["text"]["text"] == PLAN.text()
    assert body["blocks"][2] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "run `manual__1`"}]}
