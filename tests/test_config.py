"""Settings: flag > environment > profile > default, with sources, checked before use, secrets kept out of sight."""

from __future__ import annotations

import hashlib
import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commctl.config import resolve, resolve_host
from commctl.errors import ConfigError, UsageError
from commctl.options import ConnectionOptions as Conn

from .conftest import ROOT, Cli, Outcome, Sandbox, write

CONFIG = """\
default_profile: eu
timeout: 12
profiles:
  eu:
    host: eu
    username: till.eu
    password_env: EU_PW
    output: yaml
  staging:
    host: https://staging.example/v3/
    client_key: ck
    client_secret_env: STAGING_SECRET
"""
REAL = {  # a real account's credentials, exported as a CI job would
    "COMMCTL_USERNAME": "real.till",
    "COMMCTL_PASSWORD": "real-pw-1",
    "COMMCTL_CLIENT_KEY": "real-key",
    "COMMCTL_CLIENT_SECRET": "real-secret-2",
    "COMMCTL_TOKEN": "real-token-3",
}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write(tmp_path / "config" / "commctl" / "config.yaml", CONFIG)


def config_env(config_file: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(config_file.parents[1]), **extra}


def shown(out: Outcome) -> dict[str, Any]:
    """`config show -o json` as {setting: (value, source)}."""
    assert out.code == 0, out
    return {name: (row["value"], row["source"]) for name, row in out.json().items()}


def assert_one_error(out: Outcome, code: int, *secrets: str) -> list[str]:
    """Exit `code`, an `error:` line and a `hint:` line on stderr, nothing else, no secret anywhere."""
    assert out.code == code, out
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), out
    for secret in secrets:
        assert secret not in out.stdout + out.stderr, out
    return lines


# ---- precedence and sources ----


def test_precedence_flag_env_profile_default(config_file: Path) -> None:
    env = config_env(config_file, EU_PW="pw", COMMCTL_OUTPUT="json")
    s = resolve(Conn(retries=5), env)
    assert s.values["host"] == "eu" and s.sources["host"] == "profile eu"
    assert s.values["output"] == "json" and s.sources["output"] == "env COMMCTL_OUTPUT"
    assert s.values["retries"] == 5 and s.sources["retries"] == "flag"
    assert s.values["timeout"] == 12.0 and s.sources["timeout"] == f"config {config_file}"
    assert s.values["password"] == "pw" and s.sources["password"] == "profile eu via $EU_PW"
    assert s.base_url() == "https://eu.api.capillarytech.com"
    assert resolve(Conn(host="us"), env).base_url() == "https://us.api.capillarytech.com"


def test_profile_from_env_and_secret_from_named_variable(config_file: Path) -> None:
    s = resolve(Conn(), config_env(config_file, COMMCTL_PROFILE="staging", STAGING_SECRET="sec"))
    assert (s.values["client_key"], s.values["client_secret"]) == ("ck", "sec")
    assert s.base_url() == "https://staging.example"
    rows = {name: (value, source) for name, value, source in s.shown()}
    assert rows["client_secret"] == ("****", "profile staging via $STAGING_SECRET")


def test_named_password_variable_must_exist_unless_a_stronger_source_gave_it(config_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"profiles.eu.password_env names EU_PW, but that variable is not set"):
        resolve(Conn(), config_env(config_file))
    s = resolve(Conn(), config_env(config_file, COMMCTL_PASSWORD="pw"))
    assert (s.values["password"], s.sources["password"]) == ("pw", "env COMMCTL_PASSWORD")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("eu", "https://eu.api.capillarytech.com"),
        ("IN", "https://apac.api.capillarytech.com"),
        ("sg", "https://apac2.api.capillarytech.com"),
        ("cn", "https://api.capillarytech.cn.com"),
        ("api.example.com", "https://api.example.com"),
        ("api.example.com:8443", "https://api.example.com:8443"),
        ("HTTPS://Gateway.Example/capillary/v3/", "https://Gateway.Example/capillary"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://localhost:1/v3", "http://localhost:1"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("localhost:8080", "https://localhost:8080"),
        ("sandbox", "sandbox"),
        ("Sandbox", "sandbox"),
    ],
)
def test_good_hosts(host: str, url: str) -> None:
    assert resolve_host(host) == url


