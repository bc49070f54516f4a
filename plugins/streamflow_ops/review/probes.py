"""What the weekly review reads: the warehouse and the ops tables (one psycopg connection), and Prometheus
over the `streamflow_prometheus` HTTP connection through HttpHook (instant queries at the reference time,
range queries over the week), as the monitoring probes do."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from streamflow_ops.config import MonitoringConfig, StreamflowOpsConfig
from streamflow_ops.http_probe import HttpJson, ProbeError
from streamflow_ops.review.evaluators import Answer
from streamflow_ops.sqlfiles import dict_rows

HOUR_S = 3600


def fraud_by_rule(conn, config: StreamflowOpsConfig, last_since: datetime, this_since: datetime,
                  until: datetime) -> list[dict]:
    wh = config.warehouse
    return dict_rows(conn, "review_fraud_by_rule.sql",
                     {"last_since": last_since, "this_since": this_since, "until": until},
                     alerts=(wh.silver_schema, wh.fraud_alerts_table))


def answers(conn, ops_schema: str, since: datetime, until: datetime) -> list[Answer]:
    return [Answer(**row) for row in dict_rows(conn, "review_alert_history.sql", {"since": since, "until": until},
                                               ops=ops_schema)]


def alert_states(conn, ops_schema: str) -> list[dict]:
    return dict_rows(conn, "review_alert_state.sql", ops=ops_schema)


def rows_per_day(conn, config: StreamflowOpsConfig, table: tuple[str, str], since: datetime,
                 until: datetime) -> list[dict]:
    rows = dict_rows(conn, "review_rows_per_day.sql", {"since": since.timestamp(), "until": until.timestamp()},
                     table=table, time=config.warehouse.time_column)
    return [{"day": row["day"].isoformat(), "rows": row["rows"]} for row in rows]


def table_sizes(conn, tables: list[tuple[str, str]]) -> list[dict]:
    return dict_rows(conn, "review_table_sizes.sql",
                     {"schemas": [s for s, _ in tables], "tables": [t for _, t in tables]})


class Prometheus:
    """Instant and range queries of one Prometheus; an error answer raises ProbeError with the query."""

    def __init__(self, config: MonitoringConfig):
        self._http = HttpJson(config.prometheus_conn_id, config.connect_timeout_s, config.request_timeout_s)

    def _result(self, endpoint: str, params: dict[str, Any]) -> list[dict]:
        body = self._http.get(endpoint, params)[1]
        if body.get("status") != "success":
            raise ProbeError(f"Prometheus {endpoint} {params['query']!r} failed: {body.get('errorType')}: "
                             f"{body.get('error')}")
        return list(body["data"]["result"])

    def instant(self, promql: str, at: datetime) -> list[dict]:
        """GET /api/v1/query at `at`: [{"metric", "value": [t, "v"]}]."""
        return self._result("/api/v1/query", {"query": promql, "time": at.timestamp()})

    def series(self, promql: str, start: datetime, end: datetime, step_s: int = HOUR_S) -> list[dict]:
        """GET /api/v1/query_range: [{"metric", "values": [[t, "v"], ...]}] every `step_s` from start to end."""
        return self._result("/api/v1/query_range", {"query": promql, "start": start.timestamp(),
                                                    "end": end.timestamp(), "step": step_s})
