"""The option groups a command receives, as typed objects (built by cli.py from the parsed flags)."""

from __future__ import annotations

from dataclasses import dataclass

from .domain import DEFAULT_CONCURRENCY

FORMATS = ("table", "json", "yaml", "markdown")


@dataclass(frozen=True)
class OutputOptions:
    output: str | None = None  # None: from the environment, the config file, or the default
    quiet: bool = False
    debug: bool = False
    no_headers: bool = False  # piped tables without their header line
    formats: tuple[str, ...] = FORMATS  # the -o values this command offers


@dataclass(frozen=True)
class ConnectionOptions:
    host: str | None = None
    profile: str | None = None
    config: str | None = None
    username: str | None = None
    password_stdin: bool = False
    client_key: str | None = None
    client_secret_stdin: bool = False
    insecure: bool = False
    timeout: float | None = None
    retries: int | None = None
    verbose: bool = False

    @property
    def reads_stdin(self) -> bool:
        return self.password_stdin or self.client_secret_stdin


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    force: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    report: str | None = None
    strict: bool = False
    plan_out: str | None = None
    rate: float | None = None  # requests per second; None: from the environment, the config file, or unlimited
