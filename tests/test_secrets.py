"""Secrets sweep: every API command, at its most talkative, against an honest and an echoing server.

Each run has `--verbose --debug -o json` (and `--report FILE` where the command takes one); its
stdout, stderr and report are searched for the password, its md5, the Basic value, the client
secret and every token, raw and as JSON would escape them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from commctl.journal import journal_dir

from .conftest import SAMPLES, Cli, Outcome, Sandbox, ServeSandbox, write
from .hostile import TOKEN_PATH, HostileServer, echo, routes, token

USER, PASSWORD = "till.sweep", 'Pw-Sweep-7731"q'
KEY, SECRET = "sweep-key", 'Sec"ret-Sweep-9912\\x'
MD5 = hashlib.md5(PASSWORD.encode()).hexdigest()
BASIC = base64.b64encode(f"{USER}:{MD5}".encode()).decode()
BASIC_ENV = {"COMMCTL_USERNAME": USER, "COMMCTL_PASSWORD": PASSWORD}
OAUTH_ENV = {"COMMCTL_CLIENT_KEY": KEY, "COMMCTL_CLIENT_SECRET": SECRET}
ECHO_TOKEN = "tok-ECHOED-4242"

# (arguments, whether the command takes --report)
COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("channels",), False),
    (("groups",), False),
    (("targets", "-g", "4100"), False),
    (("show", "-g", "4100"), False),
    (("export", "-g", "4100"), False),
    (("config", "show"), False),
    (("auth", "status"), False),
    (("upsert", "-f", str(SAMPLES)), True),
    (("diff", "-f", str(SAMPLES)), True),
    (("deactivate", "-g", "4100", "-t", "5200", "--type", "REMINDER"), True),
    (("activate", "-g", "4100", "-t", "5200", "--type", "REMINDER"), True),
    (("upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "EMAIL", "--message", "hi"), True),
]


def forms(secret: str) -> list[str]:
    """A secret as it could appear: raw, escaped inside a JSON string, or ASCII-escaped."""
    return sorted({secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=True)[1:-1]})


def sweep(cli: Cli, tmp_path: Path, host: str, env: dict[str, str], secrets: Callable[[], list[str]]) -> None:
    runs: list[tuple[tuple[str, ...], Outcome, str]] = []
    for n, (args, reports) in enumerate(COMMANDS):
        report_file = tmp_path / f"report-{n}.json"
        extra = ("--report", str(report_file)) if reports else ()
        out = cli(*args, "--host", host, "--verbose", "--debug", "-o", "json", *extra, env=env)
        runs.append((args, out, report_file.read_text() if report_file.exists() else ""))
    assert any("> GET" in out.stderr for _, out, _ in runs), "the sweep must see real traffic"
    journal = "\n".join(p.read_text(errors="replace") for p in sorted(journal_dir().rglob("*")) if p.is_file())
    for args, out, report in runs:
        assert "Traceback" not in out.stderr, (args, out)
        for secret in secrets():
            for form in forms(secret):
                for where, text in (("stdout", out.stdout), ("stderr", out.stderr), ("report", report)):
                    assert form not in text, f"{secret!r} in the {where} of commctl {' '.join(args)}"
                assert form not in journal, f"{secret!r} in the journal"


@pytest.fixture
def sweep_sandbox(serve_sandbox: ServeSandbox, tmp_path: Path) -> Sandbox:
    seed = write(
        tmp_path / "seed.yaml",
        "channels: [{id: 1, name: SMS}, {id: 2, name: EMAIL}, {id: 3, name: MOBILE PUSH}]\n"
        "targetGroups:\n"
        "- {id: 4100, targets: [{id: 5200}, {id: 5201}]}\n"
        "- {id: 4200, targets: [{id: 5300}, {id: 5301}]}\n"
        "credentials:\n"
        f"  basic: [{{username: {USER}, password: {json.dumps(PASSWORD)}}}]\n"
        f"  oauth: [{{key: {KEY}, secret: {json.dumps(SECRET)}, ttlSeconds: 3600}}]\n",
    )
    return serve_sandbox(seed=seed)


def issued_tokens(sandbox: Sandbox) -> list[str]:
    with sqlite3.connect(sandbox.db) as db:
        return [row[0] for row in db.execute("SELECT token FROM tokens")]


@pytest.mark.parametrize("scheme", ["basic", "oauth", "token"])
def test_no_secret_reaches_any_output_against_the_sandbox(
    cli: Cli, sweep_sandbox: Sandbox, tmp_path: Path, scheme: str
) -> None:
    env = BASIC_ENV if scheme == "basic" else OAUTH_ENV
    if scheme == "token":  # a ready token, obtained the way a CI job would
        got = cli("channels", "--host", sweep_sandbox.url, env=OAUTH_ENV)
        assert got.code == 0, got
        env = {"COMMCTL_TOKEN": issued_tokens(sweep_sandbox)[0]}

    def secrets() -> list[str]:
        return [PASSWORD, MD5, BASIC, SECRET, *issued_tokens(sweep_sandbox)]

    sweep(cli, tmp_path, sweep_sandbox.url, env, secrets)
    assert bool(issued_tokens(sweep_sandbox)) == (scheme != "basic"), "OAuth runs must have had tokens to leak"
    assert any(p.is_file() for p in journal_dir().rglob("*")), "the writes must have been journaled"


@pytest.mark.parametrize("scheme", ["basic", "oauth", "token"])
@pytest.mark.parametrize("status", [200, 400, 500])
def test_no_secret_reaches_any_output_from_a_server_that_echoes_it(
    cli: Cli, hostile: HostileServer, tmp_path: Path, scheme: str, status: int
) -> None:
    """The server puts every header and body it got into its data, its error message and a header."""
    hostile.mode = routes({TOKEN_PATH: token(ECHO_TOKEN)}, echo(status))
    env = {"basic": BASIC_ENV, "oauth": OAUTH_ENV, "token": {"COMMCTL_TOKEN": ECHO_TOKEN}}[scheme]
    sweep(
        cli, tmp_path, hostile.url, {**env, "COMMCTL_RETRIES": "0"}, lambda: [PASSWORD, MD5, BASIC, SECRET, ECHO_TOKEN]
    )
    assert any(ECHO_TOKEN in r.headers.get("x-cap-api-oauth-token", "") for r in hostile.requests) or scheme == "basic"
