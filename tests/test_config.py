"""Settings: flag > environment > profile > default, with sources, and secrets kept out of sight."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from commctl.config import resolve, resolve_host
from commctl.errors import ConfigError, UsageError
from commctl.options import ConnectionOptions as Conn

from .conftest import Cli, write

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


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write(tmp_path / "config" / "commctl" / "config.yaml", CONFIG)


def test_precedence_flag_env_profile_default(config_file: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(config_file.parents[1]), "EU_PW": "pw", "COMMCTL_OUTPUT": "json"}
    s = resolve(Conn(retries=5), env)
    assert s.values["host"] == "eu" and s.sources["host"] == "profile eu"
    assert s.values["output"] == "json" and s.sources["output"] == "env COMMCTL_OUTPUT"
    assert s.values["retries"] == 5 and s.sources["retries"] == "flag"
    assert s.values["timeout"] == 12.0 and s.sources["timeout"].startswith("config ")
    assert s.values["password"] == "pw" and s.sources["password"] == "profile eu via $EU_PW"
    assert s.base_url() == "https://eu.api.capillarytech.com"
    assert resolve(Conn(host="us"), env).base_url() == "https://us.api.capillarytech.com"


def test_profile_from_env_and_secret_from_named_variable(config_file: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(config_file.parents[1]), "COMMCTL_PROFILE": "staging", "STAGING_SECRET": "sec"}
    s = resolve(Conn(), env)
    assert (s.values["client_key"], s.values["client_secret"]) == ("ck", "sec")
    assert s.base_url() == "https://staging.example"
    shown = {name: (value, source) for name, value, source in s.shown()}
    assert shown["client_secret"] == ("****", "profile staging via $STAGING_SECRET")


def test_unknown_profile_and_unknown_key(config_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="profile 'prod' not found"):
        resolve(Conn(profile="prod"), {"XDG_CONFIG_HOME": str(config_file.parents[1])})
    bad = write(tmp_path / "bad.yaml", "profiles:\n  x:\n    hots: eu\n")
    with pytest.raises(ConfigError, match="unknown key 'hots' \\(did you mean 'host'\\?\\)"):
        resolve(Conn(config=str(bad)), {})
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(Conn(config=str(tmp_path / "missing.yaml")), {})


def test_named_password_variable_must_exist_unless_a_stronger_source_gave_it(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="EU_PW, but that variable is not set"):
        resolve(Conn(), {"XDG_CONFIG_HOME": str(config_file.parents[1])})
    s = resolve(Conn(), {"XDG_CONFIG_HOME": str(config_file.parents[1]), "COMMCTL_PASSWORD": "pw"})
    assert (s.values["password"], s.sources["password"]) == ("pw", "env COMMCTL_PASSWORD")


def test_profiles_must_be_a_mapping(tmp_path: Path) -> None:
    bad = write(tmp_path / "c.yaml", "profiles: [a, b]\n")
    with pytest.raises(ConfigError, match="profiles: expected a mapping of profile names to settings"):
        resolve(Conn(config=str(bad)), {})


def test_secrets_from_stdin_only() -> None:
    s = resolve(Conn(password_stdin=True, username="u"), {}, stdin=io.StringIO("s3cret\n"))
    assert s.values["password"] == "s3cret" and s.sources["password"] == "stdin"
    with pytest.raises(UsageError, match="no password on standard input"):
        resolve(Conn(password_stdin=True), {}, stdin=io.StringIO(""))
    with pytest.raises(UsageError, match="pick one"):
        resolve(Conn(password_stdin=True, client_secret_stdin=True), {}, stdin=io.StringIO("x\n"))


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("eu", "https://eu.api.capillarytech.com"),
        ("IN", "https://apac.api.capillarytech.com"),
        ("sg", "https://apac2.api.capillarytech.com"),
        ("cn", "https://api.capillarytech.cn.com"),
        ("api.example.com", "https://api.example.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://localhost:1/v3", "http://localhost:1"),
        ("sandbox", "sandbox"),
    ],
)
def test_host_aliases(host: str, url: str) -> None:
    assert resolve_host(host) == url


def test_invalid_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid output 'xml'"):
        resolve(Conn(), {}, output="xml")
    with pytest.raises(ConfigError, match="invalid timeout 'soon'"):
        resolve(Conn(), {"COMMCTL_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="refusing plain http"):
        resolve_host("http://10.1.2.3")
    assert resolve_host("http://10.1.2.3", insecure=True) == "http://10.1.2.3"


def test_config_show_table_masks_secrets(cli: Cli, config_file: Path) -> None:
    out = cli("config", "show", "-o", "table", env={"EU_PW": "hunter2", "COMMCTL_TOKEN": "tok-123"})
    assert out.code == 0, out
    assert "hunter2" not in out.stdout and "tok-123" not in out.stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[1:] if line.strip()}
    assert rows["password"][:3] == ["****", "profile", "eu"]
    assert rows["token"] == ["****", "env", "COMMCTL_TOKEN"]
    assert rows["host"] == ["eu", "profile", "eu"]


def test_secret_flags_do_not_exist(cli: Cli) -> None:
    assert cli("channels", "--password", "x").code == 2
    assert cli("channels", "--client-secret", "x").code == 2