def test_plain_http_needs_insecure_off_loopback() -> None:
    with pytest.raises(ConfigError, match=r"refusing plain http:// to 10.1.2.3"):
        resolve_host("http://10.1.2.3")
    assert resolve_host("http://10.1.2.3", insecure=True) == "http://10.1.2.3"


# ---- bad values, from each source: exit 2 from a flag, 4 from the environment or the config file ----

# (setting, value as typed on the command line or in the environment, what the message says)
BAD_TEXT = [
    ("timeout", "nan", "nan"),
    ("timeout", "inf", "inf"),
    ("timeout", "0", "out of range: 0"),
    ("timeout", "-1", "out of range: -1"),
    ("timeout", "3601", "out of range: 3601"),
    ("retries", "-1", "out of range: -1"),
    ("retries", "101", "out of range: 101"),
    ("host", "euu", "unknown host 'euu' (did you mean eu?)"),
    ("host", "sandbx", "unknown host 'sandbx' (did you mean sandbox?)"),
    ("host", "javascript:alert(1)", "unsupported scheme 'javascript'"),
    ("host", "ftp://api.example.com", "unsupported scheme 'ftp'"),
    ("host", "https://u:hunter2@api.example.com", "must not carry credentials"),
    ("host", "https://hunter2@api.example.com", "must not carry credentials"),
    ("host", "https://u:hunter2/x@api.example.com", "must not carry credentials"),
    ("host", "u:hunter2@api.example.com", "must not carry credentials"),
    ("host", "https://api.example.com:99999", "invalid port"),
    ("host", "https://api.example.com:0", "invalid port"),
    ("host", "https://api.example.com:http", "invalid port"),
    ("host", "https://api example.com", "spaces and control characters are not allowed"),
    ("host", "https://api.example.com\x1b[31m", "'https://api.example.com\\x1b[31m'"),
    ("host", "https://api.example.com?x=1", "no query or fragment"),
    ("host", "https://bad_label-.example.com", "invalid host name"),
    ("host", "https://999.1.2.3", "invalid host name"),
    ("host", "https://bücher.example", "non-ASCII host name"),
    ("host", "https://", "no host name"),
    ("host", "https://[::1", "not a valid URL"),
    ("host", "[", "not a valid URL"),
    ("host", "http://api.example.com", "refusing plain http:// to api.example.com"),
    ("output", "jsn", "unknown output format 'jsn' (did you mean json?)"),
    ("profile", "staging2", "profile 'staging2' not found"),
    ("profile", "prdo", "(did you mean prod?)"),
]
# (setting, the YAML value in the config file, what the message says)
BAD_CONFIG = [
    ("host", "123", "expected text, got a number (123)"),
    ("host", "euu", "unknown host 'euu' (did you mean eu?)"),
    ("host", "https://u:hunter2@api.example.com", "must not carry credentials"),
    ("timeout", ".nan", "out of range: nan"),
    ("timeout", "-.inf", "out of range: -inf"),
    ("timeout", "'30'", "got text ('30')"),
    ("timeout", "true", "got a boolean (true)"),
    ("retries", "true", "got a boolean (true)"),
    ("retries", "2.5", "expected a whole number, got a number (2.5)"),
    ("retries", "-3", "out of range: -3"),
    ("output", "[json]", "expected text, got a list"),
    ("username", "{a: 1}", "expected text, got a mapping"),
    ("password_env", "'hunter2 value'", "not an environment variable name (the value is not shown)"),
    ("default_profile", "prdo", "(did you mean prod?)"),
]
ENV_ONLY = [  # text that a typed flag cannot carry
    ("timeout", "30s", "not a number: '30s'"),
    ("timeout", "nan", "not a number: 'nan'"),
    ("retries", "2.5", "not a whole number: '2.5'"),
    ("retries", "true", "not a whole number: 'true'"),
    ("host", "eu\n", "spaces and control characters are not allowed: 'eu\\n'"),
]
PROFILES = "profiles:\n  prod:\n    host: eu\n  staging:\n    host: https://staging.example\n"


def run_bad(cli: Cli, tmp_path: Path, source: str, setting: str, value: str) -> Outcome:
    """`config show` with the bad value given as a flag, in the environment, or in profile `prod` of the config."""
    config = write(tmp_path / "c.yaml", PROFILES)
    env = {"COMMCTL_CONFIG": str(config)}
    if source == "flag":
        return cli("config", "show", f"--{setting}", value, env=env)
    if source == "env":
        return cli("config", "show", env={**env, f"COMMCTL_{setting.upper()}": value})
    if setting == "default_profile":
        write(config, f"default_profile: {value}\n{PROFILES}")
    else:
        write(config, f"default_profile: prod\nprofiles:\n  prod:\n    {setting}: {value}\n")
    return cli("config", "show", env=env)


