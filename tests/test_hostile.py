"""The CLI and the client against a hostile server: bounded in time and memory, classified, one line, no leak."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest

from commctl.client import BasicAuth, Client, OAuth
from commctl.errors import ApiError, ExitCode, UnavailableError

from .conftest import Cli, Outcome
from .hostile import (
    TOKEN_PATH,
    HostileServer,
    bomb_body,
    endless,
    envelope,
    gzip_bomb,
    gzipped,
    reply,
    routes,
    token,
    trickle,
)

COMMS = "/v3/targetGroups/1/targets/2/communications"
COMM = {
    "id": 7,
    "targetGroupId": 1,
    "targetId": 2,
    "communicationType": "START",
    "channelId": 2,
    "messageTemplate": "m",
}
BASIC = {"COMMCTL_USERNAME": "till", "COMMCTL_PASSWORD": "pw-secret-1"}


def show(cli: Cli, server: HostileServer, *extra: str, env: dict[str, str] | None = None) -> Outcome:
    return cli("show", "-g", "1", "-t", "2", "-o", "json", "--host", server.url, *extra, env=env or BASIC)


def one_error(out: Outcome) -> str:
    """The error line of a failed run: exactly one `error:` line, no traceback, no pydantic dump."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out
    assert "Traceback" not in out.stderr and "validation error" not in out.stderr and "pydantic" not in out.stderr, out
    return errors[0]


# ---- time ----


@pytest.mark.waits
@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "status-line-and-headers"])
def test_a_trickling_server_fails_at_the_timeout_not_per_byte(
    cli: Cli, hostile: HostileServer, headers_too: bool
) -> None:
    hostile.mode = trickle(envelope([COMM]), every=0.05, headers_too=headers_too)  # about 8 s for the whole reply
    started = time.monotonic()
    out = show(cli, hostile, "--timeout", "0.25", "--retries", "1")
    elapsed = time.monotonic() - started
    assert out.code == ExitCode.UNAVAILABLE, out
    assert "timed out (no complete answer within 0.25s)" in one_error(out)
    assert len(hostile.requests) == 2  # one try and one retry, each cut at its deadline
    assert elapsed < 2 * 0.25 + 1.5, elapsed


