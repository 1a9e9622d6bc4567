"""Start-up stays light: the CLI module does not import the heavy libraries, --version skips Typer."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "httpcore", "pydantic", "yaml", "rich")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert loaded_after("import commctl.cli") & set(HEAVY) == set()


def test_version_does_not_even_import_typer() -> None:
    loaded = loaded_after("import sys; sys.argv = ['commctl', '--version']\nfrom commctl.__main__ import main; main()")
    assert "typer" not in loaded and "click" not in loaded


def test_version_output() -> None:
    out = subprocess.run([sys.executable, "-m", "commctl", "--version"], capture_output=True, text=True, check=True)
    from commctl import __version__

    assert out.stdout == f"commctl {__version__}\n"


def test_top_level_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "commctl", "--help"], capture_output=True, text=True, check=True)
    for name in (
        "upsert",
        "activate",
        "deactivate",
        "show",
        "validate",
        "diff",
        "export",
        "channels",
        "groups",
        "targets",
        "schema",
        "sandbox",
        "config",
    ):
        assert f"  {name} " in out.stdout, name
    assert "\x1b[" not in out.stdout
