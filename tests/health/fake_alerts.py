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


def pd_actions(pd_api: FakeApi) -> list[tuple[str, str]]:
    return [(r.json()["event_action"], r.json()["dedup_key"]) for r in pd_api.calls("POST", "/v2/enqueue")]
