"""Settings resolution, in one place: flag > environment > profile in the config file > default.

Every value is checked here, before any request. A bad value is reported where it came from, with a
hint that fits that place: a flag is a usage error (exit 2); the environment, the config file and
standard input are configuration errors (exit 4). No secret is ever part of a message.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import CommctlError, ConfigError, UsageError
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
SANDBOX_OWN = {"username": "sandbox", "password": "****"}  # how `config show` shows the sandbox's own credentials
OUTPUTS = ("table", "json", "yaml", "markdown")
TEXT_KEYS = ("host", "username", "password_env", "client_key", "client_secret_env", "output")
NUMBER_KEYS = ("timeout", "retries", "rate")
CONFIG_KEYS = (*TEXT_KEYS, *NUMBER_KEYS)
CREDENTIALS = ("username", "password", "client_key", "client_secret", "token")
CREDENTIAL_NAMES = {  # as the client names them in its own checks
    "username": "the username",
    "password": "the password",
    "client_key": "the OAuth client key",
    "client_secret": "the OAuth client secret",
    "token": "the OAuth token",
}
SECRETS = ("password", "client_secret", "token")
SHOWN = ("host", "profile", "config", *CREDENTIALS, "output", "timeout", "retries", "rate")  # `config show`'s rows
DEFAULTS: dict[str, Any] = {"output": "table", "timeout": 30.0, "retries": 3}
MAX_TIMEOUT = 3600.0
MAX_RETRIES = 100
MAX_RATE = 1_000_000.0  # requests per second
MAX_CONFIG_BYTES = 1 << 20
MAX_SECRET_CHARS = 8192
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
    "rate": "COMMCTL_RATE",
}
FLAGS = {
    "host": "--host",
    "profile": "--profile",
    "config": "--config",
    "username": "--username",
    "password": "--password-stdin",
    "client_key": "--client-key",
    "client_secret": "--client-secret-stdin",
    "output": "--output",
    "timeout": "--timeout",
    "retries": "--retries",
    "rate": "--rate",
}
EXPECTED = {
    "host": f"one of {', '.join(CLUSTERS)}, sandbox, or an https:// URL such as https://api.example.com",
    "output": ", ".join(OUTPUTS),
    "timeout": f"a number of seconds above 0 and at most {MAX_TIMEOUT:g}",
    "retries": f"a whole number from 0 to {MAX_RETRIES}",
    "rate": f"a number of requests per second above 0 and at most {MAX_RATE:g}",
    **{name: "printable ASCII text" for name in CREDENTIALS},
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]{1,3})?|[0-9]+\.)")
_INTEGER = re.compile(r"[+-]?[0-9]{1,6}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?![0-9]+(?:/|$))")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


class Invalid(Exception):
    """A value a check refused: what is wrong with it (never a secret), and maybe advice fitting this value."""

    def __init__(self, problem: str, advice: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.advice = problem, advice


@dataclass(frozen=True)
class Origin:
    """Where a value came from: the `config show` source column, and what an error names and suggests."""

    kind: str  # flag, env, config, stdin, default, sandbox
    label: str  # `config show`'s source column
    where: str  # names the value in an error: --timeout, COMMCTL_TIMEOUT, FILE: profiles.eu.timeout

    def error(self, problem: str, expected: str, advice: str | None = None, subject: str | None = None) -> CommctlError:
        """The error for a bad value from here; `advice` is what to do about this value, wherever it came from.

        With a `subject` (credentials) the message reads as the client's own credential checks do.
        """
        source = self.where if self.kind == "flag" else self.label
        message = f"{subject} (from {source}) {problem}" if subject else f"{self.where}: {problem}"
        if self.kind == "flag":
            return UsageError(message, hint=advice or f"{self.where} takes {expected}")
        if advice:
            fix = {"env": f"fix {self.where}", "config": "fix it in the config file", "stdin": "fix the input"}
            return ConfigError(message, hint=f"{fix.get(self.kind, 'fix it')}: {advice}")
        fixes = {
            "env": f"set {self.where} to {expected}, or unset it",
            "config": f"change it in the config file to {expected}",
            "stdin": f"pipe {expected} on one line",
            "default": f"give --config or COMMCTL_CONFIG {expected}",
        }
        return ConfigError(message, hint=fixes.get(self.kind, expected))


FLAG_ORIGIN = {name: Origin("flag", "flag", flag) for name, flag in FLAGS.items()}
DEFAULT = Origin("default", "default", "the default")


def _env_origin(name: str) -> Origin:
    return Origin("env", f"env {ENV[name]}", ENV[name])


@dataclass(frozen=True)
class Layer:
    """One mapping of the config file: a profile, or the file's top level (which applies to every profile)."""

    values: Mapping[str, Any]
    label: str
    prefix: str  # "FILE: profiles.NAME." or "FILE: ", to name a key in errors

    def origin(self, key: str) -> Origin:
        return Origin("config", self.label, f"{self.prefix}{key}")


