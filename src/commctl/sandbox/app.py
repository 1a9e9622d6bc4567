"""The emulator as a WSGI application, served over HTTP by `sandbox serve` or mounted in process.

Behaviour follows the API reference (section 7, "emulator recommendation"): array bodies, the
`{data, errors, warnings}` envelope, the natural key for updates, 400/401/404/405 as documented.
Error codes marked "emulator" below are the sandbox's own; the real API documents none for these.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import os
import random
import re
import sqlite3
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..domain import COMM_TYPES
from .store import SchemaError, Store

INVALID_INPUT = 300004  # documented: "Invalid input, check all values"
GROUP_NOT_FOUND = 310901  # emulator
TARGET_NOT_FOUND = 310902  # emulator
UNAUTHORIZED = 310401  # emulator
RATE_LIMITED = 310429  # emulator
UNAVAILABLE = 310503  # emulator
NOT_FOUND = 310404  # emulator: unknown route
HEALTH = "/healthz"  # not an API route: the emulator's own health check

StartResponse = Callable[..., Any]
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v3/oauth/token/generate"), "token"),
    ("GET", re.compile(r"/v3/targetGroups/channels"), "channels"),
    ("GET", re.compile(r"/v3/targetGroups"), "groups"),
    ("GET", re.compile(r"/v3/targetGroups/(\d+)"), "group"),
    ("GET", re.compile(r"/v3/targetGroups/(\d+)/targets"), "targets"),
    ("GET", re.compile(r"/v3/targetGroups/(\d+)/targets/(\d+)/communications"), "communications"),
    ("POST", re.compile(r"/v3/targetGroups/(\d+)/targets/(\d+)/communications/upsert"), "upsert"),
]


class Reply(Exception):
    """An HTTP answer with the API envelope, raised from anywhere in a handler."""

    def __init__(
        self,
        status: int,
        data: Any = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(status)
        self.status, self.data, self.errors, self.headers = status, data, errors, list(headers)


def fail(status: int, code: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    return Reply(status, None, [{"code": code, "message": message}], headers)


class Drop(Exception):
    """Close the connection without an answer (fault injection; only the HTTP server can honour it)."""


@dataclass(frozen=True)
class Answer:
    status: str  # "200 OK"
    headers: list[tuple[str, str]]
    body: bytes


RATE_UNITS = {"": 60.0, "m": 60.0, "min": 60.0, "s": 1.0, "sec": 1.0}


def parse_rate_limit(text: str) -> tuple[int, float]:
    """`N` or `N/m` (per minute, as the real API counts) or `N/s` (per second) -> (requests, window in seconds)."""
    match = re.fullmatch(r"\s*([0-9]+)\s*(?:/\s*([a-z]*)\s*)?", text.lower())
    window = RATE_UNITS.get(match.group(2) or "") if match else None
    if match is None or window is None:
        raise ValueError(f"{text!r} is not N (per minute), N/m or N/s")
    return int(match.group(1)), window


@dataclass
class Faults:
    latency_ms: int = 0
    fail_rate: float = 0.0
    rate_limit: int = 0  # requests per window, 0 = unlimited
    rate_window: float = 60.0
    drop_rate: float = 0.0
    seed: int | None = None  # decide fail/drop per request, reproducibly (None: at random)
    auth_fail_after: int = 0  # the K-th request that presents credentials, and every later one, gets 401 (0: never)


SEEN_REQUESTS = 100_000  # distinct requests whose repeats Dice counts (about 15 MB), then it starts over


class Dice:
    """Which requests meet an injected fault.

    Unseeded, at random. Seeded, by a keyed hash of the fault, the request (method, target, body)
    and how many identical requests came before it: the same run meets the same faults whatever
    order its concurrent requests arrive in, and a retry is a new throw.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self.random = random.Random()
        self.seen: dict[bytes, int] = {}
        self.lock = threading.Lock()

    def request(self, method: str, target: str, body: bytes) -> bytes:
        """The identity of this request for `roll` (empty when unseeded)."""
        if self.seed is None:
            return b""
        digest = hashlib.blake2b(f"{method} {target}\n".encode() + body, digest_size=16).digest()
        with self.lock:
            if len(self.seen) >= SEEN_REQUESTS:  # bounded memory for a long-running server; runs stay reproducible
                self.seen.clear()
            n = self.seen[digest] = self.seen.get(digest, -1) + 1
        return digest + n.to_bytes(8, "big")

    def roll(self, fault: str, rate: float, request: bytes) -> bool:
        if rate <= 0:
            return False
        if self.seed is None:
            return self.random.random() < rate
        h = hashlib.blake2b(request, digest_size=8, key=f"{self.seed}:{fault}".encode()).digest()
        return int.from_bytes(h, "big") / 2**64 < rate


