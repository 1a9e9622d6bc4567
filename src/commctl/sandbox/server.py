"""`sandbox serve`: the WSGI app over HTTP/1.1 with keep-alive, one thread per connection.

A small request reader of its own: http.server parses every header block with the email package,
which costs more than the whole emulated API call.
"""

from __future__ import annotations

import io
import socketserver
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from .app import Drop, SandboxApp

MAX_LINE = 65536
MAX_BODY = 16 * 1024 * 1024


class BadRequest(Exception):
    pass


class Handler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True
    server: Server

    def handle(self) -> None:
        while True:
            try:
                request = self.read_request()
            except BadRequest as e:
                self.answer("HTTP/1.1", f"{HTTPStatus.BAD_REQUEST.value} Bad Request", [], str(e).encode(), False)
                return
            except (ConnectionError, TimeoutError):
                return
            if request is None:
                return
            method, target, version, headers, body = request
            keep_alive = (
                headers.get("connection", "").lower() != "close"
                if version == "HTTP/1.1"
                else headers.get("connection", "").lower() == "keep-alive"
            )
            path, _, query = target.partition("?")
            environ: dict[str, Any] = {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": headers.get("content-type", ""),
                "wsgi.input": io.BytesIO(body),
                "SERVER_PROTOCOL": version,
                **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
            }
            reply: list[Any] = []

            def start_response(
                status: str, response_headers: list[tuple[str, str]], exc_info: Any = None, reply: list[Any] = reply
            ) -> None:
                reply[:] = [status, response_headers]

            try:
                chunks = self.server.app(environ, start_response)
            except Drop:
                return  # close the connection without an answer
            self.answer(version, reply[0], reply[1], b"".join(chunks), keep_alive)
            if self.server.verbose:
                sys.stderr.write(f"{self.client_address[0]} {method} {target} {reply[0]}\n")
            if not keep_alive:
                return

    def read_request(self) -> tuple[str, str, str, dict[str, str], bytes] | None:
        line = self.rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):
            line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/") or len(line) > MAX_LINE:
            raise BadRequest("malformed request line")
        headers: dict[str, str] = {}
        while True:
            raw = self.rfile.readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise BadRequest("malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise BadRequest("chunked request bodies are not supported; send Content-Length")
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise BadRequest("request body too large")
        body = self.rfile.read(length) if length else b""
        return parts[0], parts[1], parts[2], headers, body

    def answer(self, version: str, status: str, headers: list[tuple[str, str]], body: bytes, keep_alive: bool) -> None:
        lines = [f"HTTP/1.1 {status}", "Server: commctl-sandbox", *(f"{k}: {v}" for k, v in headers)]
        if not any(k.lower() == "content-length" for k, _ in headers):
            lines.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SandboxApp, verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.app = app
        self.verbose = verbose


def serve(app: SandboxApp, host: str, port: int, verbose: bool, announce: Callable[[str], None]) -> None:
    server = Server((host, port), app, verbose)
    announce(f"http://{host}:{server.server_address[1]}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