@dataclass
class Settings:
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    insecure: bool = False
    url: str | None = None  # the checked API root, or `sandbox`
    ignored: dict[str, str] = field(default_factory=dict)  # credential -> source ignored with --host sandbox

    @property
    def sources(self) -> dict[str, str]:
        return {name: origin.label for name, origin in self.origins.items()}

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def put(self, name: str, value: Any, origin: Origin) -> None:
        """Set a value unless a stronger source already did (empty values count as unset)."""
        if value not in (None, "") and name not in self.values:
            self.values[name] = value
            self.origins[name] = origin

    def check(self, name: str, checker: Callable[[Any], Any], subject: str | None = None) -> None:
        """Replace the value by its checked form, or raise an error naming where it came from."""
        if name not in self.values:
            return
        origin = self.origins[name]
        try:
            self.values[name] = checker(self.values[name])
        except Invalid as e:
            raise origin.error(e.problem, EXPECTED[name], e.advice, subject) from None

    @property
    def output(self) -> str:
        return str(self.values["output"])

    @property
    def host(self) -> str | None:
        return self.values.get("host")

    @property
    def sandbox(self) -> bool:
        return self.url == SANDBOX

    @property
    def has_credentials(self) -> bool:
        return any(name in self.values for name in CREDENTIALS)

    def base_url(self) -> str:
        """The API root URL, or `sandbox`; exit 4 with a hint when no host was chosen."""
        if self.url is None:
            raise ConfigError(
                "no API host configured",
                hint="pass --host eu|in|apac2|us|cn|URL|sandbox, set COMMCTL_HOST, or add `host:` to a profile "
                "(try `--host sandbox` for the local emulator)",
            )
        return self.url

    def shown(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) rows for `config show`, with secrets masked."""
        rows = []
        for name in SHOWN:
            value = self.values.get(name)
            shown = "" if value is None else ("****" if name in SECRETS else str(value))
            source = self.origins[name].label if value is not None else ""
            if name in self.ignored:
                note = f"{self.ignored[name]} ignored with host sandbox"
                source = f"{source}; {note}" if source else note
            if self.sandbox and value is None and name in SANDBOX_OWN and not self.has_credentials:
                shown, source = SANDBOX_OWN[name], "; ".join(filter(None, ("the sandbox's own", source)))
            rows.append((name, shown, source))
        return rows


def config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "commctl" / "config.yaml"


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "commctl"


# ---- checks of single values: each returns the value to use or raises Invalid ----


def _shown(value: Any) -> str:
    """A value quoted for an error message: control characters escaped, long text cut."""
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({_shown(value)})"
    if isinstance(value, str):
        return f"text ({_shown(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({_shown(value)})"
    if value is None:
        return "nothing"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def _key(key: Any) -> str:
    """A config key or profile name as part of an error location, escaped unless plain."""
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_.-]+", text) else _shown(key)


def _did_you_mean(value: str, choices: Any) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _unsafe(text: str) -> bool:
    """True for whitespace, control characters (C0, DEL, C1) and line or paragraph separators."""
    return any(c.isspace() or not c.isprintable() for c in text)


def check_host(value: Any, insecure: bool = False) -> str:
    """An alias, `sandbox` or an http(s) URL without credentials -> the API root URL (or `sandbox`)."""
    if not isinstance(value, str):
        raise Invalid(f"expected text, got {_kind(value)}")
    if "@" in value:  # checked first: every later message shows the value
        raise Invalid(
            "a host URL must not carry credentials (user:password@...); the value is not shown",
            advice="remove them from the URL and give --username with COMMCTL_PASSWORD or --password-stdin",
        )
    if _unsafe(value):
        raise Invalid(f"spaces and control characters are not allowed: {_shown(value)}")
    name = value.lower()
    if name == SANDBOX:
        return SANDBOX
    if name in CLUSTERS:
        return CLUSTERS[name]
    if "://" not in value:
        if re.fullmatch(r"[a-z0-9-]+", name) and name != "localhost":
            raise Invalid(f"unknown host {_shown(value)}{_did_you_mean(name, [*CLUSTERS, SANDBOX])}")
        scheme = _SCHEME.match(value)
        if scheme:
            raise Invalid(f"unsupported scheme {_shown(scheme.group(1))}: only https:// (and http:// to loopback)")
    url = value if "://" in value else f"https://{value}"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ or ] (IPv6 brackets)
        raise Invalid(f"not a valid URL: {_shown(value)}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid(f"unsupported scheme {_shown(parts.scheme)}: only https:// (and http:// to loopback)")
    if parts.query or parts.fragment:
        raise Invalid(f"a host URL takes no query or fragment: {_shown(value)}")
    hostname = _check_hostname(parts.hostname or "", value)
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = None
    if not port and ":" in parts.netloc.rsplit("]", 1)[-1]:
        raise Invalid(f"invalid port in {_shown(value)} (expected 1 to 65535)")
    if parts.scheme.lower() == "http" and not insecure and not _is_loopback(hostname):
        raise Invalid(f"refusing plain http:// to {hostname}", advice="use https://, or pass --insecure")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path}".rstrip("/").removesuffix("/v3")


def _check_hostname(hostname: str, value: str) -> str:
    if not hostname:
        raise Invalid(f"no host name in {_shown(value)}")
    if not hostname.isascii():
        raise Invalid(f"non-ASCII host name in {_shown(value)}", advice="write the host name in its xn-- (punycode) form")
    try:
        ipaddress.ip_address(hostname)
        return hostname
    except ValueError:
        pass
    labels = hostname.removesuffix(".").split(".")
    numeric = all(label.isdigit() for label in labels)
    if numeric or len(hostname) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise Invalid(f"invalid host name {_shown(hostname)}")
    return hostname


def resolve_host(host: str, insecure: bool = False) -> str:
    """`check_host` for callers outside a settings resolution: a bad host is a configuration error."""
    try:
        return check_host(host, insecure)
    except Invalid as e:
        raise ConfigError(f"invalid host: {e.problem}", hint=e.advice or f"use {EXPECTED['host']}") from None


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _number(value: Any) -> float | int:
    """A number from a typed source (flag, config file) or from environment text."""
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise Invalid(f"not a number: {_shown(value)}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"expected a number, got {_kind(value)}")
    return value


def _positive(value: Any, most: float) -> float:
    """A finite number above 0 and at most `most` (a huge integer counts as out of range, not an error)."""
    number = _number(value)
    try:
        result = float(number)
    except OverflowError:
        result = math.inf
    if not (math.isfinite(result) and 0 < result <= most):
        raise Invalid(f"out of range: {_shown(number)}")
    return result


def check_timeout(value: Any) -> float:
    return _positive(value, MAX_TIMEOUT)


def check_rate(value: Any) -> float:
    """Requests per second (SPEC 9); unset means no limit but the server's own 429 answers."""
    return _positive(value, MAX_RATE)


