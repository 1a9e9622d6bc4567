"""The target-communications API over httpx: one method per endpoint, envelope, errors, retries.

Knows nothing of the terminal: it raises commctl errors and reports HTTP traffic to an optional
`log` callback with secrets redacted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx

from . import __version__
from .errors import ApiError, AuthError, UnavailableError
from .models import Channel, Communication, Envelope, Token

RETRY_STATUSES = frozenset({429, 461, 502, 503, 504, 521})
REDACTED = "<redacted>"
SECRET_HEADERS = ("authorization", "x-cap-api-oauth-token", "cookie")
_SECRET_JSON = re.compile(r'("(?:accessToken|secret|key|password)"\s*:\s*)"[^"]*"')
DEPRECATION_HINT = (
    "the target-communication endpoints are being phased out by Capillary; "
    "new milestones use loyalty promotions (/v3/promotions)"
)


def basic_header(username: str, password: str) -> str:
    digest = hashlib.md5(password.encode("utf-8")).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode("ascii")


class Auth:
    """Adds credentials to requests; `refresh` returns True when a retry after 401 may help."""

    def headers(self, client: Client) -> dict[str, str]:
        raise NotImplementedError

    def refresh(self, client: Client, sent: dict[str, str]) -> bool:
        return False


class BasicAuth(Auth):
    def __init__(self, username: str, password: str) -> None:
        self._header = basic_header(username, password)

    def headers(self, client: Client) -> dict[str, str]:
        return {"Authorization": self._header}


class TokenAuth(Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def headers(self, client: Client) -> dict[str, str]:
        return {"X-CAP-API-OAUTH-TOKEN": self.token}


class OAuth(Auth):
    """Client key + secret: one token per run, generated on first use and once more after a 401."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret
        self._token: str | None = None
        self._lock = threading.Lock()
        self._refreshed = False

    def headers(self, client: Client) -> dict[str, str]:
        with self._lock:
            if self._token is None:
                self._token = client.generate_token(self.key, self.secret).accessToken
            return {"X-CAP-API-OAUTH-TOKEN": self._token}

    def refresh(self, client: Client, sent: dict[str, str]) -> bool:
        """After a 401: retry if another thread already renewed the token, else renew it once per run."""
        with self._lock:
            if sent.get("X-CAP-API-OAUTH-TOKEN") != self._token:  # renewed, or being renewed, since it was sent
                return True
            if self._refreshed:
                return False
            self._refreshed = True
            self._token = None
        return True


