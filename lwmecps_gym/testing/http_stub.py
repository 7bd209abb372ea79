"""A loopback HTTP stub server for contract tests of real backends.

Serves canned JSON on 127.0.0.1 (never any other address) and records every
request (method, path, query, headers, JSON body), so tests can drive the real
``kubernetes`` client or ``requests`` at it and assert the exact calls sent.

Usage::

    with HttpStub() as stub:
        stub.route("GET", r"/api/v1/nodes", lambda req: (200, {"kind": "NodeList", "items": []}))
        ...  # point the client at stub.url
        assert stub.requests[0].path == "/api/v1/nodes"

A handler gets a :class:`Request` and returns ``(status, json_body)`` or
``(status, json_body, headers)``. Unrouted requests get 404 with a Kubernetes
``Status`` body and are recorded too. Handlers may be replaced at any time
(e.g. to fail twice with 503 then succeed).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None
    match: re.Match | None = field(default=None, repr=False)


Handler = Callable[[Request], tuple]


def k8s_status(code: int, reason: str, message: str = "") -> dict:
    """A Kubernetes ``Status`` object, as the API server returns on errors."""
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message or reason,
            "reason": reason, "code": code}


class HttpStub:
    """Threaded loopback HTTP server with regex routes and a request log."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        stub = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # without this, keep-alive round trips wait ~40 ms on delayed ACKs (Nagle)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # silence
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
                with stub._lock:
                    stub.requests.append(req)
                    routes = list(stub._routes)
                result: tuple = (404, k8s_status(404, "NotFound", f"no stub route for {self.command} {parts.path}"))
                for method, pattern, handler in reversed(routes):
                    m = pattern.fullmatch(parts.path)
                    if method == self.command and m:
                        req.match = m
                        result = handler(req)
                        break
                status, payload = result[0], result[1]
                headers = result[2] if len(result) > 2 else {}
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test): nothing to answer

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path_regex: str, handler: Handler) -> None:
        """Add a route; later routes win over earlier ones for the same path."""
        with self._lock:
            self._routes.append((method.upper(), re.compile(path_regex), handler))

    def calls(self, method: str | None = None, path_regex: str | None = None) -> list[Request]:
        """Recorded requests, optionally filtered by method and full-match path regex."""
        with self._lock:
            reqs = list(self.requests)
        return [r for r in reqs if (method is None or r.method == method.upper())
                and (path_regex is None or re.fullmatch(path_regex, r.path))]

    def start(self) -> HttpStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpStub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