def check_retries(value: Any) -> int:
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise Invalid(f"not a whole number: {_shown(value)}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected a whole number, got {_kind(value)}")
    if not 0 <= value <= MAX_RETRIES:
        raise Invalid(f"out of range: {_shown(value)}")
    return value


def check_output(value: Any, allowed: tuple[str, ...] = OUTPUTS) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected text, got {_kind(value)}")
    if value.lower() not in allowed:
        problem = "unknown output format" if value.lower() not in OUTPUTS else "output format not offered here:"
        raise Invalid(
            f"{problem} {_shown(value)}{_did_you_mean(value.lower(), allowed)}",
            advice=f"this command offers: {', '.join(allowed)}",
        )
    return value.lower()


def check_credential(value: Any) -> str:
    """Printable ASCII only; the value itself never appears in the message."""
    if not isinstance(value, str):  # the config file's types were checked as it was read
        raise Invalid("is not text")
    if "\r" in value or "\n" in value:
        raise Invalid("contains a line break; refusing to use it (only one newline at the very end is dropped)")
    if not value.isascii():
        raise Invalid("contains non-ASCII characters; refusing to use it")
    if not value.isprintable():
        raise Invalid("contains a control character; refusing to use it")
    if len(value) > MAX_SECRET_CHARS:
        raise Invalid(f"is longer than {MAX_SECRET_CHARS} characters; refusing to use it")
    return value


