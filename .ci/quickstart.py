"""Print the commctl commands of the README Quickstart's first line, one per line.

That line creates a venv, installs the project and runs commctl; CI has installed the wheel
already, so only the commctl commands are printed, for .ci/run to run against that wheel.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def quickstart_commands(readme: str) -> list[str]:
    match = re.search(r"^## Quickstart\n.*?^```sh\n(.*?)^```", readme, re.S | re.M)
    if not match:
        raise SystemExit("README.md: no ```sh block under ## Quickstart")
    first = match.group(1).splitlines()[0]
    commands = [part.strip() for part in first.split("&&") if part.strip().startswith("commctl ")]
    if not commands:
        raise SystemExit(f"README.md: the Quickstart's first line runs no commctl command: {first}")
    return commands


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    print("\n".join(quickstart_commands((root / "README.md").read_text(encoding="utf-8"))))
