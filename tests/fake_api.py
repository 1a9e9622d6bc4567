"""A scripted stand-in for the API on loopback, for replies the sandbox does not give."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], Any]


class FakeApi:
    """A scripted API on loopback: `answer(method, path)` gives each request's status, headers and JSON body."""

    def __init__(self, answer: Callable[[str, str], Answer]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, float]] = []  # method, path, arrival time
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.requests.append((self.command, self.path, time.time()))
                status, headers, body = api.answer(self.command, self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fake_apis() -> Iterator[Callable[[Callable[[str, str], Answer]], FakeApi]]:
    """The body of a fixture that starts fake APIs and stops them all at the end of the test."""
    started: list[FakeApi] = []

    def start(answer: Callable[[str, str], Answer]) -> FakeApi:
        started.append(FakeApi(answer))
        return started[-1]

    yield start
    for api in started:
        api.close()


def envelope(data: Any = None, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"data": data, "errors": errors, "warnings": None}