def strip_line_end(text: str) -> str:
    """Drop one trailing newline (CI variables and secret files often end with one), as gh does for tokens."""
    return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")


# ---- the config file ----


def _read_config(path: Path, origin: Origin) -> dict[str, Any]:
    """The config file as a checked mapping; {} when the default file does not exist.

    The path itself is the origin's concern (a bad --config is exit 2); what is inside is exit 4.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except FileNotFoundError:
        if origin.kind == "default":
            return {}
        raise origin.error(f"{path} does not exist", "the path of an existing YAML file") from None
    except OSError as e:
        raise origin.error(f"cannot read {path}: {e.strerror or e}", "the path of a readable YAML file") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise origin.error(f"{path} is not a regular file", "the path of a YAML file")
    with os.fdopen(fd, "rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_CONFIG_BYTES // 1024} KiB")
    return _parse_config(raw, path)


def _parse_config(raw: bytes, path: Path) -> dict[str, Any]:
    import yaml

    class Loader(yaml.SafeLoader):  # pure Python: its messages are the clearer ones
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            """A key given twice is refused (PyYAML keeps the last silently: `host:` twice is a mistake)."""
            seen: set[tuple[type, Any]] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base`: merged keys may be overridden, that is what merging is for
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str | int | float | bool):
                    continue  # unhashable: PyYAML's own message follows
                if (type(key), key) in seen:  # with its type: `1` and `true` are two keys
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {_shown(key)} is given twice", key_node.start_mark
                    )
                seen.add((type(key), key))
            return super().construct_mapping(node, deep)

    try:
        data = yaml.load(raw.decode("utf-8"), Loader) or {}  # a SafeLoader
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings and `profiles:`, got {_kind(data)}")
    _check_mapping(data, (*CONFIG_KEYS, "default_profile", "profiles"), f"{path}: ")
    profiles = data.get("profiles")
    if profiles is None:
        profiles = data["profiles"] = {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: profiles: expected a mapping of profile names to settings, got {_kind(profiles)}")
    for name, prof in profiles.items():
        if not isinstance(name, str):
            raise ConfigError(f"{path}: profiles: profile name {_shown(name)} must be text", hint="quote it")
        if not isinstance(prof, dict):
            raise ConfigError(f"{path}: profiles.{_key(name)}: expected a mapping of settings, got {_kind(prof)}")
        _check_mapping(prof, CONFIG_KEYS, f"{path}: profiles.{_key(name)}.")
    return data


def _check_mapping(data: Mapping[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    """Known keys only (with a did-you-mean), each with a value of the right type."""
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"{prefix}{_key(key)}: unknown key{_did_you_mean(str(key), known)}",
                hint=f"known keys: {', '.join(known)}",
            )
        text = key in (*TEXT_KEYS, "default_profile")
        if value is None or (text and isinstance(value, str)):
            continue
        if text:
            raise ConfigError(f"{prefix}{key}: expected text, got {_kind(value)}", hint="put the value in quotes")
        if key in NUMBER_KEYS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(
                f"{prefix}{key}: expected {EXPECTED[key]}, got {_kind(value)}", hint="write the number without quotes"
            )
    for key in ("password_env", "client_secret_env"):
        var = data.get(key)
        if isinstance(var, str) and not _ENV_NAME.fullmatch(var):
            raise ConfigError(  # it may be the secret itself, put here by mistake: not shown
                f"{prefix}{key}: not an environment variable name (the value is not shown)",
                hint="give the NAME of the variable that holds the secret, never the secret itself",
            )


# ---- resolution ----


def _layers(conn: ConnectionOptions, env: Mapping[str, str]) -> tuple[Settings, list[Layer]]:
    """Settings with the config file and profile chosen, and the config layers below flags and env."""
    s = Settings(insecure=conn.insecure)
    for name in ("config", "profile"):
        s.put(name, getattr(conn, name), FLAG_ORIGIN[name])
        s.put(name, env.get(ENV[name]), _env_origin(name))
    path = Path(s.values["config"]) if "config" in s.values else config_path(env)
    s.put("config", str(path), Origin("default", "default", "config file"))
    data = _read_config(path, s.origins["config"])
    s.put("profile", data.get("default_profile"), Origin("config", f"config {path}", f"{path}: default_profile"))
    profiles: dict[str, Any] = data.get("profiles") or {}
    profile = s.values.get("profile")
    if profile is not None and profile not in profiles:
        known = f"one of: {', '.join(map(_key, profiles))}" if profiles else f"the name of a profile under `profiles:` in {path}"
        missing = "" if path.exists() else " (the file does not exist)"
        raise s.origins["profile"].error(
            f"profile {_shown(profile)} not found in {path}{missing}{_did_you_mean(profile, profiles)}", known
        )
    layers = [Layer(data, f"config {path}", f"{path}: ")]
    if profile is not None:
        layers.insert(0, Layer(profiles[profile], f"profile {profile}", f"{path}: profiles.{_key(profile)}."))
    return s, layers


def _plain(s: Settings, name: str, flag: Any, env: Mapping[str, str], layers: list[Layer]) -> None:
    s.put(name, flag, FLAG_ORIGIN[name])
    s.put(name, env.get(ENV[name]), _env_origin(name))
    for layer in layers:
        s.put(name, layer.values.get(name), layer.origin(name))
    s.put(name, DEFAULTS.get(name), DEFAULT)


def resolve_output(
    output: str | None, conn: ConnectionOptions, env: Mapping[str, str] = os.environ, allowed: tuple[str, ...] = OUTPUTS
) -> str:
    """The output format alone (one the command offers): flag > env > profile > default, no credential touched."""
    s, layers = _layers(conn, env)
    _plain(s, "output", output, env, layers)
    s.check("output", lambda value: check_output(value, allowed))
    return s.output


def resolve(
    conn: ConnectionOptions,
    env: Mapping[str, str] = os.environ,
    stdin: IO[str] | None = None,
    output: str | None = None,
    rate: float | None = None,
) -> Settings:
    """Merge flags, environment, config profile and defaults; record and check where each value came from."""
    s, layers = _layers(conn, env)
    if conn.password_stdin and conn.client_secret_stdin:
        raise UsageError("--password-stdin and --client-secret-stdin both read standard input; pick one")
    flags = {"output": output, "host": conn.host, "timeout": conn.timeout, "retries": conn.retries, "rate": rate}
    for name, flag in flags.items():
        _plain(s, name, flag, env, layers)
    s.check("output", check_output)
    if "host" in s.values:  # `config show` shows the host as given; the client gets the checked URL
        given = s.values["host"]
        s.check("host", lambda value: check_host(value, s.insecure))
        s.url, s.values["host"] = s.values["host"], given
    s.check("timeout", check_timeout)
    s.check("retries", check_retries)
    s.check("rate", check_rate)
    _credentials(s, conn, env, layers, stdin)
    for name in CREDENTIALS:
        s.check(name, check_credential, CREDENTIAL_NAMES[name])
    return s


def _credentials(
    s: Settings, conn: ConnectionOptions, env: Mapping[str, str], layers: list[Layer], stdin: IO[str] | None
) -> None:
    """Credentials: flags and stdin, then the environment and the config file.

    With `--host sandbox` only flags count: the environment and the config file usually hold a real
    account's credentials, which must never reach the emulator (it would refuse them anyway). Without
    flags the client uses the sandbox's own credentials, and `config show` says what was ignored.
    """
    s.put("username", conn.username, FLAG_ORIGIN["username"])
    s.put("client_key", conn.client_key, FLAG_ORIGIN["client_key"])
    for name, from_stdin in (("password", conn.password_stdin), ("client_secret", conn.client_secret_stdin)):
        if from_stdin:
            origin = Origin("stdin", "stdin", f"standard input ({FLAGS[name]})")
            s.put(name, read_secret(stdin or sys.stdin, name.replace("_", " ")), origin)
    if s.sandbox:
        _ignore_for_sandbox(s, env, layers)
        return
    for name in CREDENTIALS:
        s.put(name, _env_text(env, ENV[name]), _env_origin(name))
    for layer in layers:
        for name in ("username", "client_key"):
            s.put(name, layer.values.get(name), layer.origin(name))
        for name in ("password", "client_secret"):
            var = layer.values.get(f"{name}_env")
            if var and name not in s.values:  # only needed when nothing stronger gave the secret
                where = layer.origin(f"{name}_env").where
                if var not in env:
                    raise ConfigError(f"{where} names {var}, but that variable is not set", hint=f"export {var}")
                s.put(name, _env_text(env, var), Origin("env", f"{layer.label} via ${var}", f"{var} (from {where})"))


def _ignore_for_sandbox(s: Settings, env: Mapping[str, str], layers: list[Layer]) -> None:
    for name in CREDENTIALS:
        if env.get(ENV[name]):
            s.ignored.setdefault(name, f"env {ENV[name]}")
        for layer in layers:
            if layer.values.get(name) or layer.values.get(f"{name}_env"):
                s.ignored.setdefault(name, layer.label)


def _env_text(env: Mapping[str, str], var: str) -> str | None:
    value = env.get(var)
    return None if value is None else strip_line_end(value)


def read_secret(stream: IO[str], what: str) -> str:
    """One line of standard input; at a terminal, read without echo (the user is typing a secret)."""
    if stream.isatty():
        import getpass

        try:
            secret = getpass.getpass(f"{what} (input hidden): ", stream=sys.stderr)
        except EOFError:
            secret = ""
    else:
        secret = strip_line_end(stream.readline(MAX_SECRET_CHARS + 3))  # bounded: check_credential refuses more
    if not secret:
        raise UsageError(
            f"no {what} on standard input",
            hint=f"pipe it in, e.g. `printenv MY_SECRET | commctl ... --{what.replace(' ', '-')}-stdin`",
        )
    return secret
