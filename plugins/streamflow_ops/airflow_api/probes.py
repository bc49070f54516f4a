"""Airflow's REST API (/api/v2) through HttpHook, authenticated with a JWT as the API expects."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from streamflow_ops.config import AirflowApiConfig
from streamflow_ops.http_probe import HttpJson, ProbeError


class BearerAuth:
    """requests auth that sends `Authorization: Bearer <token>` (instead of the connection's Basic auth)."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def no_credentials(request):
    """requests auth that sends nothing: the health endpoint needs none, the token call sends them in its body."""
    return request


class AirflowApi:
    """Token handling, one HTTP client per family run (so a dead API costs one timeout)."""

    def __init__(self, config: AirflowApiConfig):
        self._config = config
        self.http = HttpJson(config.conn_id, config.connect_timeout_s, config.request_timeout_s)
        # What the API server itself said during this run, for airflow.api_server.
        self.answered = 0
        self.server_errors: list[str] = []
        self.last_error: ProbeError | None = None

    def _request(self, method: str, endpoint: str, **kwargs: Any) -> tuple[int, Any]:
        """Every call goes through here, so a 5xx is remembered as a finding before it is re-raised."""
        try:
            answer = self.http.request(method, endpoint, **kwargs)
        except ProbeError as exc:
            self.last_error = exc
            if exc.status is not None:
                self.answered += 1
                if exc.status >= 500:
                    self.server_errors.append(str(exc))
            raise
        self.answered += 1
        return answer

    def health(self) -> dict[str, Any]:
        """GET /api/v2/monitor/health: needs no authentication."""
        return self._request("GET", "/api/v2/monitor/health", auth=no_credentials)[1]

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG, or None if Airflow does not know it."""
        status, body = self._request("GET", f"/api/v2/dags/{dag_id}", auth=self._bearer(), accept=(404,))
        return None if status == 404 else body

    def import_errors(self, limit: int = 100) -> list[dict[str, Any]]:
        """GET /api/v2/importErrors: files the DAG processor could not parse (filename, stack_trace)."""
        return list(self._request("GET", "/api/v2/importErrors", params={"limit": limit},
                                  auth=self._bearer())[1]["import_errors"])

    def failed_runs_since(self, dag_id: str, since: datetime) -> int:
        """How many runs failed (ended) since `since`: counted by the API, however many runs there were."""
        params = {"state": "failed", "end_date_gte": _iso(since), "limit": 1}
        return int(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params,
                                 auth=self._bearer())[1]["total_entries"])

    def recent_runs(self, dag_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest runs first (by run_after, which every run has, manual or scheduled)."""
        params = {"order_by": "-run_after", "limit": limit}
        return list(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params,
                                  auth=self._bearer())[1]["dag_runs"])

    def failed_tasks(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of one run in state failed (task_id, try_number, ...)."""
        return list(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                                  params={"state": "failed"}, auth=self._bearer())[1]["task_instances"])

    def _bearer(self) -> BearerAuth | None:
        """login+password -> POST /auth/token; password alone is the token; neither -> extra headers only."""
        if isinstance(self._auth, ProbeError):
            raise self._auth
        return self._auth

    @cached_property
    def _auth(self) -> BearerAuth | ProbeError | None:
        """Resolved once per family run: a refused login is not retried for every watched DAG."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self._config.conn_id)
        if not conn.login:
            return BearerAuth(conn.password) if conn.password else None
        try:
            _, body = self._request("POST", "/auth/token", auth=no_credentials,
                                    json_body={"username": conn.login, "password": conn.password or ""})
            return BearerAuth(body["access_token"])
        except ProbeError as exc:
            return ProbeError(f"could not get an API token for '{conn.login}': {exc}")
        except (KeyError, TypeError):
            return ProbeError(f"POST /auth/token answered without access_token: {str(body)[:200]}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
