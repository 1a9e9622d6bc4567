"""Entry point. `commctl --version` answers before Typer is even imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        sys.stdout.write(f"commctl {__version__}\n")
        return
    from .cli import app

    app(prog_name="commctl")


if __name__ == "__main__":
    main()
