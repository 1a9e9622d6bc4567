"""Exit codes and the error tree: every failure a user can cause maps to one of these."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

MAX_PROBLEMS = 50


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    INVALID_INPUT = 3
    CONFIG = 4
    API_REJECTED = 5
    UNAVAILABLE = 6
    DIFFERENCES = 7
    INTERRUPTED = 130  # SIGINT
    CLOSED_PIPE = 141  # 128 + SIGPIPE: the reader of stdout stopped early (`| head`)
    TERMINATED = 143  # SIGTERM, e.g. a cancelled CI job


class CommctlError(Exception):
    """An error meant for people: a message, an optional hint, an exit code."""

    exit_code = ExitCode.INTERNAL
    kind = "internal"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        return [self.message]


class UsageError(CommctlError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class InputError(CommctlError):
    """Invalid input; `problems` holds one `FILE:LINE:COL: field: message` line each."""

    exit_code = ExitCode.INVALID_INPUT
    kind = "input"

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("; ".join(problems) if len(problems) == 1 else f"{len(problems)} problems in the input", hint)
        self.problems = problems

    def lines(self) -> list[str]:
        return list(self.problems)


class ConfigError(CommctlError):
    exit_code = ExitCode.CONFIG
    kind = "config"


class AuthError(CommctlError):
    exit_code = ExitCode.CONFIG
    kind = "auth"


class ApiError(CommctlError):
    """The API refused a request (4xx other than 401/403, or `errors[]` in the body)."""

    exit_code = ExitCode.API_REJECTED
    kind = "api"

    def __init__(
        self, message: str, status: int | None = None, code: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "code": self.code, "message": self.message}


class UnavailableError(ApiError):
    """The API could not be reached or kept failing (5xx, timeout, connection) after the retries."""

    exit_code = ExitCode.UNAVAILABLE
    kind = "unavailable"


class StoppedError(UnavailableError):
    """A request not sent (or not tried again) because the run was stopped by SIGINT/SIGTERM.

    Not an answer of the API: an item whose write it kept from being sent is `skipped`, not `failed`.
    """


def clipped(text: str, limit: int = 60) -> str:
    """A name taken from the input (a key can be 100 KB long), short enough for one line of a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{clipped(str(part))}" if out else clipped(str(part)))
    return out


def one_line(text: str) -> str:
    """One problem stays one line, its control characters escaped (text.inline: the one escaping path)."""
    from .text import inline

    return inline(text)


FILES_HINT = "fix the file(s) and run `commctl validate` to check them offline"


class Problems:
    """Problems gathered before failing once; `hint` says what to do where they came from."""

    def __init__(self, hint: str | None = FILES_HINT) -> None:
        self.lines: list[str] = []
        self.hint = hint

    def add(self, where: str, message: str, path: Iterable[str | int] = ()) -> None:
        p = dotted(path)
        self.lines.append(one_line(f"{where}: {p}: {message}" if p else f"{where}: {message}"))

    def raise_if_any(self) -> None:
        if self.lines:
            shown = self.lines[:MAX_PROBLEMS]
            if len(self.lines) > MAX_PROBLEMS:
                shown.append(f"... and {len(self.lines) - MAX_PROBLEMS} more problems")
            raise InputError(shown, hint=self.hint)


def error_dict(error: BaseException) -> dict[str, object]:
    """`{status, code, message}` of any failure, as JSON results and reports show it."""
    if isinstance(error, ApiError):
        return error.as_dict()
    if isinstance(error, CommctlError):
        return {"status": None, "code": None, "message": error.message}
    return {"status": None, "code": None, "message": f"internal error: {type(error).__name__}: {error}"}
