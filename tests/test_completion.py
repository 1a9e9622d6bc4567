"""`commctl completion bash|zsh|fish`, and completions driven through the shells' own protocol."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commctl.cli import app

from .conftest import ROOT, Cli, write


def complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    """What bash would offer for the last word of `words` (a trailing space: a new, empty word)."""
    parts = words.split(" ")
    protocol = {"_COMMCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    result = CliRunner().invoke(app, [], env={**protocol, **(env or {})}, prog_name="commctl")
    assert result.exit_code == 0, result.output
    return result.stdout.split()


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", ["complete -o default -F _commctl_completion commctl", "_COMMCTL_COMPLETE=complete_bash"]),
        ("zsh", ["#compdef commctl", "compdef _commctl_completion commctl", "_COMMCTL_COMPLETE=complete_zsh"]),
        ("fish", ["complete --command commctl", "_COMMCTL_COMPLETE=complete_fish"]),
    ],
)
def test_completion_scripts(cli: Cli, shell: str, expected: list[str]) -> None:
    out = cli("completion", shell)
    assert out.code == 0, out
    for part in expected:
        assert part in out.stdout
    assert out.stderr == ""


def test_bash_script_is_valid_bash(cli: Cli, tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    script = write(tmp_path / "c.bash", cli("completion", "bash").stdout)
    out = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    registered = subprocess.run(
        [bash, "-c", f"source {script} && complete -p commctl"], capture_output=True, text=True, check=True
    )
    assert registered.stdout.strip() == "complete -o default -F _commctl_completion commctl"


def test_unknown_shell_is_a_usage_error(cli: Cli) -> None:
    out = cli("completion", "tcsh")
    assert out.code == 2, out
    assert "'tcsh' is not one of bash, zsh, fish" in out.stderr


def test_commands_and_options_complete() -> None:
    assert complete("commctl sh") == ["show"]
    assert complete("commctl sandbox s") == ["serve"]
    assert set(complete("commctl show --")) >= {"--group", "--output", "--no-headers", "--host", "--profile"}
    assert "--dry-run" not in complete("commctl show --")  # show takes no write options


def test_values_complete() -> None:
    assert complete("commctl deactivate --type R") == ["REMINDER"]
    assert complete("commctl deactivate --type re") == ["reminder"]  # the user's case: shells match prefixes
    assert complete("commctl upsert --type ") == ["START", "FINISH", "CHANGE", "REMINDER"]
    assert complete("commctl diff -o ") == ["table", "json", "yaml", "markdown"]
    assert complete("commctl show -o ") == ["table", "json", "yaml"]  # no Markdown for show
    assert complete("commctl show --host a") == ["apac", "apac2", "asia"]
    assert complete("commctl completion ") == ["bash", "zsh", "fish"]


def test_profiles_complete_from_the_config_file(isolated: Path, tmp_path: Path) -> None:
    write(
        isolated / "config" / "commctl" / "config.yaml",
        "profiles:\n  eu-prod: {host: eu}\n  eu-staging: {host: sandbox}\n  us: {host: us}\n",
    )
    assert complete("commctl show --profile eu") == ["eu-prod", "eu-staging"]
    other = write(tmp_path / "other.yaml", "profiles:\n  lab: {host: sandbox}\n")
    assert complete(f"commctl show --config {other} --profile ") == ["lab"]
    assert complete("commctl show --profile ", env={"COMMCTL_CONFIG": str(tmp_path / "missing.yaml")}) == []


def test_completion_through_the_installed_entry_point(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "_COMMCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": "commctl upsert --ty",
        "COMP_CWORD": "2",
    }
    out = subprocess.run([sys.executable, "-m", "commctl"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["--type"]
