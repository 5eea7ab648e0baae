"""HTTP layer: turns each request into a :class:`Request`, asks a dispatch function for a
:class:`Response`, and writes it, or drops the connection without sending a byte.

Nothing here knows about the CRM: routing and behaviour live in the dispatch function.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

JSON_TYPE = "application/json; charset=utf-8"
GATEWAY_NOT_FOUND = {"message": "no Route matched with those values"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""
    host: str = "127.0.0.1"  # the authority the client used, for absolute links

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = field(default=())
    drop: bool = False  # close the connection without sending anything


DROP = Response(status=0, drop=True)


def json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status=status, body=body, headers=headers)


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    **extra: Any,
) -> Response:
    """The CRM's ``{"errors": [...]}`` shape with a single entry."""
    entry = {"status": str(status), "code": code, "detail": detail, **extra}
    return json_response(status, {"errors": [entry]}, headers)


def gateway_not_found() -> Response:
    """What the public gateway answers for a path it has no route for."""
    return json_response(404, GATEWAY_NOT_FOUND)


def rate_limited(retry_after: int, detail: str) -> Response:
    headers = (("Retry-After", str(retry_after)),)
    return error_response(429, "TOO_MANY_REQUESTS", detail, headers=headers)


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class BadRequest(Exception):
    """A request the CRM refuses with 400 in the ``errors`` shape."""

    def __init__(self, detail: str, parameter: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter

    def response(self) -> Response:
        extra = {"source": {"parameter": self.parameter}} if self.parameter else {}
        return error_response(400, "BAD_REQUEST", self.detail, **extra)


Dispatch = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffered: headers and body leave in one write, flushed per request
    disable_nagle_algorithm = True
    server: HttpServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._write(BadRequest("invalid Content-Length header").response())
            return
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=url.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            host=self.headers.get("Host") or self.server.authority,
        )
        response = self.server.dispatch(request)
        if response.drop:
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the emulator keeps its own request log."""


class HttpServer(ThreadingHTTPServer):
    """A threading HTTP server that can also cut every open keep-alive connection on stop."""

    daemon_threads = True
    request_queue_size = 128  # the default of 5 drops bursts of concurrent connects

    def __init__(self, host: str, port: int, dispatch: Dispatch):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self.dispatch = dispatch
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    @property
    def authority(self) -> str:
        host, port = self.server_address[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that went away (or a connection cut on stop) is not an error worth printing."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)
