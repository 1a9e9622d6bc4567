"""--help never drifts silently: a snapshot per command at COLUMNS=100, and what every help must show.

After an intended change: `UPDATE_GOLDEN=1 python -m pytest -q tests/test_help.py`, then review the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from commctl.cli import app

SNAPSHOTS = Path(__file__).parent / "golden" / "help"


def commands() -> Iterator[tuple[str, ...]]:
    """Every command path: (), ("upsert",), ("sandbox",), ("sandbox", "serve"), ..."""

    def walk(command: typer.core.TyperGroup | typer.core.TyperCommand, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())  # type: ignore[arg-type]


ALL = list(commands())


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"}, prog_name="commctl")
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "commctl")
def test_help_snapshot(path: tuple[str, ...]) -> None:
    text = help_text(path)
    snapshot = SNAPSHOTS / f"{'-'.join(path) or 'commctl'}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        snapshot.write_text(text, encoding="utf-8")
    assert snapshot.exists(), f"no help snapshot for {path}: UPDATE_GOLDEN=1 writes it"
    assert text == snapshot.read_text(encoding="utf-8"), f"help of {path} changed: UPDATE_GOLDEN=1 rewrites it"


def test_no_stale_snapshots() -> None:
    names = {f"{'-'.join(p) or 'commctl'}.txt" for p in ALL}
    assert {p.name for p in SNAPSHOTS.iterdir()} == names


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "commctl")
def test_every_help_has_examples_and_human_metavars(path: tuple[str, ...]) -> None:
    text = help_text(path)
    assert "\nExamples:\n  " in text
    for python_ism in ("<list", "list[", "<str>", "<int>", "[x>=", "<=x", "Value error", "TEXT...", "INTEGER"):
        assert python_ism not in text, python_ism
    assert "\x1b[" not in text  # plain help: no Rich


def test_option_groups_are_sections() -> None:
    text = help_text(("upsert",))
    titles = re.findall(r"^(\w[\w ]*):$", text, re.M)
    assert titles == ["Options", "Writing options", "Output options", "Connection options", "Examples"]
    assert text.index("--dry-run") > text.index("Writing options:") > text.index("--message-file")
    assert text.index("--host HOST") > text.index("Connection options:")
    assert "Connection options:" not in help_text(("validate",))  # offline: takes no connection options


def test_root_help_lists_exit_codes() -> None:
    text = help_text(())
    codes = re.findall(r"^  (\d+) +\S", text.split("Exit codes:\n", 1)[1], re.M)
    assert codes == ["0", "1", "2", "3", "4", "5", "6", "7", "130", "141", "143"]
    assert "--install-completion" not in text  # `commctl completion SHELL` instead


def test_validate_usage_names_its_argument() -> None:
    text = help_text(("validate",))
    assert text.startswith("Usage: commctl validate [OPTIONS] PATH...\n")
    assert "\nArguments:\n  PATH...  Files, directories or -.\n" in text
