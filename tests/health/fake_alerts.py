"""Slack and PagerDuty far ends for alerting tests: FakeApi servers plus the connections that point
the real provider hooks at them (Slack: host with a scheme; PagerDuty: host as the Events API base URL)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

from tests.fakes.http_api import FakeApi
from tests.fakes.payloads import load

PD_ROUTING_KEY = "0123456789abcdef0123456789abcdef"
SLACK_TOKEN = "T0001/B0001/XXXXXXXX"


def slack_answer(name: str) -> tuple[int, bytes]:
    answer = load("slack", "webhook_responses")[name]
    return answer["status"], answer["body"].encode()


@contextmanager
def alert_far_ends(monkeypatch) -> Iterator[tuple[FakeApi, FakeApi]]:
    with FakeApi() as slack_api, FakeApi() as pd_api:
        slack_api.route("POST", r"/services/T0001/B0001/.*", lambda req: slack_answer("ok"))
        pd_api.route("POST", r"/v2/enqueue", lambda req: (202, {**load("pagerduty", "enqueue_accepted"),
                                                                 "dedup_key": req.json().get("dedup_key")}))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": f"{slack_api.url}/services", "password": SLACK_TOKEN}))
        monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_STREAMFLOW", json.dumps(
            {"conn_type": "pagerduty", "host": pd_api.url, "password": PD_ROUTING_KEY}))
        yield slack_api, pd_api


def accepted(pd_api) -> list[tuple[str, str]]:
    """PagerDuty events the far end accepted (202), in order."""
    return [(body["event_action"], body["dedup_key"]) for code, body in pd_api.answered if code == 202]


def posts(slack_api) -> list[dict]:
    """Slack messages the far end accepted (200)."""
    return [body for code, body in slack_api.answered if code == 200]


def codes(api) -> list[int]:
    return [code for code, _ in api.answered]


def answering(api, ok, fail, failures: int):
    """Answer `fail` to the next `failures` requests, then `ok`; record (status, request body) on api.answered."""
    api.answered = getattr(api, "answered", [])
    start = len(api.answered)

    def answer(request):
        status, body = fail(request) if len(api.answered) - start < failures else ok(request)
        api.answered.append((status, request.json()))
        return status, body
    return answer


def pd_ok(request):
    return 202, {**load("pagerduty", "enqueue_accepted"), "dedup_key": request.json().get("dedup_key")}


def pd_500(request):
    return 500, {"status": "error", "message": "internal error"}


def slack_ok(request):
    return slack_answer("ok")


def slack_500(request):
    return slack_answer("rollup_error")


def failing(far_ends, pd_failures=0, slack_failures=0):
    slack_api, pd_api = far_ends
    pd_api.route("POST", r"/v2/enqueue", answering(pd_api, pd_ok, pd_500, pd_failures))
    slack_api.route("POST", r"/services/.*", answering(slack_api, slack_ok, slack_500, slack_failures))
    return slack_api, pd_api


def pd_actions(pd_api: FakeApi) -> list[tuple[str, str]]:
    return [(r.json()["event_action"], r.json()["dedup_key"]) for r in pd_api.calls("POST", "/v2/enqueue")]
