"""A tiny hostile HTTP server: loopback, a thread per connection, replies scripted byte by byte.

A test sets `server.mode` to a function that answers one parsed request by writing raw bytes, so it
can do what no well-behaved server does: trickle, never finish, bomb, lie about shapes, answer HTML,
put escapes in messages, hand out broken tokens, refuse every token, echo the secrets it was sent.
Every connection is closed after one reply; every request is kept in `server.requests`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest

TOKEN_PATH = "/v3/oauth/token/generate"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Conn:
    """The socket a mode writes its reply to; `send`/`sleep` return False once the test is over."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock, self.stop = sock, stop

    def send(self, data: bytes) -> bool:
        if self.stop.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:  # the client gave up: that is the point of most modes
            return False
        return True

    def sleep(self, seconds: float) -> bool:
        return not self.stop.wait(seconds)


Mode = Callable[[Request, Conn], None]


class HostileServer:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.mode: Mode = reply(200, envelope([]))
        self.requests: list[Request] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(10)
            try:
                request = _read_request(sock.makefile("rb"))
            except (OSError, ValueError):
                return
            if request is None:
                return
            self.requests.append(request)
            self.mode(request, Conn(sock, self.stop))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _read_request(f: Any) -> Request | None:
    line = f.readline(65536)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := f.readline(65536)) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0") or 0))
    return Request(method, path, headers, body)


# ---- modes ----


def _bytes(body: bytes | str | Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def head(status: int, headers: dict[str, str] | None = None, reason: str | None = None) -> bytes:
    phrase = (
        reason if reason is not None else (HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
    )
    lines = [f"HTTP/1.1 {status} {phrase}", "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reply(status: int, body: bytes | str | Any = b"", headers: dict[str, str] | None = None) -> Mode:
    """An ordinary reply; a body that is not bytes or text is sent as JSON."""
    data = _bytes(body)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}

    def mode(request: Request, conn: Conn) -> None:
        conn.send(head(status, headers) + data)

    return mode


def envelope(data: Any, errors: Any = None) -> dict[str, Any]:
    return {"data": data, "errors": errors, "warnings": None}


def trickle(body: bytes | str | Any, every: float = 0.25, headers_too: bool = False) -> Mode:
    """A valid reply sent one byte at a time (with `headers_too`, from the status line on)."""
    data = _bytes(body)
    top = head(200, {"Content-Type": "application/json", "Content-Length": str(len(data))})

    def mode(request: Request, conn: Conn) -> None:
        slow = top + data if headers_too else data
        if not headers_too:
            conn.send(top)
        for i in range(len(slow)):
            if not (conn.send(slow[i : i + 1]) and conn.sleep(every)):
                return

    return mode


def endless() -> Mode:
    """200 and a JSON-looking body that never ends (no Content-Length, so it ends with the connection)."""
    chunk = b" " * 65536

    def mode(request: Request, conn: Conn) -> None:
        conn.send(head(200, {"Content-Type": "application/json"}) + b'{"data": "')
        while conn.send(chunk):
            pass

    return mode


_BOMBS: dict[int, bytes] = {}


def bomb_body(size: int) -> bytes:
    """`size` bytes of JSON-valid spaces, gzip-compressed (about 1,000 times smaller)."""
    if size not in _BOMBS:
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = b" " * (1 << 20)
        parts = [z.compress(b'{"data": "')] + [z.compress(block) for _ in range(size >> 20)] + [z.flush()]
        _BOMBS[size] = b"".join(parts)
    return _BOMBS[size]


def gzip_bomb(size: int = 64 << 20) -> Mode:
    return reply(200, bomb_body(size), {"Content-Encoding": "gzip"})


def gzipped(body: Any) -> Mode:
    return reply(200, gzip.compress(_bytes(body)), {"Content-Encoding": "gzip"})


def token(value: str, ttl: int | None = 300) -> Mode:
    return reply(200, envelope({"accessToken": value, "ttlSeconds": ttl}))


def routes(table: dict[str, Mode], default: Mode | None = None) -> Mode:
    """Dispatch on the end of the path (e.g. '/channels', TOKEN_PATH); 404 for anything else."""

    def mode(request: Request, conn: Conn) -> None:
        path = request.path.split("?", 1)[0]
        for suffix, handler in table.items():
            if path.endswith(suffix):
                return handler(request, conn)
        (default or reply(404, envelope(None, [{"code": 1, "message": "no route"}])))(request, conn)

    return mode


def echo(status: int = 400) -> Mode:
    """Everything the client sent (headers and body), thrown back in the message, a header and the data."""

    def mode(request: Request, conn: Conn) -> None:
        sent = " | ".join(f"{k}={v}" for k, v in request.headers.items()) + " | " + request.body.decode("latin-1")
        body = _bytes(envelope([{"id": 1, "name": sent}], [{"code": 9, "message": sent}] if status >= 400 else None))
        safe = sent.replace("\r", " ").replace("\n", " ")
        conn.send(
            head(status, {"Content-Type": "application/json", "Content-Length": str(len(body)), "X-Echo": safe}) + body
        )

    return mode


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A hostile server on a free loopback port; set `.mode` (see the mode helpers in tests/hostile.py)."""
    server = HostileServer()
    yield server
    server.close()
