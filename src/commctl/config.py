"""Settings resolution, in one place: flag > environment > profile in the config file > default."""

from __future__ import annotations

import difflib
import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import ConfigError, UsageError
from .options import ConnectionOptions

CLUSTERS = {
    "eu": "https://eu.api.capillarytech.com",
    "in": "https://apac.api.capillarytech.com",
    "india": "https://apac.api.capillarytech.com",
    "apac": "https://apac.api.capillarytech.com",
    "apac2": "https://apac2.api.capillarytech.com",
    "sg": "https://apac2.api.capillarytech.com",
    "asia": "https://apac2.api.capillarytech.com",
    "us": "https://us.api.capillarytech.com",
    "cn": "https://api.capillarytech.cn.com",
}
SANDBOX = "sandbox"
OUTPUTS = ("table", "json", "yaml", "markdown")
CONFIG_KEYS = ("host", "username", "password_env", "client_key", "client_secret_env", "output", "timeout", "retries")
SECRETS = ("password", "client_secret", "token")
DEFAULTS: dict[str, Any] = {"output": "table", "timeout": 30.0, "retries": 3}
ENV = {
    "host": "COMMCTL_HOST",
    "profile": "COMMCTL_PROFILE",
    "config": "COMMCTL_CONFIG",
    "username": "COMMCTL_USERNAME",
    "password": "COMMCTL_PASSWORD",
    "client_key": "COMMCTL_CLIENT_KEY",
    "client_secret": "COMMCTL_CLIENT_SECRET",
    "token": "COMMCTL_TOKEN",
    "output": "COMMCTL_OUTPUT",
    "timeout": "COMMCTL_TIMEOUT",
    "retries": "COMMCTL_RETRIES",
}