class RateLimiter:
    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def retry_after(self, who: str) -> int | None:
        """None when the request may go; else whole seconds until it may (at least 1, as Retry-After counts)."""
        now = time.monotonic()
        with self.lock:
            hits = self.hits.setdefault(who, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) < self.limit:
                hits.append(now)
                return None
            return max(1, math.ceil(hits[0] + self.window - now))

    def describe(self) -> str:
        return f"{self.limit} requests per {'second' if self.window == 1 else 'minute' if self.window == 60 else f'{self.window:g} s'}"


class SandboxApp:
    def __init__(self, store: Store, faults: Faults | None = None) -> None:
        self.store = store
        self.faults = faults or Faults()
        self.limiter = RateLimiter(self.faults.rate_limit, self.faults.rate_window) if self.faults.rate_limit else None
        self.dice = Dice(self.faults.seed)
        self.credentialed = itertools.count(1)  # next() is atomic in CPython: a lock-free request counter

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """WSGI: injected latency by sleeping, then the answer (Drop propagates: a generic server cannot honour it)."""
        if delay := self.delay(environ):
            time.sleep(delay)
        answer = self.respond(environ)
        start_response(answer.status, answer.headers)
        return [answer.body]

    def delay(self, environ: dict[str, Any]) -> float:
        """Seconds to wait before answering this request (the health check never waits)."""
        return 0.0 if environ.get("PATH_INFO") == HEALTH else self.faults.latency_ms / 1000

    def respond(self, environ: dict[str, Any]) -> Answer:
        if environ.get("PATH_INFO") == HEALTH:
            return self.health(environ["REQUEST_METHOD"])
        try:
            reply = self.handle(environ)
        except Reply as r:
            reply = r
        except Drop:
            raise
        except Exception as e:  # a bug in the emulator: answer like a server would, and say what broke
            traceback.print_exc(file=sys.stderr)
            reply = fail(500, UNAVAILABLE, f"internal sandbox error: {type(e).__name__}")
        envelope = {"data": reply.data, "errors": reply.errors, "warnings": None}
        return json_answer(reply.status, envelope, [("X-Cap-Requestid", f"{random.getrandbits(64):016x}"), *reply.headers])

    def health(self, method: str) -> Answer:
        """`GET /healthz`: 200 when the state can be read, for load balancers and orchestrators; no auth, no faults."""
        if method not in ("GET", "HEAD"):
            return json_answer(405, {"status": "method not allowed"}, [("Allow", "GET, HEAD")])
        try:
            seeded = self.store.seeded()
        except sqlite3.Error as e:
            return json_answer(503, {"status": "unavailable", "error": f"sandbox state: {e}"})
        return json_answer(200 if seeded else 503, {"status": "ok" if seeded else "not seeded"})

    def handle(self, environ: dict[str, Any]) -> Reply:
        f = self.faults
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        route, args = self.route(method, path)
        raw = read_raw_body(environ)
        request = b""
        if f.fail_rate or f.drop_rate:
            request = self.dice.request(method, f"{path}?{environ.get('QUERY_STRING', '')}", raw)
        if self.dice.roll("fail", f.fail_rate, request):
            raise fail(503, UNAVAILABLE, "service temporarily unavailable (injected fault)")
        body = parse_body(raw)
        who = "anonymous" if route == "token" else self.authenticate(environ)
        if self.limiter and (wait := self.limiter.retry_after(who)) is not None:
            raise fail(
                429, RATE_LIMITED, f"rate limit of {self.limiter.describe()} exceeded", [("Retry-After", str(wait))]
            )
        reply: Reply = getattr(self, "do_" + route)(
            *args, body=body, query=parse_qs(environ.get("QUERY_STRING", "")), user=who
        )
        if self.dice.roll("drop", f.drop_rate, request):
            raise Drop()
        return reply

    def revoked(self) -> bool:
        """Injected fault: the credentials were revoked before the K-th request that presents them."""
        after = self.faults.auth_fail_after
        return bool(after) and next(self.credentialed) >= after

    @staticmethod
    def route(method: str, path: str) -> tuple[str, list[int]]:
        path = path.rstrip("/")
        allowed = []
        for m, pattern, name in ROUTES:
            if match := pattern.fullmatch(path):
                if m == method:
                    return name, [int(g) for g in match.groups()]
                allowed.append(m)
        if allowed:
            raise fail(405, INVALID_INPUT, f"method {method} not allowed on {path}", [("Allow", ", ".join(allowed))])
        raise fail(404, NOT_FOUND, f"no such resource: {path}")

    def authenticate(self, environ: dict[str, Any]) -> str:
        """The till name behind the request's credentials; OAuth wins when both are sent."""
        if self.revoked():
            raise fail(401, UNAUTHORIZED, "authentication failed: credentials revoked (injected fault)")
        token = environ.get("HTTP_X_CAP_API_OAUTH_TOKEN")
        if token:
            client = self.store.token_client(token)
            if client is None:
                raise fail(401, UNAUTHORIZED, "invalid or expired OAuth token")
            return f"oauth:{client}"
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header.startswith("Basic "):
            try:
                user, _, digest = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, digest = "", ""
            if user and self.store.check_basic(user, digest):
                return user
        raise fail(401, UNAUTHORIZED, "authentication failed: invalid or missing credentials")

    # ---- handlers ----

    def do_token(self, *, body: Any, **_: Any) -> Reply:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("key"), str)
            or not isinstance(body.get("secret"), str)
        ):
            raise fail(400, INVALID_INPUT, 'body must be {"key": ..., "secret": ...}')
        issued = None if self.revoked() else self.store.issue_token(body["key"], body["secret"])
        if issued is None:
            raise fail(401, UNAUTHORIZED, "invalid client key or secret")
        return Reply(200, {"accessToken": issued[0], "ttlSeconds": issued[1]})

    def do_channels(self, **_: Any) -> Reply:
        return Reply(200, self.store.channels())

    def do_groups(self, **_: Any) -> Reply:
        return Reply(200, [group_view(g) for g in self.store.groups()])

    def do_group(self, group_id: int, *, query: dict[str, list[str]], **_: Any) -> Reply:
        group = self.require_group(group_id)
        if query.get("includeUserCreatedTargetGroups", [""])[0].lower() == "true":
            return Reply(
                200,
                [
                    {
                        **group_view(group),
                        "userCreated": False,
                        "targets": [target_view(t, group_id) for t in self.store.targets(group_id)],
                    }
                ],
            )
        return Reply(200, group_view(group))

    def do_targets(self, group_id: int, **_: Any) -> Reply:
        self.require_group(group_id)
        return Reply(200, [target_view(t, group_id) for t in self.store.targets(group_id)])

    def do_communications(self, group_id: int, target_id: int, **_: Any) -> Reply:
        self.require_target(group_id, target_id)
        return Reply(200, self.store.communications(group_id, target_id))

    def do_upsert(self, group_id: int, target_id: int, *, body: Any, user: str, **_: Any) -> Reply:
        self.require_target(group_id, target_id)
        if not isinstance(body, list):
            raise fail(400, INVALID_INPUT, "request body must be a JSON array of communications")
        if not body:
            raise fail(400, INVALID_INPUT, "request body must not be an empty array")
        channels = self.store.channel_ids()
        items = [check_item(i, item, channels) for i, item in enumerate(body)]
        return Reply(200, self.store.upsert(group_id, target_id, items, user))

    def require_group(self, group_id: int) -> dict[str, Any]:
        group = self.store.group(group_id)
        if group is None:
            raise fail(404, GROUP_NOT_FOUND, f"target group {group_id} not found")
        return group

    def require_target(self, group_id: int, target_id: int) -> None:
        if self.store.target_in_group(group_id, target_id):
            return
        self.require_group(group_id)
        raise fail(404, TARGET_NOT_FOUND, f"target {target_id} not found in target group {group_id}")


