"""A local HTTP server that answers like a real API (Kubernetes, Slack, PagerDuty, Prometheus, ...).

Only the far end is fake: the code under test uses its real client (KubernetesHook, HttpHook,
SlackWebhookHook...) pointed at this server. Routes map (METHOD, path regex) to a JSON body, a
(status, body) pair, or a callable(request) -> (status, body). Every request is recorded.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[[Request], tuple[int, Any]]


@dataclass
class FakeApi:
    """Start with `with FakeApi() as api:`; set routes with api.route(...)."""

    routes: list[tuple[str, re.Pattern, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def route(self, method: str, path_regex: str, response: Any) -> None:
        """Later routes win, so a test can override a default answer."""
        self.routes.insert(0, (method.upper(), re.compile(f"^{path_regex}$"), response))

    def calls(self, method: str | None = None, path_regex: str = ".*") -> list[Request]:
        pattern = re.compile(f"^{path_regex}$")
        return [r for r in self.requests if (method is None or r.method == method.upper()) and pattern.match(r.path)]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> "FakeApi":
        api = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                api.requests.append(request)
                status, body = api._answer(request)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request) -> tuple[int, Any]:
        for method, pattern, response in self.routes:
            if method == request.method and pattern.match(request.path):
                if callable(response):
                    return response(request)
                if isinstance(response, tuple):
                    return response
                return 200, response
        return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                     "message": f"no route for {request.method} {request.path}"}


def write_kubeconfig(path, server_url: str) -> str:
    """A kubeconfig that points the real kubernetes client at a FakeApi."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }
    path.write_text(json.dumps(config))
    return str(path)


def unused_port() -> int:
    """A local port nobody listens on: connecting to it is refused at once (an API that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_connection(url: str, **fields: Any) -> str:
    """An AIRFLOW_CONN_* value (JSON) for an http connection to `url` (e.g. a FakeApi), plus login etc."""
    host, port = url.rsplit(":", 1)
    return json.dumps({"conn_type": "http", "host": host, "port": int(port), **fields})