@pytest.mark.parametrize(
    ("source", "setting", "value", "says"),
    [
        *[("flag", *row) for row in BAD_TEXT if row[0] != "output"],  # cli.py checks -o per command
        *[("env", *row) for row in BAD_TEXT if row[1] not in ("nan", "inf")],
        *[("env", *row) for row in ENV_ONLY],
        *[("config", *row) for row in BAD_CONFIG],
    ],
)
def test_bad_settings_are_named_with_their_source(
    cli: Cli, tmp_path: Path, source: str, setting: str, value: str, says: str
) -> None:
    out = run_bad(cli, tmp_path, source, setting, value)
    error, hint = assert_one_error(out, 2 if source == "flag" else 4, "hunter2", "Traceback")
    assert says in error, out
    if source == "flag":
        assert error.startswith(f"error: --{setting}: ") and "--" in hint, out
    elif source == "env":
        assert error.startswith(f"error: COMMCTL_{setting.upper()}: ") and "COMMCTL_" in hint, out
    else:
        where = setting if setting == "default_profile" else f"profiles.prod.{setting}"
        assert error.startswith(f"error: {tmp_path / 'c.yaml'}: {where}"), out
    assert "validate" not in hint, out  # that hint is for communication files, not settings


def test_bad_settings_stop_a_command_before_any_request(cli: Cli) -> None:
    # In process, the sandbox would answer; a setting that was not checked would let the command succeed.
    assert_one_error(cli("channels", "--host", "sandbox", "--timeout", "nan"), 2)
    assert_one_error(cli("channels", "--host", "sandbox", env={"COMMCTL_RETRIES": "-1"}), 4)
    out = cli("channels", "--host", "sandbox", "-o", "json", env={"COMMCTL_TIMEOUT": "inf"})
    assert out.code == 4, out
    assert out.json()["error"]["kind"] == "config" and "COMMCTL_TIMEOUT" in out.json()["error"]["message"]