def read_raw_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise fail(400, INVALID_INPUT, "request body is not valid JSON") from None


def json_answer(status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> Answer:
    body = json.dumps(document, ensure_ascii=False).encode()
    head = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body))), *headers]
    return Answer(f"{status} {HTTPStatus(status).phrase}", head, body)


def check_item(index: int, item: Any, channels: frozenset[int]) -> dict[str, Any]:
    """Validate one upsert item the way the emulator's contract says; 400 on the first problem."""
    where = f"item {index}"
    if not isinstance(item, dict):
        raise fail(400, INVALID_INPUT, f"{where}: expected an object")
    ctype = item.get("communicationType")
    if ctype not in COMM_TYPES:
        raise fail(400, INVALID_INPUT, f"{where}: communicationType must be one of {', '.join(COMM_TYPES)}")
    channel = item.get("channelId")
    if isinstance(channel, str) and channel.isdigit():
        channel = int(channel)
    if not isinstance(channel, int) or isinstance(channel, bool) or channel not in channels:
        raise fail(400, INVALID_INPUT, f"{where}: unknown channelId {item.get('channelId')!r}")
    if not isinstance(item.get("messageTemplate"), str):
        raise fail(400, INVALID_INPUT, f"{where}: messageTemplate is required and must be a string")
    for name in ("sender", "subjectTemplate"):
        if item.get(name) is not None and not isinstance(item[name], str):
            raise fail(400, INVALID_INPUT, f"{where}: {name} must be a string")
    offset = item.get("offsetDays", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 2**31 - 1:
        raise fail(400, INVALID_INPUT, f"{where}: offsetDays must be an integer >= 0")
    active = item.get("active", True)
    if not isinstance(active, bool):
        raise fail(400, INVALID_INPUT, f"{where}: active must be true or false")
    return {
        "communicationType": ctype,
        "channelId": channel,
        "messageTemplate": item["messageTemplate"],
        "sender": item.get("sender") or "",
        "subjectTemplate": item.get("subjectTemplate") or "",
        "offsetDays": offset,
        "active": active,
    }


SEED_ATTRIBUTION = {
    "createdOn": "2026-01-05T09:00:00.000+0000",
    "lastUpdatedOn": "2026-01-05T09:00:00.000+0000",
    "createdBy": {"id": 75000001, "code": "sandbox", "description": "", "name": "sandbox", "type": "TILL"},
    "lastUpdatedBy": {"id": 75000001, "code": "sandbox", "description": "", "name": "sandbox", "type": "TILL"},
}


def group_view(g: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": g["id"],
        "attribution": SEED_ATTRIBUTION,
        "name": g.get("name", f"Group {g['id']}"),
        "active": g.get("active", True),
        "preferredTillId": 0,
        "streaks": [],
        "totalPeriods": 1,
        "description": g.get("description", ""),
        "targetEvaluationType": "FIXED_CALENDAR_WINDOW",
        "recurringCycles": 1,
        "frequency": 0,
        "frequencyType": "MONTHLY",
        "trackingType": "DEFAULT",
        "createdOn": 1767603600000,
    }


def target_view(t: dict[str, Any], group_id: int) -> dict[str, Any]:
    return {
        "id": t["id"],
        "attribution": SEED_ATTRIBUTION,
        "name": t.get("name", f"Target {t['id']}"),
        "targetType": t.get("targetType", "SALES"),
        "targetEntity": "TRANSACTION",
        "eventName": "TransactionAdd",
        "targetGroupId": group_id,
        "description": t.get("description", ""),
        "active": t.get("active", True),
        "enrolmentMethod": "TRANSACTION",
    }


# ---- building the app ----


def default_db(env: dict[str, str] | None = None) -> Path:
    from ..config import state_dir

    env = dict(os.environ) if env is None else env
    return Path(env["COMMCTL_SANDBOX_DB"]) if env.get("COMMCTL_SANDBOX_DB") else state_dir(env) / "sandbox.db"


def open_store(db: Path | None = None, seed: Path | None = None) -> Store:
    """Open (and seed when new, or when a seed file is given) the sandbox state."""
    from ..errors import ConfigError
    from .seed import load_seed

    path = db or default_db()
    try:
        store = Store(path)
        if seed is not None or not store.seeded():
            store.load_seed(load_seed(seed))
    except (sqlite3.Error, OSError, SchemaError) as e:
        raise ConfigError(f"cannot use the sandbox state {path}: {e}", hint=f"delete {path} to start over") from None
    return store


def in_process_transport() -> Any:
    import httpx

    return httpx.WSGITransport(app=SandboxApp(open_store()))
