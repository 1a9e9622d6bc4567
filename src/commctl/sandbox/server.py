"""`sandbox serve`: the emulator over HTTP/1.1 with keep-alive, every connection in one event loop.

Why not a thread per connection (socketserver, http.server): with the GIL, threads hand the
interpreter to each other at every socket and SQLite call, and the server answered fewer requests
per second the more keep-alive clients it had. One thread that reads whichever connection is ready
serves the same at 1 and at 32 connections. Why not http.server's parser: it parses every header
block with the email package, which costs more than the whole emulated API call.

Injected latency does not block the loop: the request waits on a timer, then is answered. A
dropped answer (`--drop-rate`) closes the connection unanswered, which only this server can do.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import io
import itertools
import selectors
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ..text import shown
from .app import Answer, Drop, SandboxApp

MAX_HEAD = 65536
MAX_BODY = 16 * 1024 * 1024
READ_SIZE = 65536


class BadRequest(Exception):
    pass


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        return connection != "close" if self.version == "HTTP/1.1" else connection == "keep-alive"

    def environ(self) -> dict[str, Any]:
        path, _, query = self.target.partition("?")
        return {
            "REQUEST_METHOD": self.method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(self.body)),
            "CONTENT_TYPE": self.headers.get("content-type", ""),
            "wsgi.input": io.BytesIO(self.body),
            "SERVER_PROTOCOL": self.version,
            **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in self.headers.items()},
        }


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """The first complete request in `buf` and the bytes it takes, or None while it is incomplete."""
    start = 0
    while buf.startswith(b"\r\n", start) or buf.startswith(b"\n", start):  # tolerated between requests
        start += 2 if buf.startswith(b"\r\n", start) else 1
    head_end, sep_len = buf.find(b"\r\n\r\n", start, start + MAX_HEAD), 4
    bare = buf.find(b"\n\n", start, head_end if head_end >= 0 else start + MAX_HEAD)  # lines ended by LF alone
    if bare >= 0:
        head_end, sep_len = bare, 2
    if head_end < 0:
        if len(buf) - start > MAX_HEAD:
            raise BadRequest("request head too large")
        return None
    request_line, *header_lines = bytes(buf[start:head_end]).decode("latin-1").split("\n")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest("malformed request line")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
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
    body_start = head_end + sep_len
    if len(buf) < body_start + length:
        return None
    body = bytes(buf[body_start : body_start + length])
    return Request(parts[0], parts[1], parts[2], headers, body), body_start + length


def serialize(answer: Answer, keep_alive: bool, head_only: bool) -> bytes:
    lines = [f"HTTP/1.1 {answer.status}", "Server: commctl-sandbox", *(f"{k}: {v}" for k, v in answer.headers)]
    if not any(k.lower() == "content-length" for k, _ in answer.headers):
        lines.append(f"Content-Length: {len(answer.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else answer.body)


class Connection:
    """One client: reads requests, answers them in order, one at a time (pipelined ones wait their turn)."""

    def __init__(self, loop: Loop, sock: socket.socket, address: Any) -> None:
        self.loop, self.server, self.sock, self.address = loop, loop.server, sock, address
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.waiting = False  # a request sits on a latency timer
        self.closing = False  # close once the output is sent
        self.closed = False
        self.events = 0

    def watch(self) -> None:
        """Read when idle, write while output is pending, neither while a request waits on a timer."""
        events = selectors.EVENT_WRITE if self.outbuf else 0 if self.waiting or self.closing else selectors.EVENT_READ
        if events != self.events:
            if not self.events:
                self.loop.selector.register(self.sock, events, self)
            elif not events:
                self.loop.selector.unregister(self.sock)
            else:
                self.loop.selector.modify(self.sock, events, self)
            self.events = events

    def readable(self) -> None:
        chunk = self.sock.recv(READ_SIZE)
        if not chunk:
            self.close()
            return
        self.inbuf += chunk
        self.advance()

    def writable(self) -> None:
        self.flush()
        if not self.closed:
            self.advance()

    def advance(self) -> None:
        """Answer the requests already received, until one must wait (timer, output pending) or is incomplete."""
        while self.inbuf and not (self.waiting or self.outbuf or self.closing or self.closed):
            try:
                parsed = parse_request(self.inbuf)
            except BadRequest as e:
                answer = Answer(f"{HTTPStatus.BAD_REQUEST.value} Bad Request", [], str(e).encode())
                self.send(serialize(answer, keep_alive=False, head_only=False), keep_alive=False)
                break
            if parsed is None:
                break
            request, used = parsed
            del self.inbuf[:used]
            environ = request.environ()
            delay = self.server.app.delay(environ)
            if delay > 0:
                self.waiting = True
                self.loop.call_later(delay, self, functools.partial(self.answer_later, request, environ))
            else:
                self.answer(request, environ)
        if not self.closed:
            self.watch()

    def answer_later(self, request: Request, environ: dict[str, Any]) -> None:
        """The latency timer ran out: answer, then go on with what the client sent meanwhile."""
        self.waiting = False
        if not self.closed:
            self.answer(request, environ)
            self.advance()

    def answer(self, request: Request, environ: dict[str, Any]) -> None:
        try:
            answer = self.server.app.respond(environ)
        except Drop:
            self.close()  # injected fault: the request was processed, its answer is lost
            return
        keep_alive = request.keep_alive
        self.send(serialize(answer, keep_alive, head_only=request.method == "HEAD"), keep_alive)
        if self.server.verbose:
            line = f"{self.address[0]} {request.method} {request.target} {answer.status}"
            sys.stderr.write(shown(line) + "\n")  # a client chooses the target: show it as data

    def send(self, data: bytes, keep_alive: bool) -> None:
        self.outbuf += data
        self.closing = self.closing or not keep_alive
        self.flush()

    def flush(self) -> None:
        try:
            while self.outbuf:
                sent = self.sock.send(self.outbuf)
                del self.outbuf[:sent]
        except BlockingIOError:
            return
        if self.closing:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.events:
            self.loop.selector.unregister(self.sock)
            self.events = 0
        self.loop.connections.discard(self)
        self.sock.close()


class Loop:
    """One event loop: its connections, their latency timers, and an inbox for connections handed to it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.waker, self._wake = socket.socketpair()
        self.waker.setblocking(False)
        self.selector.register(self.waker, selectors.EVENT_READ, self.waker)
        self.inbox: deque[tuple[socket.socket, Any]] = deque()
        self.connections: set[Connection] = set()
        self.timers: list[tuple[float, int, Connection, Callable[[], None]]] = []
        self.sequence = itertools.count()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe already holds a wake-up
            self._wake.send(b"\0")

    def hand(self, sock: socket.socket, address: Any) -> None:
        """Give this loop a new connection (from the accepting loop's thread)."""
        self.inbox.append((sock, address))
        self.wake()

    def call_later(self, delay: float, connection: Connection, step: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.sequence), connection, step))

    def run(self, poll_interval: float) -> None:
        server = self.server
        while not server.stopping:
            timeout = poll_interval
            if self.timers:
                timeout = min(timeout, max(0.0, self.timers[0][0] - time.monotonic()))
            for key, mask in self.selector.select(timeout):
                if key.data is None:
                    server.accept()
                elif key.data is self.waker:
                    self.waker.recv(4096)
                    while self.inbox:
                        self.adopt(*self.inbox.popleft())
                elif mask & selectors.EVENT_WRITE:
                    guarded(key.data.writable, key.data)
                else:
                    guarded(key.data.readable, key.data)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, connection, step = heapq.heappop(self.timers)
                guarded(step, connection)

    def adopt(self, sock: socket.socket, address: Any) -> None:
        connection = Connection(self, sock, address)
        self.connections.add(connection)
        connection.watch()

    def close(self) -> None:
        for connection in list(self.connections):
            connection.close()
        while self.inbox:
            self.inbox.popleft()[0].close()
        self.selector.close()
        self.waker.close()
        self._wake.close()


