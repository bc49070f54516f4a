"""A crafted warehouse for the weekly review: fraud alerts at chosen times around the reference time
(boundary rows exactly at the cutoffs), and a week of sweep results for the alert history."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import psycopg
import pytest

from tests.fakes.http_api import FakeApi

# The run's logical date: a whole hour a day ago, so the seeded silver rows (9 days) fill this week.
NOW = datetime.now(timezone.utc)
REFERENCE = (NOW - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
WEEK = timedelta(days=7)
MICRO = timedelta(microseconds=1)

# rule -> (alerts inside this week, alerts inside last week), away from the cutoffs.
RULES = {"velocity_check": (10, 4), "amount_threshold": (5, 5), "geo_anomaly": (1, 6), "blacklist_match": (3, 0),
         "exact_half": (6, 4), "gone_quiet": (0, 2)}
# Boundary rows of velocity_check: (created_at, which week it belongs to, or None for neither).
BOUNDARIES = [(REFERENCE, None), (REFERENCE - MICRO, "this"), (REFERENCE - WEEK, "this"),
              (REFERENCE - WEEK - MICRO, "last"), (REFERENCE - 2 * WEEK, "last"), (REFERENCE - 2 * WEEK - MICRO, None)]


def expected_counts() -> dict[str, tuple[int, int]]:
    """By hand from RULES and BOUNDARIES (the product's SQL is checked against this and against SQL)."""
    counts = {rule: list(weeks) for rule, weeks in RULES.items()}
    for _, week in BOUNDARIES:
        if week:
            counts["velocity_check"][0 if week == "this" else 1] += 1
    return {rule: (this, last) for rule, (this, last) in counts.items()}


def craft_fraud_alerts(dsn: str) -> None:
    rows = []
    for rule, (this, last) in RULES.items():
        rows += [(rule, REFERENCE - timedelta(hours=3 + 11 * i)) for i in range(this)]
        rows += [(rule, REFERENCE - WEEK - timedelta(hours=3 + 11 * i)) for i in range(last)]
    rows += [("velocity_check", at) for at, _ in BOUNDARIES]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from silver.fraud_alerts")
        with conn.cursor() as cur:
            cur.executemany("insert into silver.fraud_alerts (transaction_id, customer_id, rule_id, fraud_score, "
                            "created_at) values ('tx-crafted', 'c-1', %s, 0.9, %s)", rows)


# (check, subject, days before the reference time, status): two problems, told and resolved in the week.
LAG = ("kafka.consumer_lag", "flink-fraud-detector")
SWEEPS = [(*LAG, 6, "ok"), (*LAG, 5, "warning"), (*LAG, 4, "ok"), ("postgres.connections", "", 3, "critical"),
          ("postgres.connections", "", 2, "ok")]


# Offset samples of flink-fraud-detector, two partitions: (minutes after the week began, [(committed, log end)]).
# Between 0 and 10 min: 1,200 produced and 1,200 consumed (2/s each); between 10 and 20: 2,400 produced (4/s)
# and 4,800 consumed (8/s): headroom 2. A sample a minute before the week would add a 10/s input rate.
OFFSETS = [(-1, [(0, 0), (0, 0)]), (0, [(0, 300), (0, 300)]), (10, [(600, 900), (600, 900)]),
           (20, [(3000, 2100), (3000, 2100)])]


def craft_sweeps(dsn: str) -> None:
    from streamflow_ops.store import ensure_ops_schema

    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_ops_schema(conn)
        conn.cursor().executemany(
            "insert into ops.kafka_offset_samples values (%s, 'flink-fraud-detector', 'transactions.raw', %s, %s, %s)",
            [(REFERENCE - WEEK + timedelta(minutes=m), p, c, e)
             for m, rows in OFFSETS for p, (c, e) in enumerate(rows)])
        with conn.cursor() as cur:
            cur.executemany("insert into ops.health_check_results (sweep_id, checked_at, component, check_name,"
                            " subject, status, message, runbook)"
                            " values ('crafted', %s, 'x', %s, %s, %s, 'crafted', '')",
                            [(REFERENCE - timedelta(days=d), check, subject, status)
                             for check, subject, d, status in SWEEPS])


@pytest.fixture
def crafted_warehouse(warehouse_db):
    craft_fraud_alerts(warehouse_db)
    craft_sweeps(warehouse_db)
    return warehouse_db


class SlackApi:
    """A local Slack Web API stand-in: conversations.list, files.getUploadURLExternal, the upload URL and
    files.completeUploadExternal, answering with Slack's JSON shapes; records every upload's bytes."""

    CHANNEL_ID = "C0REVIEW01"

    def __init__(self, api: FakeApi):
        self.api, self.uploaded, self.completed = api, {}, []
        api.route("POST", r"/api/conversations\.list", lambda req: (200, {
            "ok": True, "channels": [{"id": "C0OTHER001", "name": "general"},
                                     {"id": self.CHANNEL_ID, "name": "streamflow-alerts"}],
            "response_metadata": {"next_cursor": ""}}))
        api.route("POST", r"/api/files\.getUploadURLExternal", self._upload_url)
        api.route("POST", r"/upload/(F\w+)", self._upload)
        api.route("POST", r"/api/files\.completeUploadExternal", self._complete)

    @staticmethod
    def form(req) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(req.body.decode()).items()}

    def _upload_url(self, req):
        form = self.form(req)
        file_id = f"F{len(self.uploaded) + 1:08d}"
        self.uploaded[file_id] = {"filename": form["filename"], "length": int(form["length"]), "data": None}
        return 200, {"ok": True, "upload_url": f"{self.api.url}/upload/{file_id}", "file_id": file_id}

    def _upload(self, req):
        file_id = req.path.rsplit("/", 1)[1]
        self.uploaded[file_id]["data"] = req.body
        return 200, f"OK - {len(req.body)}".encode()

    def _complete(self, req):
        form = self.form(req)
        files = json.loads(form["files"])
        self.completed.append({"channel_id": form.get("channel_id"), "files": files,
                               "initial_comment": form.get("initial_comment")})
        return 200, {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files]}


@pytest.fixture
def slack_far_ends(monkeypatch):
    """The webhook (slack_streamflow_alerts) and the Slack API (slack_streamflow_api) on loopback."""
    with FakeApi() as webhook, FakeApi() as web_api:
        webhook.route("POST", r"/services/.*", (200, b"ok"))
        slack_api = SlackApi(web_api)
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_ALERTS", json.dumps(
            {"conn_type": "slackwebhook", "host": f"{webhook.url}/services", "password": "T0001/B0001/XXXXXXXX"}))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_STREAMFLOW_API", json.dumps(
            {"conn_type": "slack", "password": "xoxb-test-token", "extra": {"base_url": f"{web_api.url}/api/"}}))
        yield webhook, slack_api