def test_a_slow_but_complete_reply_within_the_timeout_is_fine(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = trickle(b'{"data": []}', every=0.01)
    out = show(cli, hostile, "--timeout", "5", "--retries", "0")
    assert out.code == 0, out
    assert out.json() == []


# ---- memory ----


def test_an_endless_body_fails_fast_with_a_clear_message(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = endless()
    started = time.monotonic()
    out = show(cli, hostile, "--timeout", "20")
    assert out.code == ExitCode.API_REJECTED, out
    assert one_error(out) == f"error: unexpected reply from GET {COMMS}: the reply is larger than 16 MiB"
    assert time.monotonic() - started < 10
    assert len(hostile.requests) == 1  # not retried: the same server would send the same flood


def test_a_gzip_bomb_fails_fast_with_a_clear_message(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = gzip_bomb()
    out = show(cli, hostile)
    assert out.code == ExitCode.API_REJECTED, out
    assert "the reply is larger than 16 MiB" in one_error(out)


@pytest.mark.parametrize("mode", ["endless", "bomb"])
def test_reply_cap_holds_memory_down(hostile: HostileServer, mode: str) -> None:
    hostile.mode = endless() if mode == "endless" else gzip_bomb(64 << 20)
    bomb_body(64 << 20)  # built before measuring
    tracemalloc.start()
    try:
        with (
            Client(hostile.url, BasicAuth("u", "pw-1"), max_reply=1 << 20, retries=0) as client,
            pytest.raises(ApiError, match="larger than 1 MiB"),
        ):
            client.communications(1, 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_a_gzip_reply_is_decoded(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = gzipped(envelope([COMM]))
    out = show(cli, hostile)
    assert out.code == 0, out
    assert out.json()[0]["id"] == 7
    assert hostile.requests[0].headers["accept-encoding"] == "gzip, deflate"


def test_a_corrupt_gzip_body_is_an_unexpected_reply(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = reply(200, b"\x1f\x8b not really gzip", {"Content-Encoding": "gzip"})
    out = show(cli, hostile)
    assert out.code == ExitCode.API_REJECTED, out
    assert one_error(out) == f"error: unexpected reply from GET {COMMS}: the gzip body cannot be decompressed"


# ---- shapes ----


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"data": "surprise"}, "data is a string, expected a list of objects"),
        ({"data": [{"id": 1, "targetId": 2}]}, "data[0].communicationType: Field required"),
        ({"data": [{**COMM, "channelId": "two"}]}, "data[0].channelId: Input should be a valid integer"),
        ({"data": [{**COMM, "messageTemplate": ["a"]}]}, "data[0].messageTemplate: Input should be a valid string"),
        ({"data": [1, 2]}, "data[0]: Input should be a valid dictionary"),
        ([{"data": []}], "expected a JSON object with data and errors, got a list"),
        ({"data": [], "errors": "boom"}, "errors is a string, expected a list"),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "not JSON (text/html)"),
        ("", "the reply is empty"),
        ('{"data": [NaN]}', "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
    ids=[
        "data-string",
        "missing-keys",
        "channel-text",
        "template-list",
        "numbers",
        "array",
        "errors",
        "html",
        "empty",
        "nan",
        "deep",
    ],
)
def test_a_reply_of_the_wrong_shape_is_exit_5_in_one_line(
    cli: Cli, hostile: HostileServer, body: Any, reason: str
) -> None:
    content_type = {"Content-Type": "text/html; charset=utf-8"} if isinstance(body, str) and "<html" in body else {}
    hostile.mode = reply(200, body, content_type)
    out = show(cli, hostile)
    assert out.code == ExitCode.API_REJECTED, out
    assert one_error(out).startswith(f"error: unexpected reply from GET {COMMS}: {reason}"), out
    assert json.loads(out.stdout)["error"]["kind"] == "api"


def test_a_channel_list_of_numbers_is_exit_5(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = reply(200, envelope([1, 2, 3]))
    out = cli("channels", "--host", hostile.url, env=BASIC)
    assert out.code == ExitCode.API_REJECTED, out
    assert "unexpected reply from GET /v3/targetGroups/channels: data[0]: " in one_error(out)


def test_a_bad_reply_fails_only_its_own_target(cli: Cli, hostile: HostileServer, tmp_path: Any) -> None:
    good = envelope([{**COMM, "targetId": 3}])
    hostile.mode = routes(
        {
            "/channels": reply(200, envelope([{"id": 2, "name": "EMAIL"}])),
            "/targets/2/communications": reply(200, {"data": "surprise"}),
            "/targets/3/communications": reply(200, good),
        }
    )
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "targetGroupId: 1\ndefaults: {channelId: 2, messageTemplate: m}\n"
        "targets:\n- {targetId: 2, communications: [{communicationType: START}]}\n"
        "- {targetId: 3, communications: [{communicationType: START}]}\n"
    )
    out = cli("diff", "-f", str(spec), "-o", "json", "--host", hostile.url, env=BASIC)
    assert out.code == ExitCode.API_REJECTED, out
    results = {r["targetId"]: r for r in out.json()["results"]}
    assert results[3]["action"] == "unchanged"
    assert results[2]["action"] == "failed"
    assert results[2]["error"]["message"].startswith(f"unexpected reply from GET {COMMS}: data is a string")


def test_surrogates_and_odd_unicode_survive_to_json(cli: Cli, hostile: HostileServer) -> None:
    odd = "\ud800 lone, \udfff low, \u2028\u2029 separators, \x85 NEL, \ufeff BOM, \U0001f600, \x00 nul"
    body = json.dumps(envelope([{**COMM, "messageTemplate": odd, "sender": "\udbff"}]))  # ASCII, with escapes
    hostile.mode = reply(200, body)
    out = show(cli, hostile)
    assert out.code == 0, out
    [comm] = out.json()
    assert comm["messageTemplate"] == odd and comm["sender"] == "\udbff"


def test_an_upsert_sends_lone_surrogates_back_as_escapes(hostile: HostileServer) -> None:
    hostile.mode = reply(200, envelope([]))
    with Client(hostile.url, BasicAuth("u", "pw-1"), retries=0) as client:
        client.upsert(1, 2, [{"messageTemplate": "\ud800x"}])
    sent = hostile.requests[0].body
    assert sent.isascii() and json.loads(sent) == [{"messageTemplate": "\ud800x"}]


def test_server_error_messages_are_kept_short(cli: Cli, hostile: HostileServer) -> None:
    hostile.mode = reply(400, envelope(None, [{"code": 1, "message": "x" * 100_000}]))
    out = show(cli, hostile)
    assert out.code == ExitCode.API_REJECTED, out
    assert len(one_error(out)) < 500


# ---- tokens and credentials ----


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("XQZ7\r\nX-Evil: 1", "a line break"),
        ("XQZ7\x1b[2J", "a control character"),
        ("XQZ7-ö", "non-ASCII characters"),
        ("XQZ7 en", "a space"),
    ],
)
def test_a_broken_token_from_the_token_endpoint_is_exit_4_unprinted(
    cli: Cli, hostile: HostileServer, bad: str, why: str
) -> None:
    hostile.mode = routes({TOKEN_PATH: token(bad)})
    out = show(cli, hostile, env={"COMMCTL_CLIENT_KEY": "key-1", "COMMCTL_CLIENT_SECRET": "secret-1"})
    assert out.code == ExitCode.CONFIG, out
    assert one_error(out) == f"error: the token from the token endpoint contains {why}; refusing to use it"
    assert hostile.paths() == [TOKEN_PATH]  # never sent anywhere
    assert "XQZ7" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # One trailing newline is dropped from a credential (as gh does); a second one is refused.
        ({"COMMCTL_TOKEN": "tok-123\n\n"}, "the OAuth token (from env COMMCTL_TOKEN) contains a line break"),
        ({"COMMCTL_TOKEN": "tok\r\nX: y"}, "the OAuth token (from env COMMCTL_TOKEN) contains a line break"),
        ({"COMMCTL_TOKEN": "tok\x07"}, "the OAuth token (from env COMMCTL_TOKEN) contains a control character"),
        ({"COMMCTL_TOKEN": "tök"}, "the OAuth token (from env COMMCTL_TOKEN) contains non-ASCII characters"),
        (
            {**BASIC, "COMMCTL_PASSWORD": "pw-secret\n\n"},
            "the password (from env COMMCTL_PASSWORD) contains a line break",
        ),
        ({**BASIC, "COMMCTL_PASSWORD": "pässword"}, "the password (from env COMMCTL_PASSWORD) contains non-ASCII"),
        (
            {"COMMCTL_CLIENT_KEY": "k-1", "COMMCTL_CLIENT_SECRET": "s\x7fcret"},
            "the OAuth client secret (from env COMMCTL_CLIENT_SECRET) contains a control character",
        ),
        ({**BASIC, "COMMCTL_USERNAME": "a:b"}, "contains ':'"),
    ],
)
def test_unsafe_credentials_are_exit_4_and_never_printed(
    cli: Cli, hostile: HostileServer, env: dict[str, str], message: str
) -> None:
    out = show(cli, hostile, env=env)
    assert out.code == ExitCode.CONFIG, out
    assert message in one_error(out)
    assert hostile.requests == []
    for value in env.values():
        if value not in ("till", "k-1"):
            assert value.strip() not in out.stdout + out.stderr


