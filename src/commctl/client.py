"""The target-communications API over httpx: one method per endpoint, envelope, errors, retries.

Knows nothing of the terminal: it raises commctl errors and reports HTTP traffic to an optional
`log` callback with secrets redacted. Every reply is bounded: `timeout` is a deadline for the whole
attempt (connect, headers and body), the body is capped after decompression, and its shape is
checked before anyone reads it, so a hostile or broken server costs one failed target (exit 5 or 6),
never a traceback, a hang or a leak.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.cookiejar import Cookie, CookieJar
from typing import TYPE_CHECKING, Any, TypeVar

import httpcore
import httpx
from pydantic import BaseModel, ValidationError

from . import __version__
from .errors import ApiError, AuthError, CommctlError, UnavailableError
from .models import Channel, Communication, Entity, Token

if TYPE_CHECKING:
    from .ratelimit import Limiter
    from .tokencache import TokenCache

RETRY_STATUSES = frozenset({429, 461, 502, 503, 504, 521})
MAX_REPLY = 16 * 1024 * 1024  # after decompression; the largest real reply (all groups of an org) is far smaller
MAX_ERROR_REPLY = 64 * 1024  # an error body only has to carry a message
MAX_MESSAGE = 300  # characters of a server's error message kept in our own
TOKEN_HEADER = "X-CAP-API-OAUTH-TOKEN"
REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-cap-api-oauth-token", "cookie", "set-cookie"})
SECRET_KEYS = frozenset({"accesstoken", "secret", "key", "password", "token", "authorization", "clientsecret"})
DEPRECATION_HINT = (
    "the target-communication endpoints are being phased out by Capillary; "
    "new milestones use loyalty promotions (/v3/promotions)"
)
_MEDIA_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+")
M = TypeVar("M", bound=BaseModel)


# ---- credentials ----


def check_credential(value: str, what: str, *, token: bool = False) -> None:
    """Refuse a credential that cannot travel safely: line breaks, control characters, non-ASCII.

    The message names the credential and where it came from, never its value. A token is one word
    (no spaces); a password or secret may contain spaces.
    """
    if not value:
        raise AuthError(f"{what} is empty")
    if "\r" in value or "\n" in value:
        raise AuthError(
            f"{what} contains a line break; refusing to use it",
            hint="a trailing newline usually comes from `echo` or a file: set the value with printf '%s' or strip it",
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise AuthError(f"{what} contains a control character; refusing to use it")
    if not value.isascii():
        raise AuthError(
            f"{what} contains non-ASCII characters; refusing to use it",
            hint="Capillary credentials and tokens are plain ASCII; check for a pasted typographic quote or space",
        )
    if token and " " in value:
        raise AuthError(f"{what} contains a space; refusing to use it")


def _named(what: str, name: str, where: Mapping[str, str] | None) -> str:
    source = (where or {}).get(name)
    return f"{what} (from {source})" if source else what


def basic_header(username: str, password: str) -> str:
    digest = hashlib.md5(password.encode("utf-8")).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode("ascii")


class Auth:
    """Adds credentials to requests.

    `refresh` is called after a 401 and returns True when a retry may help; `accepted` after any
    other answer to a request that carried `sent`. `secrets` lists every value that must never be
    shown (the client scrubs them from its messages as a last line of defence).
    """

    def headers(self, client: Client) -> dict[str, str]:
        raise NotImplementedError

    def refresh(self, client: Client, sent: Mapping[str, str]) -> bool:
        return False

    def accepted(self, sent: Mapping[str, str]) -> None:
        pass

    def secrets(self) -> list[str]:
        return []


class BasicAuth(Auth):
    def __init__(self, username: str, password: str, *, where: Mapping[str, str] | None = None) -> None:
        check_credential(username, _named("the username", "username", where))
        if ":" in username:
            raise AuthError(f"{_named('the username', 'username', where)} contains ':', which Basic auth cannot carry")
        check_credential(password, _named("the password", "password", where))
        self._header = basic_header(username, password)
        digest = hashlib.md5(password.encode("utf-8")).hexdigest()
        # A password equal to the (public) user name cannot be hidden by scrubbing, and would blank the name.
        public = password == username
        self._secrets = [*([] if public else [password]), digest, self._header, self._header.removeprefix("Basic ")]

    def headers(self, client: Client) -> dict[str, str]:
        return {"Authorization": self._header}

    def secrets(self) -> list[str]:
        return list(self._secrets)


class TokenAuth(Auth):
    """A ready token (COMMCTL_TOKEN): nothing to renew, so a 401 is final."""

    def __init__(self, token: str, *, where: Mapping[str, str] | None = None) -> None:
        check_credential(token, _named("the OAuth token", "token", where), token=True)
        self.token = token

    def headers(self, client: Client) -> dict[str, str]:
        return {TOKEN_HEADER: self.token}

    def secrets(self) -> list[str]:
        return [self.token]


def renewal_margin(ttl: float) -> float:
    """How long before its expiry a token is replaced: a fifth of its life, at most a minute."""
    return min(60.0, ttl / 5)


@dataclass
class _Issued:
    value: str
    expires: float | None  # wall-clock seconds; None when the server gave no lifetime
    ttl: float
    proven: bool  # a request has been accepted with it (or it came from the cache)

    def expiring(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires - renewal_margin(self.ttl)


class OAuth(Auth):
    """Client key + secret: tokens from the token endpoint, renewed as often as a long run needs.

    A token is replaced shortly before `ttlSeconds` runs out, and after a 401 on a token that has
    worked before. All threads share one renewal (they wait on the lock while it happens). A 401 on
    a token that has never worked, i.e. straight after a renewal, is final: exit 4, no loop.
    With a `cache`, tokens are kept on disk across runs, keyed by host and client key.
    """

    def __init__(
        self,
        key: str,
        secret: str,
        *,
        cache: TokenCache | None = None,
        where: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_credential(key, _named("the OAuth client key", "client_key", where))
        check_credential(secret, _named("the OAuth client secret", "client_secret", where))
        self.key, self.secret = key, secret
        self.cache, self.clock = cache, clock
        self._current: _Issued | None = None
        self._refused: set[str] = set()
        self._seen: list[str] = []
        self._lock = threading.Lock()

    def headers(self, client: Client) -> dict[str, str]:
        with self._lock:
            current = self._current
            if current is None or current.expiring(self.clock()):
                current = self._renew(client)
            return {TOKEN_HEADER: current.value}

    def _renew(self, client: Client) -> _Issued:
        """Under the lock: a valid cached token if there is one (another run may have renewed), else a new one."""
        now = self.clock()
        if self.cache is not None:
            cached = self.cache.load(client.base_url, self.key, self.secret)
            if cached and cached.token not in self._refused and now < cached.expires - renewal_margin(cached.ttl):
                self._current = _Issued(cached.token, cached.expires, cached.ttl, proven=True)
                self._seen.append(cached.token)
                return self._current
        token = client.generate_token(self.key, self.secret)
        ttl = token.ttlSeconds
        expires = now + ttl if ttl else None
        self._current = _Issued(token.accessToken, expires, float(ttl or 0), proven=False)
        self._seen.append(token.accessToken)
        if self.cache is not None and ttl:
            self.cache.store(client.base_url, self.key, self.secret, token.accessToken, ttl=ttl, issued=now)
        return self._current

    def refresh(self, client: Client, sent: Mapping[str, str]) -> bool:
        with self._lock:
            current = self._current
            if current is None or sent.get(TOKEN_HEADER) != current.value:
                return True  # renewed (or being renewed) since this request left: try the new token
            if not current.proven:
                return False  # a 401 straight after a renewal: the credentials themselves are refused
            self._refused.add(current.value)
            if self.cache is not None:
                self.cache.drop(client.base_url, self.key, current.value)
            self._current = None  # the next headers() renews, once for every thread
            return True

    def accepted(self, sent: Mapping[str, str]) -> None:
        current = self._current
        if current is not None and sent.get(TOKEN_HEADER) == current.value:
            current.proven = True

    def secrets(self) -> list[str]:
        return [self.secret, *self._seen]


class _NoCookies(CookieJar):
    """Cookies are no part of this API (its docs' examples leak a CDN cookie): never keep or send one."""

    def set_cookie(self, cookie: Cookie) -> None:
        pass

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass


# ---- a deadline for the whole request ----


class _Deadline(threading.local):
    at: float | None = None

    def bound(self, timeout: float | None, error: type[Exception]) -> float | None:
        """The per-operation timeout, shortened to what is left of the request's deadline."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """Every socket operation gets at most what is left of the current thread's request deadline.

    httpx's timeouts bound each read; a server trickling one byte a second would never trip them.
    """

    def __init__(self, backend: httpcore.NetworkBackend, deadline: _Deadline) -> None:
        self._backend, self._deadline = backend, deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _BoundedStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._backend.connect_unix_socket(path, timeout, socket_options), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _bound_transport(transport: httpx.BaseTransport | None, deadline: _Deadline) -> bool:
    """Give an httpx transport's connection pool the deadline-aware backend; False if it has none.

    httpx offers no public hook for the network backend, so this reaches into `_pool`; the tests of
    a trickling server fail loudly if a new httpx moves it.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        return False
    if not isinstance(backend, _BoundedBackend):
        pool._network_backend = _BoundedBackend(backend, deadline)  # type: ignore[union-attr]
    return True


# ---- bounded reading ----


class _TooLarge(Exception):
    pass


class _Undecodable(Exception):
    pass


class _Inflate:
    """A streaming gzip/deflate decoder whose output is capped by the caller, chunk by chunk."""

    def __init__(self, encoding: str) -> None:
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise _Undecodable(f"unsupported content encoding {encoding[:40]!r}")
        self.encoding = encoding
        self.z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: a gzip or a zlib header
        self.fresh = True

    def feed(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        try:
            while data:
                part = self.z.decompress(data, room - len(out) + 1)
                out += part
                if len(out) > room:
                    raise _TooLarge
                if not part and self.z.unconsumed_tail == data:
                    break
                data = self.z.unconsumed_tail
                self.fresh = False
            return bytes(out)
        except zlib.error:
            if self.encoding == "deflate" and self.fresh:  # some servers send raw deflate, without the zlib header
                self.z, self.fresh = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.feed(data, room)
            raise _Undecodable(f"the {self.encoding} body cannot be decompressed") from None

    def finish(self, room: int) -> bytes:
        try:
            tail = self.z.flush()
        except zlib.error:
            raise _Undecodable(f"the {self.encoding} body cannot be decompressed") from None
        if len(tail) > room:
            raise _TooLarge
        return tail


def _read_body(response: httpx.Response, limit: int, deadline: float) -> bytes:
    """The decoded body, at most `limit` bytes (else _TooLarge), read before the deadline (else ReadTimeout)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    inflate = None if encoding in ("", "identity") else _Inflate(encoding)
    length = response.headers.get("content-length", "")
    if inflate is None and length.isdigit() and int(length) > limit:
        raise _TooLarge
    body = bytearray()
    # The raw stream, not iter_raw(): a reply built in memory (MockTransport) is already "consumed" for httpx.
    stream = response.stream
    assert isinstance(stream, httpx.SyncByteStream)
    for chunk in stream:
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the request's deadline has passed")
        body += inflate.feed(chunk, limit - len(body)) if inflate else chunk
        if len(body) > limit:
            raise _TooLarge
    if inflate:
        body += inflate.finish(limit - len(body))
    return bytes(body)


# ---- the client ----


@dataclass
class Reply:
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes | None  # None when an error body was too large to keep


class Client:
    def __init__(
        self,
        base_url: str,
        auth: Auth | None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        log: Callable[[str], None] | None = None,
        backoff: float = 0.5,
        budget: float = 120.0,
        max_connections: int = 16,
        max_reply: int = MAX_REPLY,
        sleep: Callable[[float], object] | None = None,
        limiter: Limiter | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.auth = auth
        self.limiter = limiter
        self.base_url = base_url.rstrip("/")
        self.timeout, self.max_reply = timeout, max_reply
        # Once `stop` is set (a signal), a failed attempt is not tried again: a backoff under way ends at
        # once, so a stopped run finishes within the timeout, not the retry budget (SPEC 8.3).
        self.stop = stop or threading.Event()
        self.retries, self.backoff, self.budget = retries, backoff, budget
        self.sleep = sleep or self.stop.wait
        self.log = log
        self._deadline = _Deadline()
        self._scrub_for: tuple[str, ...] = ()
        self._scrub_list: list[str] = []
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        verify = not base_url.startswith("http://")  # no TLS to set up for plain http (loopback or --insecure)
        self.http = httpx.Client(
            base_url=self.base_url + "/v3",
            transport=transport,
            timeout=timeout,
            limits=limits,
            headers={
                "User-Agent": f"commctl/{__version__}",
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",  # only what _Inflate decodes with a cap
            },
            cookies=_NoCookies(),
            verify=verify,
        )
        # httpx's own transport (not one made here: that would switch off proxies from the environment),
        # and the proxies' pools, get the deadline-aware network backend.
        for pool in (self.http._transport, *self.http._mounts.values()):
            _bound_transport(pool, self._deadline)
        # Every request goes to base_url, so the transport (a proxy's, when the environment names one) is
        # chosen once, and each request is built from a ready prefix and headers and handed to it straight.
        # httpx.Client.send would add nothing used here (no auth flow, redirects or cookies) and
        # build_request parses each URL twice: together about a quarter of a request's CPU (SPEC 9).
        self._transport = self.http._transport_for_url(self.http.base_url)
        self._prefix = str(self.http.base_url).rstrip("/")
        # Names as given (User-Agent, not user-agent), as httpx.Client would send them.
        self._headers = [(k.decode("ascii"), v.decode("ascii")) for k, v in self.http.headers.raw]
        self._timeout = self.http.timeout.as_dict()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- endpoints ----

    def communications(self, group: int, target: int) -> list[Communication]:
        path = f"/targetGroups/{group}/targets/{target}/communications"
        return self._items("GET", path, self.request("GET", path), Communication)

    def upsert(self, group: int, target: int, items: list[dict[str, Any]]) -> list[Communication]:
        path = f"/targetGroups/{group}/targets/{target}/communications/upsert"
        return self._items("POST", path, self.request("POST", path, body=items), Communication)

    def channels(self) -> list[Channel]:
        path = "/targetGroups/channels"
        return self._items("GET", path, self.request("GET", path), Channel)

    def channels_raw(self) -> list[Any]:
        """The channel list as the API sent it (for -o json), after checking its shape."""
        return self._raw("/targetGroups/channels", Channel)

    def groups(self) -> list[Any]:
        return self._raw("/targetGroups", Entity)

    def targets(self, group: int) -> list[Any]:
        return self._raw(f"/targetGroups/{group}/targets", Entity)

    def generate_token(self, key: str, secret: str) -> Token:
        path = "/oauth/token/generate"
        data = self.request("POST", path, body={"key": key, "secret": secret}, auth=False)
        token = _validate("POST", path, data, Token, "data")
        try:
            check_credential(token.accessToken, "the token from the token endpoint", token=True)
        except AuthError as e:
            e.hint = "the token endpoint (or a proxy in front of it) sent a token no HTTP header can carry"
            raise
        return token

    def _raw(self, path: str, model: type[M]) -> list[Any]:
        data = self.request("GET", path)
        self._items("GET", path, data, model)
        return _as_list(data)

    def _items(self, method: str, path: str, data: Any, model: type[M]) -> list[M]:
        if data is not None and not isinstance(data, list | dict):
            raise unexpected(method, path, f"data is {_kind(data)}, expected a list of objects")
        return [_validate(method, path, item, model, f"data[{n}]") for n, item in enumerate(_as_list(data))]

    # ---- transport, retries, envelope ----

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """Send one request with retries; return the envelope's `data` or raise a commctl error.

        The data and any error message are scrubbed of every secret the client knows: a server that
        echoes what it was sent gets nothing shown.
        """
        try:
            return self.scrub_data(self._request(method, path, body, auth))
        except CommctlError as e:
            e.message = self.scrub(e.message)
            e.hint = self.scrub(e.hint) if e.hint else e.hint
            e.args = (e.message,)
            raise

    def _request(self, method: str, path: str, body: Any, auth: bool) -> Any:
        # ASCII JSON: lone surrogates read from the API travel back as the escapes they arrived as.
        content = None if body is None else json.dumps(body).encode("ascii")
        headers = {"Content-Type": "application/json"} if content is not None else {}
        deadline = time.monotonic() + self.budget
        attempt = unauthorized = 0
        while True:
            if auth and self.auth:
                headers.update(self.auth.headers(self))
            delay: float | None = None
            try:
                reply = self._limited(method, path, content, body, headers)
            except httpx.LocalProtocolError:
                # h11 refused to send something (it would quote the offending header value: never show it).
                raise AuthError(
                    f"{method} /v3{path}: the request could not be sent (an invalid header value)"
                ) from None
            except httpx.TransportError as e:
                error: CommctlError = UnavailableError(f"{method} /v3{path}: {self._describe(e)}")
            else:
                if reply.status == 401 and auth and self.auth:
                    unauthorized += 1  # bounded: a server that answers 401 to every token cannot loop us
                    if unauthorized <= 3 and self.auth.refresh(self, headers):
                        continue
                elif auth and self.auth:
                    self.auth.accepted(headers)
                if reply.status < 500 and reply.status not in RETRY_STATUSES:
                    return _parse(method, path, reply)
                error = _error_for(method, path, reply)
                if not isinstance(error, UnavailableError):
                    raise error  # a 500 carrying API errors[] is a business answer: asking again changes nothing
                delay = _retry_after(reply.headers)
            attempt += 1
            if attempt > self.retries:
                raise error
            wait = delay if delay is not None else random.uniform(0.5, 1.0) * self.backoff * 2 ** (attempt - 1)
            if time.monotonic() + wait > deadline or self.stop.is_set():
                raise error
            self.sleep(wait)
            if self.stop.is_set():
                raise error

    def _limited(self, method: str, path: str, content: bytes | None, body: Any, headers: dict[str, str]) -> Reply:
        """One attempt through the run's rate limiter, which learns from every answer (SPEC section 9)."""
        if self.limiter is None:
            return self._send(method, path, content, body, headers)
        ticket = self.limiter.acquire()  # StoppedError: not sent
        status: int | None = None
        retry_after: float | None = None
        try:
            reply = self._send(method, path, content, body, headers)
            status = reply.status
            if status == 429:
                retry_after = _retry_after(reply.headers)
            return reply
        finally:
            self.limiter.release(ticket, status, retry_after)

    def _send(self, method: str, path: str, content: bytes | None, body: Any, headers: dict[str, str]) -> Reply:
        """One attempt, bounded by the deadline from connect to the last byte of the decoded body."""
        request = httpx.Request(
            method, self._prefix + path, headers=[*self._headers, *headers.items()], content=content, extensions={"timeout": self._timeout}
        )
        if self.log:
            self._log_request(request, body)
        deadline = time.monotonic() + self.timeout
        self._deadline.at = deadline
        try:
            response = self._transport.handle_request(request)
            try:
                limit = self.max_reply if response.is_success else MAX_ERROR_REPLY
                try:
                    data: bytes | None = _read_body(response, limit, deadline)
                except _TooLarge:
                    if response.is_success:
                        raise unexpected(method, path, f"the reply is larger than {_size(limit)}") from None
                    data = None  # an error reply: its status says enough
                except _Undecodable as e:
                    raise unexpected(method, path, str(e)) from None
            finally:
                response.close()
        finally:
            self._deadline.at = None
        reply = Reply(response.status_code, response.reason_phrase, response.headers, data)
        if self.log:
            self._log_reply(request, reply)
        return reply

    def _describe(self, e: httpx.TransportError) -> str:
        host = self.http.base_url.host
        if isinstance(e, httpx.TimeoutException):
            return f"{host} timed out (no complete answer within {self.timeout:g}s)"
        if isinstance(e, httpx.RemoteProtocolError):
            # h11 quotes the server's bytes in its messages: say what happened, not what was sent.
            said = str(e)
            what = (
                "closed the connection before answering"
                if "disconnected" in said
                else "closed the connection in the middle of its reply"
                if "peer closed" in said
                else "sent a reply that is not valid HTTP"
            )
            return f"{host} {what}"
        text = str(e) or type(e).__name__
        return f"cannot reach {host}: " + (text.split("] ", 1)[-1] if text.startswith("[Errno") else text)[:MAX_MESSAGE]

    def _secrets(self) -> list[str]:
        """The secrets to scrub, longest first, each also as a JSON string would escape it."""
        held = tuple(self.auth.secrets()) if self.auth else ()
        if held != self._scrub_for:  # recomputed only when a token is renewed
            secrets = {s for s in held if len(s) >= 4}
            escaped = {json.dumps(s, ensure_ascii=ascii)[1:-1] for s in secrets for ascii in (False, True)}
            self._scrub_list, self._scrub_for = sorted(secrets | escaped, key=len, reverse=True), held
        return self._scrub_list

    def scrub(self, text: str, secrets: list[str] | None = None) -> str:
        """Replace every secret this client holds by <redacted> (a safety net behind redaction by key)."""
        for secret in self._secrets() if secrets is None else secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub_data(self, data: Any, secrets: list[str] | None = None) -> Any:
        """Parsed JSON with every string (keys too) scrubbed; the same object when no secret is in it."""
        if secrets is None:  # the top call: one C-speed serialisation tells whether any walk is needed
            secrets = self._secrets()
            text = json.dumps(data, ensure_ascii=False)
            if not any(secret in text for secret in secrets):
                return data
        if isinstance(data, str):
            return self.scrub(data, secrets)
        if isinstance(data, list):
            return [self.scrub_data(v, secrets) for v in data]
        if isinstance(data, dict):
            return {
                self.scrub(k, secrets) if isinstance(k, str) else k: self.scrub_data(v, secrets)
                for k, v in data.items()
            }
        return data

    # ---- --verbose ----

    def _emit(self, line: str) -> None:
        assert self.log
        self.log(self.scrub(line))

    def _log_request(self, request: httpx.Request, body: Any) -> None:
        self._emit(f"> {request.method} {request.url}")
        for name, value in request.headers.items():
            self._emit(f">   {name}: {REDACTED if name.lower() in SECRET_HEADERS else value}")
        if body is not None:
            self._emit(">   " + _shorten(json.dumps(redact(body), ensure_ascii=False), 2000))

    def _log_reply(self, request: httpx.Request, reply: Reply) -> None:
        request_id = reply.headers.get("x-cap-requestid")
        suffix = f" (request id {request_id[:80]})" if request_id else ""
        self._emit(f"< {reply.status} {reply.reason[:80]} {request.method} {request.url}{suffix}")
        for name, value in reply.headers.items():
            self._emit(f"<   {name}: {REDACTED if name.lower() in SECRET_HEADERS else _shorten(value, 200)}")
        if reply.body is None:
            self._emit("<   (body too large to show)")
        elif reply.body:
            parsed = _json(reply.body)
            text = (
                json.dumps(redact(parsed), ensure_ascii=False)
                if parsed is not _NOT_JSON
                else f"({len(reply.body)} bytes, not JSON) " + reply.body[:500].decode("utf-8", "replace")
            )
            self._emit("<   " + _shorten(text, 2000))


def redact(data: Any) -> Any:
    """A copy of parsed JSON with the value of every secret-looking key replaced (at any depth)."""
    if isinstance(data, dict):
        return {
            k: REDACTED if isinstance(k, str) and k.lower().replace("_", "") in SECRET_KEYS else redact(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def unexpected(method: str, path: str, reason: str) -> ApiError:
    return ApiError(
        f"unexpected reply from {method} /v3{path}: {reason}",
        hint="a proxy or gateway may be answering instead of the API; --verbose shows the reply",
    )


def _validate(method: str, path: str, data: Any, model: type[M], where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False)
        first = errors[0]
        loc = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise unexpected(method, path, f"{_shorten(loc, 100)}: {first['msg']}{more}") from None


def _as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    return data if isinstance(data, list) else [data]


def _kind(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


_NOT_JSON = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(body: bytes) -> Any:
    """Parsed JSON, or _NOT_JSON (bad syntax or encoding, NaN/Infinity, nesting past the recursion limit)."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


@dataclass
class _Envelope:
    data: Any
    errors: list[tuple[int | None, str]]  # (code, message) of each error item


def _envelope(reply: Reply) -> _Envelope | str:
    """The `{data, errors, warnings}` envelope, or a short reason why the body is not one."""
    if reply.body is None:
        return "the reply is too large"
    if not reply.body.strip():
        return "the reply is empty"
    parsed = _json(reply.body)
    if parsed is _NOT_JSON:
        media = _MEDIA_TYPE.match(reply.headers.get("content-type", ""))
        return f"not JSON ({media.group(0)})" if media else "not JSON"
    if not isinstance(parsed, dict):
        return f"expected a JSON object with data and errors, got {_kind(parsed)}"
    raw = parsed.get("errors")
    if raw is not None and not isinstance(raw, list):
        return f"errors is {_kind(raw)}, expected a list"
    errors = []
    for item in raw or []:
        item = item if isinstance(item, dict) else {"message": item if isinstance(item, str) else None}
        code, message = item.get("code"), item.get("message")
        code = int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else None
        errors.append((code, _shorten(" ".join(message.split()), MAX_MESSAGE) if isinstance(message, str) else ""))
    return _Envelope(parsed.get("data"), errors)


def _error_for(method: str, path: str, reply: Reply) -> ApiError | AuthError:
    status = reply.status
    env = _envelope(reply)
    errors = env.errors if isinstance(env, _Envelope) else []
    code, detail = errors[0] if errors else (None, "")
    text = f"HTTP {status} {reply.reason[:80]} from {method} /v3{path}"
    if detail:
        text += f": {detail}" + (f" (code {code})" if code is not None else "")
    if len(errors) > 1:
        text += f" (+{len(errors) - 1} more)"
    request_id = reply.headers.get("x-cap-requestid")
    if request_id:
        text += f" [request id {request_id[:80]}]"
    if status in (401, 403):
        return AuthError(
            text,
            hint="check the credentials (username/password, client key/secret or token) and their Target Loyalty access",
        )
    if status in RETRY_STATUSES or (status >= 500 and not (status == 500 and errors)):
        return UnavailableError(text, status=status, code=code, hint="the API is having trouble; try again later")
    hint = DEPRECATION_HINT if status in (404, 405, 410) and not errors and "communications" in path else None
    return ApiError(text, status=status, code=code, hint=hint)


def _parse(method: str, path: str, reply: Reply) -> Any:
    if not 200 <= reply.status < 300:
        raise _error_for(method, path, reply)
    env = _envelope(reply)
    if isinstance(env, str):
        error = unexpected(method, path, env)
        error.status = reply.status
        raise error
    if env.errors:
        raise _error_for(method, path, reply)
    return env.data