class _NoCookies(CookieJar):
    """Cookies are no part of this API (its docs' examples leak a CDN cookie): never keep or send one."""

    def set_cookie(self, cookie: Cookie) -> None:
        pass

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass


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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = auth
        self.retries, self.backoff, self.budget, self.sleep = retries, backoff, budget, sleep
        self.log = log
        hooks = {"request": [self._log_request], "response": [self._log_response]} if log else {}
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/v3",
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": f"commctl/{__version__}", "Accept": "application/json"},
            event_hooks=hooks,  # type: ignore[arg-type]
            cookies=_NoCookies(),
            verify=not base_url.startswith("http://"),  # no TLS to set up for plain http (loopback or --insecure)
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- endpoints ----

    def communications(self, group: int, target: int) -> list[Communication]:
        data = self.request("GET", f"/targetGroups/{group}/targets/{target}/communications")
        return [Communication.model_validate(c) for c in _as_list(data)]

    def upsert(self, group: int, target: int, items: list[dict[str, Any]]) -> list[Communication]:
        data = self.request("POST", f"/targetGroups/{group}/targets/{target}/communications/upsert", body=items)
        return [Communication.model_validate(c) for c in _as_list(data)]

    def channels(self) -> list[Channel]:
        return [Channel.model_validate(c) for c in self.channels_raw()]

    def channels_raw(self) -> list[Any]:
        return _as_list(self.request("GET", "/targetGroups/channels"))

    def groups(self) -> list[Any]:
        return _as_list(self.request("GET", "/targetGroups"))

    def targets(self, group: int) -> list[Any]:
        return _as_list(self.request("GET", f"/targetGroups/{group}/targets"))

    def generate_token(self, key: str, secret: str) -> Token:
        data = self.request("POST", "/oauth/token/generate", body={"key": key, "secret": secret}, auth=False)
        try:
            return Token.model_validate(data)
        except ValueError:
            raise AuthError("the token endpoint returned no accessToken") from None

    # ---- transport, retries, envelope ----

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """Send one request with retries; return the envelope's `data` or raise a commctl error."""
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"} if content is not None else {}
        deadline = time.monotonic() + self.budget
        attempt = 0
        while True:
            if auth and self.auth:
                headers.update(self.auth.headers(self))
            delay: float | None = None
            try:
                response = self.http.request(method, path, content=content, headers=headers)
            except httpx.TransportError as e:
                error: ApiError | AuthError = UnavailableError(
                    f"{method} /v3{path}: cannot reach {self.http.base_url.host}: {_describe(e)}"
                )
            else:
                if response.status_code == 401 and auth and self.auth and self.auth.refresh(self, headers):
                    continue
                if response.status_code not in RETRY_STATUSES:
                    return _parse(method, path, response)
                error = _error_for(method, path, response)
                delay = _retry_after(response)
            attempt += 1
            if attempt > self.retries:
                raise error
            wait = delay if delay is not None else random.uniform(0.5, 1.0) * self.backoff * 2 ** (attempt - 1)
            if time.monotonic() + wait > deadline:
                raise error
            self.sleep(wait)

    def _log_request(self, request: httpx.Request) -> None:
        assert self.log
        self.log(f"> {request.method} {request.url}")
        for name, value in request.headers.items():
            self.log(f">   {name}: {REDACTED if name.lower() in SECRET_HEADERS else value}")
        if request.content:
            self.log(">   " + redact(request.content.decode("utf-8", "replace"))[:2000])

    def _log_response(self, response: httpx.Response) -> None:
        assert self.log
        response.read()
        request_id = response.headers.get("x-cap-requestid")
        suffix = f" (request id {request_id})" if request_id else ""
        self.log(
            f"< {response.status_code} {response.reason_phrase} {response.request.method} {response.request.url}{suffix}"
        )
        if response.content:
            self.log("<   " + redact(response.text)[:2000])


def redact(text: str) -> str:
    return _SECRET_JSON.sub(lambda m: m.group(1) + f'"{REDACTED}"', text)


def _as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    return data if isinstance(data, list) else [data]


def _describe(e: httpx.TransportError) -> str:
    if isinstance(e, httpx.TimeoutException):
        return "timed out"
    text = str(e) or type(e).__name__
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _envelope(response: httpx.Response) -> Envelope | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return Envelope(data=data)
    try:
        return Envelope.model_validate(data)
    except ValueError:
        return None


def _error_for(method: str, path: str, response: httpx.Response) -> ApiError | AuthError:
    status = response.status_code
    env = _envelope(response)
    first = env.errors[0] if env and env.errors else None
    detail = (first.message or "") if first else ""
    code = first.code if first else None
    text = f"HTTP {status} {response.reason_phrase} from {method} /v3{path}"
    if detail:
        text += f": {detail}" + (f" (code {code})" if code is not None else "")
    if env and env.errors and len(env.errors) > 1:
        text += f" (+{len(env.errors) - 1} more)"
    request_id = response.headers.get("x-cap-requestid")
    if request_id:
        text += f" [request id {request_id}]"
    if status in (401, 403):
        return AuthError(
            text,
            hint="check the credentials (username/password, client key/secret or token) and their Target Loyalty access",
        )
    if status in RETRY_STATUSES or (status >= 500 and not (status == 500 and first)):
        return UnavailableError(text, status=status, code=code, hint="the API is having trouble; try again later")
    hint = DEPRECATION_HINT if status in (404, 405, 410) and not first and "communications" in path else None
    return ApiError(text, status=status, code=code, hint=hint)


def _parse(method: str, path: str, response: httpx.Response) -> Any:
    if not response.is_success:
        raise _error_for(method, path, response)
    env = _envelope(response)
    if env is None:
        raise ApiError(
            f"HTTP {response.status_code} from {method} /v3{path}: the reply is not a JSON envelope",
            status=response.status_code,
        )
    if env.errors:
        raise _error_for(method, path, response)
    return env.data
