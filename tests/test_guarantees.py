"""Guarantees users and scripts rely on, each pinned by a test that fails when the guarantee breaks.

Every test here was checked against the bug it guards: put the bug back and the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from commctl.client import Client
from commctl.commands import read
from commctl.loader import MAX_FILE_BYTES

from .conftest import ROOT, SAMPLES, Cli, Sandbox, write
from .fake_api import Answer, FakeApi, envelope, fake_apis

SUMMER = str(SAMPLES / "summer-challenge.yaml")


@pytest.fixture
def fake_api() -> Iterator[Callable[[Callable[[str, str], Answer]], FakeApi]]:
    yield from fake_apis()


# ---- exit codes of failures that are not the API's ----


def test_a_permanent_401_is_exit_4_after_one_renewal_not_an_endless_loop(
    cli: Cli, fake_api: Callable[[Callable[[str, str], Answer]], FakeApi], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no token cached by an earlier run
    token_path = "/v3/oauth/token/generate"
    issued: list[str] = []

    def answer(method: str, path: str) -> Answer:
        if path == token_path:
            if len(issued) >= 10:  # a client that renews on every 401 is stopped here, not left to spin
                return 500, {}, envelope(None, [{"code": 1, "message": "enough"}])
            issued.append(f"token-{len(issued)}")
            return 200, {}, envelope({"accessToken": issued[-1], "ttlSeconds": 3600})
        return 401, {}, envelope(None, [{"code": 310401, "message": "invalid or expired OAuth token"}])

    api = fake_api(answer)
    targets = [arg for t in range(1, 9) for arg in ("-t", str(t))]
    out = cli("show", "-g", "7", *targets, "--host", api.url, "--client-key", "k", env={"COMMCTL_CLIENT_SECRET": "s"})
    assert out.code == 4, out
    assert "HTTP 401" in out.stderr
    assert 1 <= api.count(token_path) <= 2, api.requests  # one token, and at most one renewal after the 401
    assert len(api.requests) - api.count(token_path) <= 8 + 8  # each target at most once per token


def test_a_bug_is_exit_1_with_one_error_line_and_a_traceback_only_with_debug(cli: Cli, monkeypatch: Any) -> None:
    def broken(*args: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(read, "validate", broken)
    out = cli("validate", SUMMER)
    assert out.code == 1, out
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "error: internal error: RuntimeError: boom",
        "hint: rerun with --debug for the traceback, and report it",
    ]

    as_json = cli("validate", SUMMER, "-o", "json")
    assert as_json.code == 1, as_json
    assert as_json.json() == {
        "error": {
            "kind": "internal",
            "message": "internal error: RuntimeError: boom",
            "hint": "rerun with --debug for the traceback, and report it",
        }
    }

    debug = cli("validate", SUMMER, "--debug")
    assert debug.code == 1, debug
    assert debug.stderr.startswith("Traceback (most recent call last):\n"), debug
    assert 'raise RuntimeError("boom")' in debug.stderr
    assert debug.stderr.splitlines()[-1] == "error: internal error: RuntimeError: boom"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COMMCTL_TIMEOUT": "abc"}, "COMMCTL_TIMEOUT: not a number: 'abc'"),
        ({"COMMCTL_TIMEOUT": "0"}, "COMMCTL_TIMEOUT: out of range: 0.0"),
        ({"COMMCTL_RETRIES": "-1"}, "COMMCTL_RETRIES: out of range: -1"),
        ({"COMMCTL_RETRIES": "many"}, "COMMCTL_RETRIES: not a whole number: 'many'"),
        ({"COMMCTL_OUTPUT": "xml"}, "COMMCTL_OUTPUT: unknown output format 'xml'"),
        ({"COMMCTL_HOST": "ftp://example.com"}, "COMMCTL_HOST: unsupported scheme 'ftp'"),
        ({"COMMCTL_PROFILE": "nope"}, "COMMCTL_PROFILE: profile 'nope' not found in"),
        ({"COMMCTL_CONFIG": "/nonexistent/commctl.yaml"}, "COMMCTL_CONFIG: /nonexistent/commctl.yaml does not exist"),
    ],
)
def test_a_bad_setting_is_exit_4_before_any_request(cli: Cli, env: dict[str, str], message: str) -> None:
    out = cli("channels", env={"COMMCTL_HOST": "sandbox", **env})
    assert out.code == 4, out
    assert out.stdout == ""
    assert out.stderr.startswith(f"error: {message}"), out


def test_a_bad_setting_in_json_mode_is_one_error_object_on_stdout(cli: Cli) -> None:
    out = cli("channels", "--host", "sandbox", "-o", "json", env={"COMMCTL_TIMEOUT": "abc"})
    assert out.code == 4, out
    assert out.json() == {
        "error": {
            "kind": "config",
            "message": "COMMCTL_TIMEOUT: not a number: 'abc'",
            "hint": "set COMMCTL_TIMEOUT to a number of seconds above 0 and at most 3600, or unset it",
        }
    }


def test_ctrl_c_is_exit_130(cli: Cli, monkeypatch: Any) -> None:
    def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(read, "validate", interrupted)
    out = cli("validate", SUMMER)
    assert out.code == 130, out
    assert (out.stdout, out.stderr) == ("", "error: interrupted\n")


def test_ctrl_c_in_a_batch_worker_is_exit_130(cli: Cli, monkeypatch: Any) -> None:
    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "upsert", interrupted)
    out = cli("upsert", "-f", SUMMER, "--host", "sandbox", "-o", "json")
    assert out.code == 130, out
    assert "error: interrupted" in out.stderr
    assert "Traceback" not in out.stderr


# ---- input that must stop a run before anything is sent ----


def test_same_key_by_channel_name_and_by_id_is_exit_3_naming_both_places(
    cli: Cli, sandbox: Sandbox, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "twice.yaml",
        "targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communications:\n"
        "  - {communicationType: START, channel: EMAIL, messageTemplate: a}\n"
        "  - {communicationType: START, channelId: 2, messageTemplate: b}\n",
    )
    assert cli("upsert", "-f", SUMMER).code == 0
    before = cli("show", "-g", "4100", "-o", "json")
    assert before.code == 0, before

    out = cli("upsert", "-f", "twice.yaml", "--verbose")
    assert out.code == 3, out
    errors = [line for line in out.stderr.splitlines() if not line.startswith(("> ", "< "))]
    assert errors == [
        "error: twice.yaml:6:5: targets[0].communications[1]: duplicate communication group 4100 target 5200 "
        "START/2; first declared at twice.yaml:5:5: targets[0].communications[0]",
        "hint: fix the file(s) and run `commctl validate` to check them offline",
    ]
    assert "> POST" not in out.stderr
    assert cli("show", "-g", "4100", "-o", "json").stdout == before.stdout


def _sized(size: int) -> bytes:
    """A valid communication file of exactly `size` bytes (padded with a YAML comment)."""
    head = (
        b"targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communications:\n"
        b"  - {communicationType: START, channelId: 2, messageTemplate: hi}\n"
    )
    line = b"#" + b"x" * 1022 + b"\n"
    pad = size - len(head)
    body = line * (pad // len(line))
    rest = pad - len(body)
    return head + body + (b"#" + b"x" * (rest - 2) + b"\n" if rest >= 2 else b"\n" * rest)


@pytest.mark.parametrize(("size", "code"), [(MAX_FILE_BYTES, 0), (MAX_FILE_BYTES + 1, 3)])
def test_files_and_stdin_are_read_up_to_8_mib_and_refused_beyond(
    cli: Cli, tmp_path: Path, size: int, code: int
) -> None:
    assert MAX_FILE_BYTES == 8 * 1024 * 1024
    data = _sized(size)
    assert len(data) == size
    path = tmp_path / "big.yaml"
    path.write_bytes(data)
    for args, stdin in (([str(path)], None), (["-"], data)):
        out = cli("validate", *args, input=stdin)
        assert out.code == code, out
        if code:
            assert "larger than 8 MiB" in out.stderr, out
        else:
            assert out.stdout.startswith("valid: 1 communication in 1 file(s)"), out


# ---- retries ----


@pytest.mark.parametrize(
    ("status", "ahead", "low", "high"),
    [(429, timedelta(seconds=30), 28, 30), (503, timedelta(minutes=-5), 0, 0)],
    ids=["future", "past"],
)
def test_retry_after_as_an_http_date_is_honoured(status: int, ahead: timedelta, low: float, high: float) -> None:
    """Wait until that second (HTTP dates have whole seconds), not a short backoff; a past date: at once."""
    waits: list[float] = []
    when = format_datetime(datetime.now(UTC) + ahead, usegmt=True)
    replies = iter(
        [httpx.Response(status, headers={"Retry-After": when}, json={}), httpx.Response(200, json=envelope([]))]
    )
    client = Client(
        "https://h", None, retries=3, transport=httpx.MockTransport(lambda r: next(replies)), sleep=waits.append
    )
    assert client.channels() == []
    [wait] = waits
    assert low <= wait <= high, waits


# ---- output scripts parse ----

SHOW_FILES = (ROOT / "tests" / "golden" / "show-files-piped.txt").read_text(encoding="utf-8")  # tab-separated


def test_show_files_piped_table_is_stable(cli: Cli, monkeypatch: Any) -> None:
    monkeypatch.chdir(ROOT)
    out = cli("show", "-f", "sample-configs/")
    assert out.code == 0, out
    assert out.stdout == SHOW_FILES  # byte for byte: a script's cut -f and awk -F'\t' see every tab
    assert out.stderr == ""
