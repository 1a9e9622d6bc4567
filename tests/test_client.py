"""The client against httpx.MockTransport: envelopes, status -> error mapping, retries, auth headers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from commctl.client import Auth, BasicAuth, Client, OAuth, TokenAuth, basic_header
from commctl.errors import ApiError, AuthError, CommctlError, ExitCode, UnavailableError

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "api-examples"  # copied from shared/api-examples
Handler = Callable[[httpx.Request], httpx.Response]


def make(handler: Handler, auth: Auth | None = None, retries: int = 3, log: list[str] | None = None) -> Client:
    return Client(
        "https://eu.api.example",
        auth or BasicAuth("till", "pw"),
        retries=retries,
        backoff=0,
        transport=httpx.MockTransport(handler),
        log=log.append if log is not None else None,
        sleep=lambda s: None,
    )


def ok(data: object, **extra: object) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "errors": None, **extra})


COMM = {
    "id": 11,
    "targetId": 5200,
    "targetGroupId": 4100,
    "communicationType": "FINISH",
    "channelId": 2,
    "subjectTemplate": "s",
    "messageTemplate": "m",
    "sender": "x",
    "offsetDays": 1,
    "active": True,
}


def test_basic_header_matches_the_documented_example() -> None:
    assert basic_header("demo.till", "example-pass") == "Basic ZGVtby50aWxsOmE3YjdiZWFkZjgzYjQ4MDMxZmI5ZTAyNWVhODA1MzYx"


def test_upsert_sends_a_json_array_with_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok([COMM], warnings=None)

    with make(handler) as client:
        [result] = client.upsert(4100, 5200, [{"communicationType": "FINISH", "channelId": 2, "messageTemplate": "m"}])
    assert result.id == 11 and result.key == ("FINISH", 2)
    request = seen[0]
    assert request.method == "POST"
    assert request.url == "https://eu.api.example/v3/targetGroups/4100/targets/5200/communications/upsert"
    assert json.loads(request.content) == [{"communicationType": "FINISH", "channelId": 2, "messageTemplate": "m"}]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"].startswith("commctl/")
    assert request.headers["authorization"] == basic_header("till", "pw")
    assert "cookie" not in request.headers


def test_templates_travel_byte_for_byte() -> None:
    text = "  Ünïcödé 😀 {{x}}\r\n\ttab  "
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return ok([])

    with make(handler) as client:
        client.upsert(1, 2, [{"messageTemplate": text}])
    assert json.loads(bodies[0].decode("utf-8")) == [{"messageTemplate": text}]


@pytest.mark.parametrize("name", ["get-communications.200.json", "upsert.200.2022.json", "upsert.200.2025.json"])
def test_parses_every_documented_communication_reply(name: str) -> None:
    body = (EXAMPLES / name).read_bytes()
    with make(lambda r: httpx.Response(200, content=body)) as client:
        comms = client.communications(1, 2)
    assert comms and all(isinstance(c.channelId, int) for c in comms)
    assert all(c.attribution is None or "createdOn" in c.attribution for c in comms)


def test_parses_documented_channels_groups_and_targets() -> None:
    replies = {
        "/v3/targetGroups/channels": "channels.200.json",
        "/v3/targetGroups": "get-target-groups.200.result.json",
        "/v3/targetGroups/7/targets": "get-targets.200.result.json",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=(EXAMPLES / replies[request.url.path]).read_bytes())

    with make(handler) as client:
        assert [(c.id, c.name) for c in client.channels()] == [(1, "SMS"), (2, "EMAIL"), (3, "MOBILE PUSH")]
        assert client.groups() and all(isinstance(g, dict) and "id" in g for g in client.groups())
        assert client.targets(7) and all(isinstance(t, dict) and "id" in t for t in client.targets(7))


def test_tolerates_strings_nulls_and_unknown_fields() -> None:
    odd = {
        **COMM,
        "channelId": "2",
        "sender": None,
        "subjectTemplate": None,
        "configs": [{"name": "a"}],
        "supportedCommChannels": ["SMS"],
        "attribution": None,
    }
    with make(lambda r: httpx.Response(201, json={"data": [odd], "errors": []})) as client:
        [c] = client.communications(1, 2)
    assert (c.channelId, c.sender, c.subjectTemplate) == (2, "", "")
    assert c.api_dict()["configs"] == [{"name": "a"}]


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "text"),
    [
        (400, {}, ApiError, ExitCode.API_REJECTED, "HTTP 400 Bad Request from GET"),
        (
            400,
            {"data": None, "errors": [{"code": 300004, "message": "Invalid input"}]},
            ApiError,
            ExitCode.API_REJECTED,
            "Invalid input (code 300004)",
        ),
        (401, {"errors": [{"code": 1, "message": "bad creds"}]}, AuthError, ExitCode.CONFIG, "HTTP 401"),
        (403, "", AuthError, ExitCode.CONFIG, "HTTP 403 Forbidden"),
        (
            404,
            {"data": None, "errors": [{"code": 310902, "message": "target 9 not found"}]},
            ApiError,
            ExitCode.API_REJECTED,
            "target 9 not found",
        ),
        (500, "<html><body>Internal error</body></html>", UnavailableError, ExitCode.UNAVAILABLE, "HTTP 500"),
        (
            500,
            {"data": None, "errors": [{"code": 310126, "message": "not enrolled"}]},
            ApiError,
            ExitCode.API_REJECTED,
            "not enrolled",
        ),
        (
            200,
            {"data": None, "errors": [{"code": 5, "message": "soft failure"}]},
            ApiError,
            ExitCode.API_REJECTED,
            "soft failure",
        ),
        (200, "<html>gateway</html>", ApiError, ExitCode.API_REJECTED, "unexpected reply from GET /v3/"),
    ],
)
def test_status_to_error(status: int, body: object, error: type[CommctlError], code: int, text: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    with make(handler, retries=0) as client, pytest.raises(error) as info:
        client.communications(1, 2)
    assert info.value.exit_code == code
    assert text in info.value.message
    assert "<html" not in info.value.message


def test_withdrawn_endpoint_gets_a_deprecation_hint() -> None:
    with make(lambda r: httpx.Response(410, json={}), retries=0) as client, pytest.raises(ApiError) as info:
        client.upsert(1, 2, [{}])
    assert info.value.hint and "/v3/promotions" in info.value.hint


@pytest.mark.parametrize("status", [429, 461, 502, 503, 504, 521])
def test_retries_transient_statuses_then_succeeds(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={}) if len(calls) < 3 else ok([COMM])

    with make(handler) as client:
        assert client.communications(1, 2)[0].id == 11
    assert len(calls) == 3


def test_retries_connection_errors_and_gives_up_with_unavailable() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with make(handler, retries=2) as client, pytest.raises(UnavailableError) as info:
        client.channels()
    assert len(calls) == 3
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert "cannot reach eu.api.example: Connection refused" in info.value.message


@pytest.mark.parametrize(
    ("status", "body", "calls"),
    [
        (400, {}, 1),
        (404, {}, 1),
        (500, {"data": None, "errors": [{"code": 310126, "message": "not enrolled"}]}, 1),  # a business error
        (500, {}, 4),  # SPEC 8.4: any other 5xx is the server in trouble, retried
        (501, "<html>oops</html>", 4),
        (599, {}, 4),
    ],
)
def test_which_errors_are_retried(status: int, body: object, calls: int) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(status, text=body) if isinstance(body, str) else httpx.Response(status, json=body)

    with make(handler) as client, pytest.raises(ApiError) as info:
        client.channels()
    assert len(seen) == calls
    assert info.value.exit_code == (ExitCode.UNAVAILABLE if calls > 1 else ExitCode.API_REJECTED)


def test_honours_retry_after() -> None:
    waits: list[float] = []
    replies = iter([httpx.Response(429, headers={"Retry-After": "7"}, json={}), ok([])])
    client = Client(
        "https://h", None, retries=3, transport=httpx.MockTransport(lambda r: next(replies)), sleep=waits.append
    )
    client.channels()
    assert waits == [7.0]


def test_a_stop_ends_a_backoff_at_once_and_is_not_retried() -> None:
    """After Ctrl-C/SIGTERM a request in its backoff gives up now, not after the retry budget (SPEC 8.3)."""
    import threading
    import time

    calls: list[float] = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return httpx.Response(503, headers={"Retry-After": "30"}, json={})

    stop = threading.Event()
    client = Client("https://h", None, retries=5, budget=120, transport=httpx.MockTransport(busy), stop=stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        client.channels()
    assert time.monotonic() - started < 5  # not the 30 s Retry-After
    assert len(calls) == 1 and "503" in info.value.message
    with pytest.raises(UnavailableError):  # once stopped, a failing request is not retried at all
        client.channels()
    assert len(calls) == 2


def test_a_runs_client_stops_retrying_with_its_batch() -> None:
    from commctl.options import ConnectionOptions
    from commctl.runtime import Run

    run = Run(conn=ConnectionOptions(host="sandbox"))
    with run.batch() as stop:
        assert run.client().stop is stop
    run.close()


def test_gives_up_when_retry_after_exceeds_the_budget() -> None:
    waits: list[float] = []
    client = Client(
        "https://h",
        None,
        retries=5,
        budget=10,
        sleep=waits.append,
        transport=httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "60"}, json={})),
    )
    with pytest.raises(UnavailableError) as info:
        client.channels()
    assert waits == []
    assert "429" in info.value.message


def test_backoff_grows_with_jitter() -> None:
    waits: list[float] = []
    client = Client(
        "https://h",
        None,
        retries=3,
        backoff=1.0,
        sleep=waits.append,
        transport=httpx.MockTransport(lambda r: httpx.Response(503, json={})),
    )
    with pytest.raises(UnavailableError):
        client.channels()
    assert len(waits) == 3
    for n, w in enumerate(waits):
        assert 0.5 * 2**n <= w <= 2**n


def test_oauth_token_reused_then_regenerated_after_a_401() -> None:
    tokens = iter(["t1", "t2", "t3"])
    log: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3/oauth/token/generate":
            assert json.loads(request.content) == {"key": "k", "secret": "s3cret"}
            assert "x-cap-api-oauth-token" not in request.headers and "authorization" not in request.headers
            token = next(tokens)
            log.append(("token", token))
            return ok({"accessToken": token, "ttlSeconds": 300})
        used = request.headers.get("x-cap-api-oauth-token")
        log.append(("call", used))
        return httpx.Response(401, json={}) if used == "t1" and len(log) > 3 else ok([])

    with make(handler, auth=OAuth("k", "s3cret")) as client:
        client.channels()
        client.channels()
        client.channels()  # t1 now refused: one new token, then success
    assert list(tokens) == ["t3"]
    assert log == [("token", "t1"), ("call", "t1"), ("call", "t1"), ("call", "t1"), ("token", "t2"), ("call", "t2")]


def test_oauth_bad_secret_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"data": None, "errors": [{"code": 1, "message": "invalid key"}]})

    with make(handler, auth=OAuth("k", "nope")) as client, pytest.raises(AuthError) as info:
        client.channels()
    assert info.value.exit_code == ExitCode.CONFIG


def test_ready_token_header() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return ok([])

    with make(handler, auth=TokenAuth("tok")) as client:
        client.channels()
    assert seen[0]["x-cap-api-oauth-token"] == "tok" and "authorization" not in seen[0]


def test_verbose_log_redacts_secrets() -> None:
    log: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("generate"):
            return ok({"accessToken": "jwt-very-secret", "ttlSeconds": 300})
        return ok([])

    with make(handler, auth=OAuth("key-1", "s3cret-value"), log=log) as client:
        client.channels()
    text = "\n".join(log)
    assert "> POST https://eu.api.example/v3/oauth/token/generate" in text
    assert "< 200 OK GET https://eu.api.example/v3/targetGroups/channels" in text
    for secret in ("jwt-very-secret", "s3cret-value", "key-1"):
        assert secret not in text
    assert "x-cap-api-oauth-token: <redacted>" in text

    log.clear()
    with make(lambda r: ok([]), auth=BasicAuth("till", "pw"), log=log) as client:
        client.channels()
    text = "\n".join(log)
    assert "authorization: <redacted>" in text
    # neither the header value nor the password's md5 inside it appears anywhere in the log
    credentials = basic_header("till", "pw").removeprefix("Basic ")
    assert credentials not in text
    assert base64.b64decode(credentials).decode().split(":")[1] not in text


def test_cookies_are_never_kept_or_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [], "errors": None}, headers={"Set-Cookie": "_cfuvid=abc; Path=/"})

    with make(handler) as client:
        client.channels()
        client.channels()
    assert "cookie" not in seen[1].headers


def test_oauth_expiry_seen_by_many_threads_renews_the_token_once() -> None:
    import threading

    issued: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)
    in_flight = threading.Barrier(6, timeout=5)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generate"):
            with lock:
                issued.append(f"t{len(issued) + 1}")
                return ok({"accessToken": issued[-1], "ttlSeconds": 300})
        if request.headers["x-cap-api-oauth-token"] == "t1" and expired.is_set():
            in_flight.wait()  # every thread has sent the expired token before any learns it expired
            return httpx.Response(401, json={})
        return ok([])

    expired = threading.Event()
    with make(handler, auth=OAuth("k", "s")) as client:
        client.channels()  # t1 works...
        expired.set()  # ...then expires before the server said it would
        errors: list[BaseException] = []

        def call() -> None:
            barrier.wait()
            try:
                client.channels()
            except BaseException as e:  # collected for the assertion below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert issued == ["t1", "t2"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_oauth_renews_shortly_before_expiry_as_often_as_a_long_run_needs() -> None:
    clock, issued, used = Clock(), list[str](), list[str]()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generate"):
            issued.append(f"t{len(issued) + 1}")
            return ok({"accessToken": issued[-1], "ttlSeconds": 300})
        used.append(request.headers["x-cap-api-oauth-token"])
        return ok([])

    start = clock.now
    with make(handler, auth=OAuth("k", "s", clock=clock)) as client:
        for at in (0, 100, 200, 239, 240, 479, 480, 700):  # tokens live 300 s; renewed 60 s before they expire
            clock.now = start + at
            client.channels()
    assert issued == ["t1", "t2", "t3"]
    assert used == ["t1", "t1", "t1", "t1", "t2", "t2", "t3", "t3"]


def test_oauth_a_fresh_token_refused_is_final_with_one_token_request() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/generate"):
            return ok({"accessToken": f"t{len(calls)}", "ttlSeconds": 300})
        return httpx.Response(401, json={"data": None, "errors": [{"code": 1, "message": "no access"}]})

    with make(handler, auth=OAuth("k", "s")) as client, pytest.raises(AuthError) as info:
        client.channels()
    assert info.value.exit_code == ExitCode.CONFIG
    assert calls == ["/v3/oauth/token/generate", "/v3/targetGroups/channels"]


@pytest.mark.parametrize(
    ("data", "ttl"),
    [({"accessToken": "t", "ttlSeconds": -5}, None), ({"accessToken": "t", "ttlSeconds": 10**12}, 2592000)],
)
def test_token_lifetimes_are_sane(data: dict[str, object], ttl: int | None) -> None:
    with make(lambda r: ok(data)) as client:
        assert client.generate_token("k", "s").ttlSeconds == ttl


def test_a_token_reply_of_the_wrong_shape_is_an_unexpected_reply() -> None:
    with make(lambda r: ok(["t"])) as client, pytest.raises(ApiError) as info:
        client.generate_token("k", "s")
    assert info.value.exit_code == ExitCode.API_REJECTED
    assert info.value.message.startswith("unexpected reply from POST /v3/oauth/token/generate: data: ")


def test_verbose_redacts_parsed_bodies_by_key_whatever_the_quoting() -> None:
    log: list[str] = []
    secret = 'se"cr\\"et-XYZZY'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("generate"):
            return ok({"accessToken": "jwt-QWERTY", "ttlSeconds": 300, "nested": [{"Password": "PW-ASDF"}]})
        return httpx.Response(200, json=ok([]).json(), headers={"Set-Cookie": "sid=COOKIE-ZXCV"})

    with make(handler, auth=OAuth("key-1", secret), log=log) as client:
        client.channels()
    text = "\n".join(log)
    for leak in ("XYZZY", "se\\", "QWERTY", "PW-ASDF", "COOKIE-ZXCV"):
        assert leak not in text, leak
    assert '{"key": "<redacted>", "secret": "<redacted>"}' in text
    assert '"accessToken": "<redacted>"' in text and '"Password": "<redacted>"' in text
    assert "set-cookie: <redacted>" in text


def test_error_messages_and_logs_never_carry_a_secret_the_server_echoes() -> None:
    log: list[str] = []
    auth = BasicAuth("till", "pw-ECHO-1")
    secrets = auth.secrets()

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = " ".join(request.headers.values())
        return httpx.Response(400, json={"errors": [{"code": 1, "message": echoed}]}, headers={"X-Echo": echoed})

    with make(handler, auth=auth, log=log, retries=0) as client, pytest.raises(ApiError) as info:
        client.channels()
    for secret in secrets:
        assert secret not in info.value.message
        assert secret not in "\n".join(log)
    assert "<redacted>" in info.value.message


@pytest.mark.parametrize("value", ["nan", "inf", "-3", "Wed, 99 Foo 2026"])
def test_odd_retry_after_values_fall_back_to_backoff(value: str) -> None:
    waits: list[float] = []
    replies = iter([httpx.Response(429, headers={"Retry-After": value}, json={}), ok([])])
    client = Client(
        "https://h",
        None,
        retries=3,
        backoff=0.1,
        transport=httpx.MockTransport(lambda r: next(replies)),
        sleep=waits.append,
    )
    client.channels()
    assert len(waits) == 1 and 0 <= waits[0] <= 0.1


def test_header_names_go_out_as_httpx_would_send_them() -> None:
    names: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        names.extend(k for k, _ in request.headers.raw)
        return ok([])

    make(handler).channels()
    assert {b"User-Agent", b"Accept", b"Accept-Encoding", b"Authorization"} <= set(names)
