"""The OAuth token cache: on disk between runs, private, keyed by host and client key, never in the way."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from commctl.client import Client, OAuth
from commctl.errors import AuthError
from commctl.sandbox.app import Faults
from commctl.tokencache import TokenCache, cache_dir

from .conftest import Cli, ServeSandbox, write

HOST = "https://eu.api.example"


class TokenServer:
    """A MockTransport API: hands out t1, t2, ... and accepts the tokens not in `refused`."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.refused: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generate"):
            self.issued.append(f"t{len(self.issued) + 1}")
            return httpx.Response(200, json={"data": {"accessToken": self.issued[-1], "ttlSeconds": 300}})
        if request.headers["x-cap-api-oauth-token"] in self.refused:
            return httpx.Response(401, json={})
        return httpx.Response(200, json={"data": []})

    def run(
        self, cache: TokenCache, secret: str = "s3cret", key: str = "key-1", host: str = HOST, clock: Any = time.time
    ) -> None:
        """One commctl run: a new client and a new OAuth, as a new process would have."""
        auth = OAuth(key, secret, cache=cache, clock=clock)
        with Client(host, auth, transport=httpx.MockTransport(self), retries=0) as client:
            client.channels()


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "cache" / "commctl")


def test_a_second_run_reuses_the_token(cache: TokenCache) -> None:
    server = TokenServer()
    server.run(cache)
    server.run(cache)
    assert server.issued == ["t1"]


def test_files_are_private_and_hold_no_secret(cache: TokenCache) -> None:
    TokenServer().run(cache, secret="s3cret-NEVER-ON-DISK", key="key-NOT-IN-NAME")
    [path] = list(cache.directory.iterdir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    text = path.read_text()
    assert "NEVER-ON-DISK" not in text and "NOT-IN-NAME" not in text + path.name
    assert json.loads(text)["accessToken"] == "t1"


def test_keyed_by_host_client_key_and_secret(cache: TokenCache) -> None:
    server = TokenServer()
    server.run(cache)
    server.run(cache, host="https://us.api.example")
    server.run(cache, key="key-2")
    server.run(cache, secret="another-secret")  # a wrong or rotated secret gets no free ride
    server.run(cache)
    assert server.issued == ["t1", "t2", "t3", "t4", "t5"]


def test_a_token_near_expiry_is_not_reused(cache: TokenCache) -> None:
    server = TokenServer()
    server.run(cache)
    expires = json.loads(next(cache.directory.iterdir()).read_text())["expiresAt"]
    server.run(cache, clock=lambda: expires - 61)  # still more than a fifth of its 300 s life left
    server.run(cache, clock=lambda: expires - 59)  # inside the last fifth
    assert server.issued == ["t1", "t2"]


def test_a_refused_cached_token_is_dropped_and_renewed_once(cache: TokenCache) -> None:
    server = TokenServer()
    server.run(cache)
    server.refused.add("t1")  # revoked, or the server forgot it
    server.run(cache)
    server.run(cache)
    assert server.issued == ["t1", "t2"]
    assert [e.token for e in cache.entries()] == ["t2"]


def test_a_401_on_the_token_just_issued_after_a_cached_one_is_exit_4(cache: TokenCache) -> None:
    server = TokenServer()
    server.run(cache)
    server.refused.update({"t1", "t2"})
    with pytest.raises(AuthError):
        server.run(cache)
    assert server.issued == ["t1", "t2"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_text("{not json"),
        lambda p: p.write_text('{"accessToken": 1}'),
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "accessToken": "t1\r\nX: y"})),
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "expiresAt": "soon"})),
        lambda p: p.chmod(0o644),  # readable by others: not ours to trust
        lambda p: (p.unlink(), p.symlink_to("/etc/hostname")),
        lambda p: p.write_bytes(b"[" * 100_000),
    ],
    ids=["syntax", "types", "crlf", "expiry", "mode", "symlink", "deep"],
)
def test_a_damaged_cache_is_ignored_and_replaced(cache: TokenCache, damage: Any) -> None:
    server = TokenServer()
    server.run(cache)
    damage(next(cache.directory.iterdir()))
    server.run(cache)
    server.run(cache)
    assert server.issued == ["t1", "t2"]


