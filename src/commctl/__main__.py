"""Entry point. `commctl --version` answers before Typer is even imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        sys.stdout.write(f"commctl {__version__}\n")
        return
    from .cli import app

    try:
        app(prog_name="commctl")
    except SystemExit as e:
        # Click ends output it could not write (help, usage) with exit 1 after wrapping stdout so that
        # the final flush stays quiet; a closed pipe is not a bug, so say it as commands do.
        if e.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            from .errors import ExitCode

            raise SystemExit(ExitCode.CLOSED_PIPE) from None
        raise


if __name__ == "__main__":
    main()
