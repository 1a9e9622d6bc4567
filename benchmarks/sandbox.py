"""Sandbox throughput: `commctl sandbox serve` against the simplest stdlib HTTP server, in one run.

    python benchmarks/sandbox.py [--seconds 2] [--rounds 3]

SPEC section 9: the sandbox is never the bottleneck; with 8 keep-alive clients it serves at least
as many requests per second as `http.server.ThreadingHTTPServer` answering a fixed body. Both
servers run as subprocesses; the load comes from this process, one thread driving every keep-alive
connection through a selector (so the client costs the same for both servers and no Python thread
of the client competes with another). Each figure is the best of `--rounds` runs of `--seconds`,
the two servers measured in turns, so that noise on this shared machine hits both alike.

Measured: an authenticated read (`GET .../communications` with Basic auth), an authenticated
upsert (one item, updated in place), and the read with 1, 8 and 32 connections (throughput must
not fall as connections are added).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}

STDLIB_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"data": [], "errors": null, "warnings": null}'

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sandbox does
    disable_nagle_algorithm = True  # else headers and body leave in two packets and wait out delayed ACKs (~40 ms)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_POST = do_GET

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
server.serve_forever()
"""

AUTH = "Basic " + base64.b64encode(b"sandbox:" + hashlib.md5(b"sandbox").hexdigest().encode()).decode()
PATH = "/v3/targetGroups/4100/targets/5200/communications"
ITEM = [{"communicationType": "START", "channelId": 2, "messageTemplate": "Start", "active": True}]


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


READ = request("GET", PATH)
WRITE = request("POST", PATH + "/upsert", json.dumps(ITEM).encode())


def drive(port: int, payload: bytes, connections: int, seconds: float) -> float:
    """Requests per second answered 200 over `connections` keep-alive connections, one request in flight on each."""
    sel = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(payload)
        buffers[sock] = bytearray()
        sel.register(sock, selectors.EVENT_READ)
    done, started = 0, 0.0
    warm_until = time.perf_counter() + min(0.3, seconds / 4)
    end = warm_until + seconds
    try:
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if not started and now >= warm_until:
                started, done = now, 0
            for key, _ in sel.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the server closed a keep-alive connection")
                buf = buffers[sock]
                buf += chunk
                while (head_end := buf.find(b"\r\n\r\n")) >= 0:
                    head = bytes(buf[:head_end]).lower()
                    if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
                        raise RuntimeError(f"unexpected answer: {bytes(buf[:200])!r}")
                    length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                    if len(buf) < head_end + 4 + length:
                        break
                    del buf[: head_end + 4 + length]
                    done += 1
                    sock.sendall(payload)
        return done / (time.perf_counter() - started)
    finally:
        for sock in buffers:
            sel.unregister(sock)
            sock.close()
        sel.close()


@contextmanager
def server(cmd: list[str]) -> Iterator[int]:
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV)
    assert process.stderr is not None
    try:
        line = process.stderr.readline()
        if "listening on " not in line:
            raise RuntimeError(f"server did not start: {line}{process.stderr.read()}")
        yield int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time of each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each measurement; the best counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = [PY, "-m", "commctl", "sandbox", "serve", "--port", "0", "--db", str(Path(tmp) / "bench.db")]
        with server([PY, "-c", STDLIB_SERVER]) as stdlib_port, server(sandbox) as sandbox_port:
            runs: dict[str, list[float]] = {}
            cases = [
                ("stdlib, fixed body, 8 conns", stdlib_port, READ, 8),
                ("sandbox read, 1 conn", sandbox_port, READ, 1),
                ("sandbox read, 8 conns", sandbox_port, READ, 8),
                ("sandbox read, 32 conns", sandbox_port, READ, 32),
                ("sandbox upsert, 8 conns", sandbox_port, WRITE, 8),
            ]
            for _ in range(args.rounds):
                for name, port, payload, connections in cases:
                    runs.setdefault(name, []).append(drive(port, payload, connections, args.seconds))
    best = {name: max(values) for name, values in runs.items()}
    width = max(map(len, best))
    for name, rate in best.items():
        print(f"{name:<{width}}  {rate:8.0f} requests/s")
    floor = best["stdlib, fixed body, 8 conns"]
    read, write = best["sandbox read, 8 conns"], best["sandbox upsert, 8 conns"]
    scaling = best["sandbox read, 8 conns"] / best["sandbox read, 1 conn"]
    print(f"sandbox read / stdlib fixed body, 8 keep-alive clients: {read / floor:.2f} (target >= 1.00)")
    print(f"sandbox upsert / stdlib fixed body, 8 keep-alive clients: {write / floor:.2f}")
    print(f"sandbox read, 8 connections / 1 connection: {scaling:.2f} (target >= 1.00: no fall as clients are added)")


if __name__ == "__main__":
    main()