def test_an_unwritable_cache_never_fails_a_run(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cache = TokenCache(tmp_path / "file" / "commctl")  # its parent is a file: nothing can be created
    server = TokenServer()
    server.run(cache)
    server.run(cache)
    assert server.issued == ["t1", "t2"]
    assert cache.entries() == [] and cache.clear() == 0


def test_clear_forgets_every_token(cache: TokenCache) -> None:
    server = TokenServer()
    server.run(cache)
    server.run(cache, key="key-2")
    assert cache.clear() == 2
    server.run(cache)
    assert server.issued == ["t1", "t2", "t3"]


def test_cache_dir_follows_xdg(tmp_path: Path) -> None:
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "commctl"
    assert cache_dir({}) == Path.home() / ".cache" / "commctl"


# ---- end to end, against sandbox serve ----


def oauth_seed(tmp_path: Path, ttl: int, targets: int = 12) -> Path:
    return write(
        tmp_path / "seed.yaml",
        "channels: [{id: 1, name: SMS}, {id: 2, name: EMAIL}]\n"
        "targetGroups:\n- id: 600\n  targets:\n"
        + "".join(f"  - {{id: {t}}}\n" for t in range(6001, 6001 + targets))
        + f"credentials:\n  oauth: [{{key: ci-key, secret: ci-secret, ttlSeconds: {ttl}}}]\n",
    )


def token_requests(stderr: str) -> int:
    return sum(
        1 for line in stderr.splitlines() if line.startswith("> POST") and line.endswith("/oauth/token/generate")
    )


OAUTH_ENV = {"COMMCTL_CLIENT_KEY": "ci-key", "COMMCTL_CLIENT_SECRET": "ci-secret"}


def test_two_runs_make_one_token_request(cli: Cli, serve_sandbox: ServeSandbox, tmp_path: Path) -> None:
    s = serve_sandbox(seed=oauth_seed(tmp_path, 3600))
    first = cli("channels", "--host", s.url, "--verbose", env=OAUTH_ENV)
    second = cli("channels", "--host", s.url, "--verbose", env=OAUTH_ENV)
    assert first.code == 0 and second.code == 0, (first, second)
    assert token_requests(first.stderr) == 1
    assert token_requests(second.stderr) == 0
    assert len(list((cache_dir(os.environ)).glob("oauth-token-*.json"))) == 1


# The sandbox checks a token after its latency: the latency stays below the renewal margin (a fifth of
# the lifetime), as a real request's time in flight would, so no request is refused on the way.
@pytest.mark.waits
@pytest.mark.parametrize(("concurrency", "latency", "ttl", "targets"), [(1, 100, 1, 9), (4, 100, 1, 36)])
def test_tokens_that_expire_several_times_in_one_run(
    cli: Cli, serve_sandbox: ServeSandbox, tmp_path: Path, concurrency: int, latency: int, ttl: int, targets: int
) -> None:
    s = serve_sandbox(seed=oauth_seed(tmp_path, ttl, targets), faults=Faults(latency_ms=latency))
    spec = write(
        tmp_path / "c.yaml",
        "targetGroupId: 600\ndefaults: {channel: SMS}\ntargets:\n"
        + "".join(
            f"- {{targetId: {t}, communications: [{{communicationType: START, messageTemplate: 'hi {t}'}}]}}\n"
            for t in range(6001, 6001 + targets)
        ),
    )
    # A GET and a POST per target, by one worker or four: 18 rounds of 100 ms, the channel list and the token
    # requests, about 2.3 s; a token is renewed 0.8 s into its life, so the third comes at about 1.8 s.
    started = time.monotonic()
    out = cli(
        "upsert",
        "-f",
        str(spec),
        "--concurrency",
        str(concurrency),
        "-o",
        "json",
        "--host",
        s.url,
        "--verbose",
        env=OAUTH_ENV,
    )
    elapsed = time.monotonic() - started
    assert out.code == 0, out
    assert out.json()["summary"]["created"] == targets
    renewals = token_requests(out.stderr)
    assert renewals >= 3
    # Renewed a fifth of its life before each expiry, by one worker for all: at most one token per 4/5 ttl.
    assert renewals <= elapsed / (0.8 * ttl) + 1, (renewals, elapsed)
    assert "< 401" not in out.stderr  # renewed before expiry, never after a refusal


def test_auth_status_and_logout(cli: Cli, serve_sandbox: ServeSandbox, tmp_path: Path) -> None:
    s = serve_sandbox(seed=oauth_seed(tmp_path, 3600))
    before = cli("auth", "status", "--host", s.url, "-o", "json", env=OAUTH_ENV)
    assert before.code == 0, before
    assert before.json() == {
        "host": s.url,
        "hostSource": "flag",
        "scheme": "oauth",
        "credentials": [
            {"setting": "client_key", "value": "ci-key", "source": "env COMMCTL_CLIENT_KEY"},
            {"setting": "client_secret", "value": "****", "source": "env COMMCTL_CLIENT_SECRET"},
        ],
        "tokenCache": {"directory": str(cache_dir(os.environ)), "token": None},
    }
    assert cli("channels", "--host", s.url, env=OAUTH_ENV).code == 0
    after = cli("auth", "status", "--host", s.url, "-o", "json", env=OAUTH_ENV)
    token = after.json()["tokenCache"]["token"]
    assert token["state"] == "valid" and 3500 < token["expiresIn"] <= 3600
    table = cli("auth", "status", "--host", s.url, env=OAUTH_ENV)
    assert "cached token" in table.stdout and "valid, expires 20" in table.stdout
    [cached] = TokenCache.default().entries()
    for out in (before, after, table):
        assert "ci-secret" not in out.stdout + out.stderr and cached.token not in out.stdout + out.stderr

    logout = cli("auth", "logout", "-o", "json")
    assert logout.code == 0, logout
    assert logout.json() == {"removed": 1, "directory": str(cache_dir(os.environ))}
    assert cli("auth", "status", "--host", s.url, "-o", "json", env=OAUTH_ENV).json()["tokenCache"]["token"] is None
    assert "forgot 0 cached OAuth tokens" in cli("auth", "logout").stderr


def test_auth_status_for_basic_auth_and_for_none(cli: Cli) -> None:
    out = cli(
        "auth", "status", "--host", "eu", "-o", "json", env={"COMMCTL_USERNAME": "till", "COMMCTL_PASSWORD": "pw-1"}
    )
    assert out.code == 0, out
    assert out.json()["scheme"] == "basic" and out.json()["tokenCache"] is None
    assert out.json()["credentials"][1] == {"setting": "password", "value": "****", "source": "env COMMCTL_PASSWORD"}
    assert "pw-1" not in out.stdout
    none = cli("auth", "status", "--host", "eu")
    assert none.code == 4, none
    assert "no credentials configured" in none.stderr


REAL = {"COMMCTL_USERNAME": "real.till", "COMMCTL_PASSWORD": "real-pw-1", "COMMCTL_TOKEN": "real-token-1"}


def test_host_sandbox_never_uses_the_environments_credentials(cli: Cli) -> None:
    out = cli("channels", "--host", "sandbox", "-o", "json", env={**REAL, **OAUTH_ENV})
    assert out.code == 0, out  # real credentials would be refused by the sandbox (401, exit 4)
    status = cli("auth", "status", "--host", "sandbox", "-o", "json", env={**REAL, **OAUTH_ENV})
    assert status.json()["scheme"] == "sandbox" and status.json()["credentials"] == []
    assert list(cache_dir(os.environ).glob("*")) == []  # no token asked for, none cached


def test_host_sandbox_uses_credentials_typed_for_the_command(cli: Cli) -> None:
    out = cli("channels", "--host", "sandbox", "--username", "sandbox", "--password-stdin", input="wrong\n", env=REAL)
    assert out.code == 4, out  # the typed (wrong) password was used, not the environment's
    assert "HTTP 401" in out.stderr
    status = cli("auth", "status", "--host", "sandbox", "--username", "sandbox", "-o", "json", env=REAL)
    assert status.code == 4, status  # a typed user name, and no typed password: half a pair
    assert "needs both a username and a password" in status.stderr