def test_401_forever_is_exit_4_after_one_renewal_not_a_loop(cli: Cli, hostile: HostileServer) -> None:
    issued = iter(f"tok-{n}" for n in range(100))
    api_401 = reply(401, envelope(None, [{"code": 401, "message": "invalid token"}]))

    def mint(request: Any, conn: Any) -> None:
        token(next(issued))(request, conn)

    hostile.mode = routes({TOKEN_PATH: mint}, api_401)
    out = show(cli, hostile, env={"COMMCTL_CLIENT_KEY": "key-1", "COMMCTL_CLIENT_SECRET": "secret-1"})
    assert out.code == ExitCode.CONFIG, out
    assert "HTTP 401" in one_error(out)
    # A new token is refused straight away: that is final, no second renewal, no loop.
    assert hostile.paths() == [TOKEN_PATH, COMMS]


def test_a_working_token_refused_later_is_renewed_once(hostile: HostileServer) -> None:
    issued: list[str] = []
    refused: set[str] = set()

    def mint(request: Any, conn: Any) -> None:
        issued.append(f"tok-{len(issued)}")
        token(issued[-1])(request, conn)

    def api(request: Any, conn: Any) -> None:
        used = request.headers["x-cap-api-oauth-token"]
        (reply(401, envelope(None)) if used in refused else reply(200, envelope([COMM])))(request, conn)

    hostile.mode = routes({TOKEN_PATH: mint}, api)
    with Client(hostile.url, OAuth("key-1", "secret-1"), retries=0) as client:
        for _ in range(4):
            assert client.communications(1, 2)[0].id == 7
            refused.add(issued[-1])  # revoked after each success: a renewal every time, as often as needed
    assert issued == ["tok-0", "tok-1", "tok-2", "tok-3"]