def test_unknown_profile_has_a_did_you_mean_and_lists_profiles(tmp_path: Path) -> None:
    config = str(write(tmp_path / "c.yaml", PROFILES))
    with pytest.raises(UsageError, match=r"profile 'prdo' not found .* \(did you mean prod\?\)") as flag:
        resolve(Conn(config=config, profile="prdo"), {})
    assert flag.value.hint == "--profile takes one of: prod, staging"
    with pytest.raises(ConfigError, match=r"^COMMCTL_PROFILE: profile 'x' not found") as env:
        resolve(Conn(config=config), {"COMMCTL_PROFILE": "x"})
    assert env.value.hint == "set COMMCTL_PROFILE to one of: prod, staging, or unset it"


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^--config: .*missing.yaml does not exist"):
        resolve(Conn(config=str(tmp_path / "missing.yaml")), {})
    with pytest.raises(ConfigError, match=r"^COMMCTL_CONFIG: .*missing.yaml does not exist"):
        resolve(Conn(), {"COMMCTL_CONFIG": str(tmp_path / "missing.yaml")})
    with pytest.raises(UsageError, match="is not a regular file"):
        resolve(Conn(config=str(tmp_path)), {})
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"fifo.yaml is not a regular file"):  # and does not block
        resolve(Conn(config=str(fifo)), {})
    big = write(tmp_path / "big.yaml", "# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        resolve(Conn(config=str(big)), {})
    bad = write(tmp_path / "bad.yaml", "profiles:\n  x:\n    hots: eu\n")
    with pytest.raises(ConfigError, match=r"profiles\.x\.hots: unknown key \(did you mean host\?\)"):
        resolve(Conn(config=str(bad)), {})
    for text, says in [
        ("profiles: [a, b]\n", "profiles: expected a mapping of profile names to settings, got a list"),
        ("profiles:\n  1: {host: eu}\n", "profile name 1 must be text"),
        ("profiles:\n  eu: eu\n", "profiles.eu: expected a mapping of settings, got text"),
        ("- host\n", "expected a mapping of settings and `profiles:`, got a list"),
        ("host: [\n", "c.yaml:2:1: invalid YAML"),
        ("host: eu\ntimeout: 5\nhost: us\n", "c.yaml:3:1: invalid YAML: key 'host' is given twice"),
        ("profiles:\n  eu: {host: eu, host: us}\n", "c.yaml:2:18: invalid YAML: key 'host' is given twice"),
        ("profiles:\n  1: {host: eu}\n  true: {host: us}\n", "profile name 1 must be text"),  # two keys
    ]:
        with pytest.raises(ConfigError, match=re.escape(says)):
            resolve(Conn(config=str(write(tmp_path / "c.yaml", text))), {})
    (tmp_path / "latin1.yaml").write_bytes(b"host: \xe9u\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        resolve(Conn(config=str(tmp_path / "latin1.yaml")), {})


# ---- secrets ----


@pytest.mark.parametrize(
    ("var", "value", "kept"),
    [
        ("COMMCTL_PASSWORD", "s3cret\n", "s3cret"),
        ("COMMCTL_PASSWORD", "s3cret\r\n", "s3cret"),
        ("COMMCTL_TOKEN", "tok-1\r\n", "tok-1"),
        ("COMMCTL_CLIENT_SECRET", "with spaces inside ", "with spaces inside "),
        ("COMMCTL_USERNAME", "till.eu\n", "till.eu"),
    ],
)
def test_one_trailing_newline_is_dropped_from_credentials(var: str, value: str, kept: str) -> None:
    s = resolve(Conn(host="eu"), {var: value})
    name = var.removeprefix("COMMCTL_").lower()
    assert s.values[name] == kept and s.sources[name] == f"env {var}"


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("COMMCTL_PASSWORD", "s3cret\n\n", "the password (from env COMMCTL_PASSWORD) contains a line break"),
        ("COMMCTL_PASSWORD", "s3c\nret", "the password (from env COMMCTL_PASSWORD) contains a line break"),
        ("COMMCTL_TOKEN", "tXq7\r\nX-Evil: 1", "the OAuth token (from env COMMCTL_TOKEN) contains a line break"),
        ("COMMCTL_TOKEN", "tXq7\x00en", "the OAuth token (from env COMMCTL_TOKEN) contains a control character"),
        ("COMMCTL_CLIENT_SECRET", "s\x1b[2Jecret", "the OAuth client secret (from env COMMCTL_CLIENT_SECRET) contains a control"),
        ("COMMCTL_CLIENT_SECRET", "sécret", "the OAuth client secret (from env COMMCTL_CLIENT_SECRET) contains non-ASCII"),
        ("COMMCTL_USERNAME", "till\u2028eu", "the username (from env COMMCTL_USERNAME) contains non-ASCII"),
        ("COMMCTL_CLIENT_KEY", "kZz9\t1", "the OAuth client key (from env COMMCTL_CLIENT_KEY) contains a control"),
    ],
)
def test_bad_credentials_are_refused_without_being_shown(var: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve(Conn(host="eu"), {var: value})
    message, hint = str(e.value), e.value.hint or ""
    assert message.startswith(says) and "refusing to use it" in message, message
    assert var in hint, hint
    for piece in re.split(r"[\s\x00-\x1f\x7f]+", value):
        assert len(piece) < 3 or piece not in message + hint, piece


def test_bad_credentials_through_the_cli(cli: Cli, config_file: Path) -> None:
    out = cli("config", "show", env=config_env(config_file, EU_PW="hunter2\nX", COMMCTL_OUTPUT="json"))
    error, _ = assert_one_error(out, 4, "hunter2")
    assert error.startswith("error: the password (from profile eu via $EU_PW) contains a line break; refusing")
    assert out.json()["error"]["kind"] == "config"
    flag = cli("config", "show", "--username", "till\x1b]0;pwned\x07", env=config_env(config_file, EU_PW="x"))
    error, hint = assert_one_error(flag, 2, "pwned")
    assert error == "error: the username (from --username) contains a control character; refusing to use it"
    assert hint == "hint: --username takes printable ASCII text"
    piped = cli("config", "show", "--host", "eu", "--username", "u", "--password-stdin", input="pässwort\n")
    error, _ = assert_one_error(piped, 4, "pässwort")
    assert error.startswith("error: the password (from stdin) contains non-ASCII characters")


def test_secrets_from_stdin_read_one_line() -> None:
    s = resolve(Conn(password_stdin=True, username="u"), {}, stdin=io.StringIO("s3cret\nsecond line\n"))
    assert s.values["password"] == "s3cret" and s.sources["password"] == "stdin"
    s = resolve(Conn(client_secret_stdin=True), {}, stdin=io.StringIO("sec\r\n"))
    assert s.values["client_secret"] == "sec"
    with pytest.raises(UsageError, match="no password on standard input"):
        resolve(Conn(password_stdin=True), {}, stdin=io.StringIO(""))
    with pytest.raises(UsageError, match="no client secret on standard input"):
        resolve(Conn(client_secret_stdin=True), {}, stdin=io.StringIO("\n"))
    with pytest.raises(ConfigError, match="longer than 8192 characters"):
        resolve(Conn(password_stdin=True), {}, stdin=io.StringIO("x" * 100_000))
    with pytest.raises(UsageError, match="pick one"):
        resolve(Conn(password_stdin=True, client_secret_stdin=True), {}, stdin=io.StringIO("x\n"))


def read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    seen = b""
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_password_stdin_at_a_terminal_is_read_without_echo(tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COMMCTL_HOST": "eu", "COMMCTL_USERNAME": "u"}
    cmd = [sys.executable, "-m", "commctl", "config", "show", "--password-stdin", "-o", "json"]
    # A new session: the child's terminal is the pty, never the terminal running the tests.
    child = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + 30
        seen = read_until(master, b"(input hidden): ", deadline)
        assert b"password (input hidden): " in seen, seen
        os.write(master, b"typed-s3cret\n")
        seen += read_until(master, b"\x00never", deadline)
        assert child.wait(timeout=30) == 0, seen
    finally:
        child.kill()
        os.close(master)
    text = seen.decode()
    assert "typed-s3cret" not in text, text  # no echo
    assert '"value": "****"' in text and '"source": "stdin"' in text, text


# ---- --host sandbox ignores the environment's credentials ----


def test_host_sandbox_ignores_real_credentials(cli: Cli, config_file: Path) -> None:
    env = config_env(config_file, **REAL)  # profile eu also names $EU_PW, which is not even set
    out = cli("channels", "--host", "sandbox", "-o", "json", "--verbose", env=env)
    assert out.code == 0, out  # the sandbox would answer 401 to any of the real credentials
    assert [c["name"] for c in out.json()] == ["SMS", "EMAIL", "MOBILE PUSH"]
    for value in REAL.values():
        assert value not in out.stdout + out.stderr
    rows = shown(cli("config", "show", "--host", "sandbox", "-o", "json", env=env))
    note = "ignored with host sandbox"
    assert rows["username"] == ("sandbox", f"the sandbox's own; env COMMCTL_USERNAME {note}")
    assert rows["password"] == ("****", f"the sandbox's own; env COMMCTL_PASSWORD {note}")
    assert rows["client_key"] == (None, f"env COMMCTL_CLIENT_KEY {note}")
    assert rows["token"] == (None, f"env COMMCTL_TOKEN {note}")
    from_env = shown(cli("config", "show", "-o", "json", env={**env, "COMMCTL_HOST": "sandbox", "EU_PW": "x"}))
    assert from_env["username"] == ("sandbox", f"the sandbox's own; env COMMCTL_USERNAME {note}")


def test_host_sandbox_ignores_the_config_files_credentials(cli: Cli, tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "profiles:\n  dev:\n    host: sandbox\n    client_key: k\n    client_secret_env: S\n")
    rows = shown(cli("config", "show", "--config", str(config), "--profile", "dev", "-o", "json"))
    assert rows["client_key"] == (None, "profile dev ignored with host sandbox")
    assert rows["client_secret"] == (None, "profile dev ignored with host sandbox")
    assert rows["username"] == ("sandbox", "the sandbox's own")


def test_host_sandbox_uses_credentials_given_as_flags(cli: Cli) -> None:
    env = dict(REAL)
    ok = cli("channels", "--host", "sandbox", "--client-key", "sandbox", "--client-secret-stdin", input="sandbox\n", env=env)
    assert ok.code == 0, ok
    wrong = cli("channels", "--host", "sandbox", "--username", "nobody", "--password-stdin", input="x\n", env=env)
    assert wrong.code == 4 and "401" in wrong.stderr, wrong
    half = cli("channels", "--host", "sandbox", "--username", "sandbox", env=env)
    error, hint = assert_one_error(half, 4, *REAL.values())
    assert error == "error: Basic auth needs both a username and a password"
    assert hint.startswith("hint: with --host sandbox only flags count")


def test_trailing_newline_in_a_ci_password_still_authenticates(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("channels", "-o", "json", env={"COMMCTL_PASSWORD": "sandbox\n"})
    assert out.code == 0, out


# ---- config show ----


def test_config_show_masks_every_secret(cli: Cli, config_file: Path) -> None:
    secrets = {"EU_PW": "hunter2", "COMMCTL_TOKEN": "tok-123", "COMMCTL_CLIENT_SECRET": "cs-456"}
    digests = [hashlib.md5(v.encode()).hexdigest() for v in secrets.values()]
    for fmt in ("table", "json", "yaml"):
        out = cli("config", "show", "-o", fmt, env=config_env(config_file, **secrets))
        assert out.code == 0, out
        for text in [*secrets.values(), *digests]:
            assert text not in out.stdout + out.stderr, (fmt, out)
    out = cli("config", "show", "-o", "table", env=config_env(config_file, **secrets))
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[1:] if line.strip()}
    assert rows["password"][:3] == ["****", "profile", "eu"]
    assert rows["token"] == ["****", "env", "COMMCTL_TOKEN"]
    assert rows["client_secret"] == ["****", "env", "COMMCTL_CLIENT_SECRET"]
    assert rows["host"] == ["eu", "profile", "eu"]


def test_config_show_never_echoes_url_credentials(cli: Cli, config_file: Path) -> None:
    url = "https://till:hunter2@api.example.com"
    for out in (
        cli("config", "show", "-o", "json", env=config_env(config_file, EU_PW="x", COMMCTL_HOST=url)),
        cli("config", "show", "--host", url, "-o", "yaml", env=config_env(config_file, EU_PW="x")),
        cli("channels", "--host", url, "--verbose", "--debug", env=config_env(config_file, EU_PW="x")),
    ):
        assert out.code in (2, 4), out
        assert "hunter2" not in out.stdout + out.stderr and "till:" not in out.stdout + out.stderr, out


def test_secret_flags_do_not_exist(cli: Cli) -> None:
    assert cli("channels", "--password", "x").code == 2
    assert cli("channels", "--client-secret", "x").code == 2


# ---- whatever the environment or the config file holds: exit 0 or 4, one error line, never a traceback ----

ENV_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_clean(out: Outcome) -> None:
    assert out.code in (0, 4), out
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out
    if out.code == 4:
        assert [line[:6] for line in out.stderr.splitlines()] in (["error:"], ["error:", "hint: "]), out


@PROPERTY
@given(
    st.sampled_from(["COMMCTL_HOST", "COMMCTL_TIMEOUT", "COMMCTL_RETRIES", "COMMCTL_OUTPUT"]),
    st.one_of(ENV_TEXT, st.sampled_from(["eu", "https://api.example.com:8443/x", "30", "0.5", "2", "1e3", "json"])),
)
def test_any_environment_value_is_accepted_or_exit_4(cli: Cli, var: str, value: str) -> None:
    assert_clean(cli("config", "show", "-o", "json" if var != "COMMCTL_OUTPUT" else "table", env={var: value}))


YAML_VALUES = st.one_of(
    ENV_TEXT, st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)
)


@PROPERTY
@given(st.sampled_from(["host", "timeout", "retries", "output", "username", "password_env"]), YAML_VALUES)
def test_any_config_value_is_accepted_or_exit_4(cli: Cli, tmp_path: Path, key: str, value: Any) -> None:
    config = write(tmp_path / "prop.yaml", yaml.safe_dump({"profiles": {"p": {key: value}}, "default_profile": "p"}))
    assert_clean(cli("config", "show", "-o", "json", env={"COMMCTL_CONFIG": str(config)}))


@pytest.mark.parametrize(
    "text",
    [
        "profiles:\n  base: &base\n    host: eu\n    retries: 2\n  eu:\n    <<: *base\n    retries: 5\n",
        "profiles:\n  a: &a {host: eu}\n  b: &b {retries: 4}\n  eu:\n    <<: [*a, *b]\n    retries: 5\n",
    ],
)
def test_merge_keys_in_the_config_file_load_and_may_be_overridden(tmp_path: Path, text: str) -> None:
    s = resolve(Conn(config=str(write(tmp_path / "c.yaml", text)), profile="eu"), {})
    assert (s.host, s.get("retries")) == ("eu", 5)