@dataclass
class Settings:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    insecure: bool = False

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def put(self, name: str, value: Any, source: str) -> None:
        """Set a value unless a stronger source already did (empty values count as unset)."""
        if value not in (None, "") and name not in self.values:
            self.values[name] = value
            self.sources[name] = source

    @property
    def output(self) -> str:
        return str(self.values["output"])

    @property
    def host(self) -> str | None:
        return self.values.get("host")

    def base_url(self) -> str:
        """The API root URL, or `sandbox`; exit 4 with a hint when no host was chosen."""
        host = self.host
        if not host:
            raise ConfigError(
                "no API host configured",
                hint="pass --host eu|in|apac2|us|cn|URL|sandbox, set COMMCTL_HOST, or add `host:` to a profile "
                "(try `--host sandbox` for the local emulator)",
            )
        return resolve_host(host, self.insecure)

    def shown(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) rows for `config show`, with secrets masked."""
        rows = []
        for name in (
            "host",
            "profile",
            "config",
            "username",
            "password",
            "client_key",
            "client_secret",
            "token",
            "output",
            "timeout",
            "retries",
        ):
            value = self.values.get(name)
            shown = "" if value is None else ("****" if name in SECRETS else str(value))
            rows.append((name, shown, self.sources.get(name, "") if value is not None else ""))
        return rows


def config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "commctl" / "config.yaml"


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "commctl"


def resolve_host(host: str, insecure: bool = False) -> str:
    if host == SANDBOX:
        return SANDBOX
    if host.lower() in CLUSTERS:
        return CLUSTERS[host.lower()]
    url = host if "://" in host else f"https://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid host {host!r}", hint=f"use a URL or one of: {', '.join(CLUSTERS)}, sandbox")
    if parts.scheme == "http" and not insecure and not _is_loopback(parts.hostname):
        raise ConfigError(f"refusing plain http:// to {parts.hostname}", hint="use https://, or pass --insecure")
    return url.rstrip("/").removesuffix("/v3")


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _read_config(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    import yaml  # only when there is a config file to read

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with `profiles:`")
    _check_keys(data, (*CONFIG_KEYS, "default_profile", "profiles"), str(path))
    if not isinstance(data.get("profiles") or {}, dict):
        raise ConfigError(f"{path}: profiles: expected a mapping of profile names to settings")
    for name, prof in (data.get("profiles") or {}).items():
        if not isinstance(prof, dict):
            raise ConfigError(f"{path}: profiles.{name}: expected a mapping")
        _check_keys(prof, CONFIG_KEYS, f"{path}: profiles.{name}")
    return data


def _check_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            tip = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: unknown key '{key}'{tip}", hint=f"known keys: {', '.join(known)}")


def read_secret(stream: IO[str], what: str) -> str:
    line = stream.readline()
    secret = line.rstrip("\r\n")
    if not secret:
        raise UsageError(f"no {what} on standard input")
    return secret


def _layers(conn: ConnectionOptions, env: Mapping[str, str]) -> tuple[Settings, list[tuple[dict[str, Any], str]]]:
    """Settings with the config file and profile chosen, and the config layers below flags and env."""
    s = Settings(insecure=conn.insecure)
    for name in ("config", "profile"):
        s.put(name, getattr(conn, name), "flag")
        s.put(name, env.get(ENV[name]), f"env {ENV[name]}")
    explicit = "config" in s.values
    path = Path(s.values["config"]) if explicit else config_path(env)
    data = _read_config(path, explicit)
    s.put("profile", data.get("default_profile"), f"config {path}")
    profile_name = s.values.get("profile")
    profiles = data.get("profiles") or {}
    if profile_name is not None and profile_name not in profiles:
        raise ConfigError(
            f"profile {profile_name!r} not found in {path}", hint=f"profiles: {', '.join(profiles) or 'none'}"
        )
    s.values.setdefault("config", str(path))
    s.sources.setdefault("config", "default")
    return s, [(profiles.get(profile_name) or {}, f"profile {profile_name}"), (data, f"config {path}")]


def _plain(s: Settings, name: str, flag: Any, env: Mapping[str, str], layers: list[tuple[dict[str, Any], str]]) -> None:
    s.put(name, flag, "flag")
    s.put(name, env.get(ENV[name]), f"env {ENV[name]}")
    for layer, source in layers:
        s.put(name, layer.get(name), source)
    s.put(name, DEFAULTS.get(name), "default")


def resolve_output(
    output: str | None, conn: ConnectionOptions, env: Mapping[str, str] = os.environ, allowed: tuple[str, ...] = OUTPUTS
) -> str:
    """The output format alone: flag > env > profile > default, without touching any credential."""
    s, layers = _layers(conn, env)
    _plain(s, "output", output, env, layers)
    _coerce_output(s, allowed)
    return s.output


def resolve(
    conn: ConnectionOptions,
    env: Mapping[str, str] = os.environ,
    stdin: IO[str] | None = None,
    output: str | None = None,
) -> Settings:
    """Merge flags, environment, config profile and defaults; record where each value came from."""
    s, layers = _layers(conn, env)
    if conn.password_stdin and conn.client_secret_stdin:
        raise UsageError("--password-stdin and --client-secret-stdin both read standard input; pick one")
    flags: dict[str, Any] = {"output": output, "host": conn.host, "username": conn.username}
    flags.update(client_key=conn.client_key, timeout=conn.timeout, retries=conn.retries)
    for name, flag in flags.items():
        _plain(s, name, flag, env, layers)
    for name, from_stdin in (("password", conn.password_stdin), ("client_secret", conn.client_secret_stdin)):
        if from_stdin:
            s.put(name, read_secret(stdin or sys.stdin, name.replace("_", " ")), "stdin")
        s.put(name, env.get(ENV[name]), f"env {ENV[name]}")
        for layer, source in layers:
            var = layer.get(f"{name}_env")
            if var and name not in s.values:  # only needed when nothing stronger gave the secret
                if var not in env:
                    raise ConfigError(f"{source} names {name}_env {var}, but that variable is not set")
                s.put(name, env[var], f"{source} via ${var}")
    s.put("token", env.get(ENV["token"]), f"env {ENV['token']}")
    _coerce(s)
    return s


def _coerce_output(s: Settings, allowed: tuple[str, ...] = OUTPUTS) -> None:
    """Exit 4 for a bad COMMCTL_OUTPUT or config value (a bad -o flag is exit 2, checked by the CLI)."""
    out = str(s.values["output"]).lower()
    if out not in allowed:
        source = s.sources["output"]
        close = difflib.get_close_matches(out, allowed, n=1)
        tip = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"invalid output {out!r} (from {source}){tip}", hint=f"this command offers: {', '.join(allowed)}")
    s.values["output"] = out


def _coerce(s: Settings) -> None:
    _coerce_output(s)
    for name, kind, low in (("timeout", float, 0.001), ("retries", int, 0)):
        try:
            value = kind(s.values[name])
        except (TypeError, ValueError):
            raise ConfigError(f"invalid {name} {s.values[name]!r} (from {s.sources[name]})") from None
        if value < low or value > 10_000:
            raise ConfigError(f"{name} out of range: {value} (from {s.sources[name]})")
        s.values[name] = value