def test_an_unreachable_server_is_exit_6(cli: Cli, hostile: HostileServer) -> None:
    url = hostile.url
    hostile.close()
    out = cli("show", "-g", "1", "-t", "2", "--host", url, "--retries", "1", env=BASIC)
    assert out.code == ExitCode.UNAVAILABLE, out
    assert "cannot reach 127.0.0.1" in one_error(out)


def test_invalid_http_is_exit_6_without_quoting_the_server(hostile: HostileServer) -> None:
    def garbage(request: Any, conn: Any) -> None:
        conn.send(b"HTTP/1.1 2OO \x1b[31mNOPE\r\n\r\n")

    hostile.mode = garbage
    with (
        Client(hostile.url, BasicAuth("u", "pw-1"), retries=1, backoff=0) as client,
        pytest.raises(UnavailableError) as info,
    ):
        client.channels()
    assert info.value.message == "GET /v3/targetGroups/channels: 127.0.0.1 sent a reply that is not valid HTTP"
    assert len(hostile.requests) == 2


def test_terminal_escapes_in_server_messages_are_shown_escaped_and_kept_exact_in_json(
    cli: Cli, hostile: HostileServer
) -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J\x9b31mred\u202etxt.exe"
    hostile.mode = reply(400, envelope(None, [{"code": 7, "message": evil}]), {"X-Cap-Requestid": "\x1b[5m"})
    out = show(cli, hostile, "--verbose")
    assert out.code == ExitCode.API_REJECTED, out
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out.stderr and raw not in out.stdout, repr(raw)
    assert "\\x1b]0;pwned" in one_error(out)
    assert evil in json.loads(out.stdout)["error"]["message"]  # JSON keeps the exact value, escaped


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"", "closed the connection before answering"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"data"', "closed the connection in the middle of its reply"),
    ],
)
def test_a_dropped_connection_is_exit_6_after_the_retries(hostile: HostileServer, raw: bytes, what: str) -> None:
    def drop(request: Any, conn: Any) -> None:
        conn.send(raw)

    hostile.mode = drop
    with (
        Client(hostile.url, BasicAuth("u", "pw-1"), retries=2, backoff=0) as client,
        pytest.raises(UnavailableError) as info,
    ):
        client.channels()
    assert info.value.message == f"GET /v3/targetGroups/channels: 127.0.0.1 {what}"
    assert len(hostile.requests) == 3


@pytest.mark.parametrize("slow", [False, True])
def test_proxies_from_the_environment_are_used_and_bounded_too(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", hostile.url)  # the hostile server plays a corporate proxy
    hostile.mode = trickle(envelope([]), every=0.05) if slow else reply(200, envelope([{"id": 1, "name": "SMS"}]))
    with Client("http://api.example.invalid", BasicAuth("u", "pw-1"), timeout=0.3, retries=0) as client:
        if slow:
            with pytest.raises(UnavailableError, match="timed out"):
                client.channels()
        else:
            assert [c.name for c in client.channels()] == ["SMS"]
    assert hostile.paths() == ["http://api.example.invalid/v3/targetGroups/channels"]
