"""JSON over HTTP through the http provider's HttpHook, with short timeouts and errors a person can act on.

Every failure becomes a ProbeError whose message names the URL and what came back, so the check reads
`unknown` with the reason. Once a far end has proved unreachable (refused, timed out) the same client
fails its later requests at once: a dead API costs one timeout per family, not one per request, which
keeps the whole sweep inside its minute. `retries` re-asks that many times after no answer or a 5xx
before giving up (0 by default: one attempt).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ProbeError(Exception):
    """The far end did not answer usefully; the message says where and how. `status` is the HTTP status
    when it answered one (a 5xx is a finding about the far end, not only a failed probe)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class HttpJson:
    conn_id: str
    connect_timeout_s: float
    read_timeout_s: float
    retries: int = 0
    _unreachable: ProbeError | None = field(default=None, init=False, repr=False)

    def get(self, endpoint: str, params: dict[str, Any] | None = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("GET", endpoint, params=params, **kwargs)

    def request(self, method: str, endpoint: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, auth: Any = None, accept: tuple[int, ...] = ()) -> tuple[int, Any]:
        """(HTTP status, parsed JSON). Non-2xx statuses raise unless listed in `accept`.

        `auth` is a requests auth object that replaces the connection's default (Basic from login).
        """
        import requests
        from airflow.providers.http.hooks.http import HttpHook

        if self._unreachable is not None:
            raise self._unreachable
        hook = HttpHook(method=method, http_conn_id=self.conn_id,
                        auth_type=(lambda *_: auth) if auth is not None else None)
        url = f"{self.conn_id}{endpoint}"
        for attempt in range(self.retries + 1):
            try:
                response = hook.run(endpoint, data=params, json=json_body,
                                    extra_options={"timeout": (self.connect_timeout_s, self.read_timeout_s),
                                                   "check_response": False})
            except (requests.ConnectionError, requests.Timeout) as exc:
                url = hook.url_from_endpoint(endpoint) if hook.base_url else url
                self._unreachable = ProbeError(f"{method} {url}: no answer ({type(exc).__name__}: {shorten(exc)})")
                continue
            self._unreachable = None
            if response.status_code < 500 or response.status_code in accept or attempt == self.retries:
                break
        else:
            raise self._unreachable from None
        url = response.url or url
        if not (200 <= response.status_code < 300 or response.status_code in accept):
            raise ProbeError(f"{method} {url} -> HTTP {response.status_code} {response.reason}: "
                             f"{shorten(response.text, 200)}", status=response.status_code)
        try:
            return response.status_code, response.json()
        except ValueError:
            raise ProbeError(f"{method} {url} -> HTTP {response.status_code} but not JSON "
                             f"({response.headers.get('Content-Type', 'no content type')}): "
                             f"{shorten(response.text, 120)}") from None


def shorten(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."