def guarded(step: Callable[[], None], connection: Connection) -> None:
    """Run one step of a connection; a connection that fails is closed, the loop goes on."""
    try:
        step()
    except OSError:
        connection.close()
    except Exception:  # a bug here must cost one connection, not the server
        traceback.print_exc(file=sys.stderr)
        connection.close()


class Server:
    """An HTTP/1.1 server for the sandbox app, with the parts of socketserver's interface callers use:
    `server_address`, `serve_forever()`, `shutdown()` (from another thread), `server_close()`.

    `loops` event loops, each in its thread, share the connections round-robin. One loop already
    serves 1 or 32 connections alike; a second one runs Python while the first is in the kernel
    (a send on loopback does the receiver's TCP work too), which is what a thread per connection
    gained, without the GIL hand-offs of dozens of threads.
    """

    def __init__(self, address: tuple[str, int], app: SandboxApp, verbose: bool = False, loops: int = 2) -> None:
        self.app, self.verbose = app, verbose
        family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        self.socket = socket.create_server(address, family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self.loops = [Loop(self) for _ in range(max(1, loops))]
        self.loops[0].selector.register(self.socket, selectors.EVENT_READ, None)
        self.turn = itertools.cycle(self.loops)
        self.stopping = False
        self.stopped = threading.Event()
        self.stopped.set()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the first loop in this thread and the others in their own, until `shutdown()`."""
        self.stopped.clear()
        threads = [
            threading.Thread(target=loop.run, args=(poll_interval,), name="sandbox-loop", daemon=True)
            for loop in self.loops[1:]
        ]
        try:
            for thread in threads:
                thread.start()
            self.loops[0].run(poll_interval)
        finally:
            self.stopping = True
            for loop in self.loops[1:]:
                loop.wake()
            for thread in threads:
                thread.join()
            self.stopping = False
            self.stopped.set()

    def accept(self) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of file descriptors and the like: refuse this one, keep serving
                sys.stderr.write(f"sandbox: cannot accept a connection: {e}\n")
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = next(self.turn)
            if loop is self.loops[0]:
                loop.adopt(sock, address)
            else:
                loop.hand(sock, address)

    def shutdown(self) -> None:
        """Stop `serve_forever` (called from another thread) and wait until it has returned."""
        self.stopping = True
        self.loops[0].wake()
        self.stopped.wait()

    def server_close(self) -> None:
        for loop in self.loops:
            loop.close()
        self.socket.close()


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: SandboxApp, host: str, port: int, verbose: bool, announce: Callable[[str], None]) -> None:
    server = Server((host, port), app, verbose)
    announce(url_of(host, server.server_address[1]))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
