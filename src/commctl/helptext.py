"""Plain --help laid out for people: option groups as sections, examples, exit codes, human metavars.

Click's plain formatter, extended; Rich help formatting would cost --help most of its start-up
budget. Standard library and typer only.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import typer.core

from .errors import ExitCode

if TYPE_CHECKING:  # Typer vendors Click (typer._click) in recent versions; only the types are needed
    from typer._click import Command as ClickCommand
    from typer._click import Context, HelpFormatter, Parameter

# Sections after a command's own options, in this order (the `rich_help_panel` of each option).
SECTIONS = ("Writing", "Output", "Connection")
EXIT_CODES = (
    (ExitCode.OK, "success (diff: in sync)"),
    (ExitCode.INTERNAL, "internal error (a bug); --debug shows the traceback"),
    (ExitCode.USAGE, "usage error: bad flags or flag values"),
    (ExitCode.INVALID_INPUT, "invalid input (file, schema, template); nothing was sent"),
    (ExitCode.CONFIG, "configuration or authentication problem (host, credentials, 401, 403)"),
    (ExitCode.API_REJECTED, "the API rejected a request, or some items of a batch failed"),
    (ExitCode.UNAVAILABLE, "the API was unavailable after the retries (5xx, timeout, connection)"),
    (ExitCode.DIFFERENCES, "diff: differences found"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C); items not attempted are reported as skipped"),
    (ExitCode.CLOSED_PIPE, "the reader of stdout stopped early (| head)"),
    (ExitCode.TERMINATED, "terminated (SIGTERM, e.g. a cancelled CI job)"),
)
_RANGE = re.compile(r"(?:(?P<low>-?[\d.]+)<=)?x(?:<=(?P<high>-?[\d.]+)|>=(?P<min>-?[\d.]+))")
_EXTRAS = re.compile(r"\s*\[(?P<items>[^\[\]]*)\]$")


def _human_range(match: re.Match[str]) -> str:
    """Click's `x>=1` / `1<=x<=64` in words; a bare lower bound of 0 or 1, or a wire-format cap, says nothing."""
    low, high, least = match["low"], match["high"], match["min"]
    if high is not None and low is not None:
        return "" if float(high) >= 1e6 else f"{low} to {high}"
    if least is not None and least not in ("0", "1"):
        return f"at least {least}"
    return ""


def _humane(text: str) -> str:
    """Help text with its trailing `[default: 8; 1<=x<=64]` made readable, empty items dropped."""
    found = _EXTRAS.search(text)
    if not found:
        return text
    items = [_RANGE.sub(_human_range, item) for item in found["items"].split("; ")]
    kept = "; ".join(item for item in items if item)
    return text[: found.start()] + (f"  [{kept}]" if kept else "")


def _record(param: Parameter, ctx: Context) -> tuple[str, str] | None:
    if getattr(param, "hidden", False):
        return None
    if param.param_type_name == "argument":
        return param.metavar or param.name.upper() if param.name else "ARG", getattr(param, "help", "") or ""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    names, text = record
    return names, _humane(text)


def write_sections(command: ClickCommand, ctx: Context, formatter: HelpFormatter) -> None:
    """Arguments, the command's own options, then the Writing, Output and Connection option groups."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        record = _record(param, ctx)
        if record is None:
            continue
        panel = getattr(param, "rich_help_panel", None)
        title = "Arguments" if param.param_type_name == "argument" else (f"{panel} options" if panel else "Options")
        groups.setdefault(title, []).append(record)
    for title in ("Arguments", "Options", *(f"{s} options" for s in SECTIONS)):
        if groups.get(title):
            with formatter.section(title):
                formatter.write_dl(groups[title])


def write_verbatim(title: str, lines: list[str], formatter: HelpFormatter) -> None:
    """A section whose lines are printed as written (examples must not be re-wrapped)."""
    formatter.write_paragraph()
    formatter.write_text(f"{title}:")
    for line in lines:
        formatter.write(f"{'':>{formatter.current_indent + 2}}{line}\n" if line else "\n")


def examples(epilog: str | None, formatter: HelpFormatter) -> None:
    if epilog:
        write_verbatim("Examples", epilog.strip("\n").splitlines(), formatter)


class Command(typer.core.TyperCommand):
    """A command whose help shows its option groups as sections and its examples verbatim."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(param.metavar or (param.name or "ARG").upper())
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        write_sections(self, ctx, formatter)

    def format_epilog(self, ctx: Context, formatter: HelpFormatter) -> None:
        examples(self.epilog, formatter)


class Group(typer.core.TyperGroup):
    """A group of commands: examples, and at the root the exit codes; completion set up on demand."""

    def format_epilog(self, ctx: Context, formatter: HelpFormatter) -> None:
        examples(self.epilog, formatter)
        if ctx.parent is None:
            write_verbatim("Exit codes", [f"{int(code):<4} {what}" for code, what in EXIT_CODES], formatter)

    def _main_shell_completion(
        self, ctx_args: MutableMapping[str, Any], prog_name: str, complete_var: str | None = None
    ) -> None:
        # Typer registers its shell classes only with --install-completion, which commctl replaces
        # with `commctl completion SHELL`; register them when a shell actually asks for completions.
        from typer._completion_classes import completion_init

        completion_init()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)
