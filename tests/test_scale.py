"""Scale (SPEC 9): the work per communication does not grow with the number of communications, in any file shape.

Work is counted as lines of commctl code executed (a line tracer), not wall time: the count is the same
on a loaded machine, and a quadratic step (a lookup that rescans every mark, per document) shows up as
lines per communication growing tenfold when the input grows tenfold. `benchmarks/scale.py` measures
the time and memory for the same files.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest
import yaml

from .conftest import Cli

T = TypeVar("T")

GROUP = 4100
TYPES = ("START", "FINISH", "CHANGE", "REMINDER")
SHAPES = ("document", "documents", "json-list")
PER_FILE = 5_000  # communications per file: 50k fit in ten files under the 8 MiB limit


def target_doc(target: int) -> dict[str, Any]:
    return {
        "targetId": target,
        "communications": [
            {
                "communicationType": kind,
                "channelId": 2,
                "subjectTemplate": f"Target {target}: {kind.lower()}",
                "messageTemplate": f"Hello {{{{first_name}}}}, your {kind.lower()} news for target {target}.",
                "offsetDays": 3,
            }
            for kind in TYPES
        ],
    }


def write_files(directory: Path, shape: str, total: int) -> None:
    """`total` communications (four per target, targets 1..total/4) in files of `shape`.

    Shapes: one document per file; many one-target documents per file (`---`); a JSON list of them.
    """
    targets = list(range(1, total // 4 + 1))
    for n, start in enumerate(range(0, len(targets), PER_FILE // 4)):
        chunk = targets[start : start + PER_FILE // 4]
        docs = [{"targetGroupId": GROUP, "targets": [target_doc(t)]} for t in chunk]
        if shape == "document":
            doc = {
                "targetGroupId": GROUP,
                "defaults": {"sender": "x@brand.example"},
                "targets": [target_doc(t) for t in chunk],
            }
            text, suffix = yaml.safe_dump(doc, sort_keys=False, width=200), "yaml"
        elif shape == "documents":
            text, suffix = yaml.safe_dump_all(docs, sort_keys=False, width=200), "yaml"
        else:
            text, suffix = json.dumps(docs, indent=1), "json"
        (directory / f"f{n:03}.{suffix}").write_text(text, encoding="utf-8")


def lines_run(action: Callable[[], T]) -> tuple[int, T]:
    """Lines of commctl code that `action` executes, in this thread and in threads it starts."""
    count = 0

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += 1
        return local

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return local if "commctl" in frame.f_code.co_filename else None

    # Put back whatever tracer was there (coverage's, under --cov), or every later test goes unmeasured.
    before, before_threads = sys.gettrace(), threading.gettrace()
    threading.settrace(calls)
    sys.settrace(calls)
    try:
        result = action()
    finally:
        sys.settrace(before)
        threading.settrace(before_threads)  # type: ignore[arg-type, unused-ignore]  # typeshed differs by version
    return count, result


SMALL, LARGE = 60, 360


@pytest.fixture
def targets(cli: Cli, tmp_path: Path) -> None:
    """A sandbox state with group GROUP holding the targets the files name (in-process, `--host sandbox`)."""
    seed = {
        "channels": [{"id": 2, "name": "EMAIL"}],
        "targetGroups": [{"id": GROUP, "name": "scale", "targets": [{"id": t, "name": f"t{t}"} for t in range(1, LARGE // 4 + 1)]}],
        "credentials": {"basic": [{"username": "sandbox", "password": "sandbox"}]},
    }  # fmt: skip
    (tmp_path / "seed.yaml").write_text(yaml.safe_dump(seed))
    assert cli("sandbox", "reset", "--seed", str(tmp_path / "seed.yaml")).code == 0


# Every file shape through the loader (validate); the live commands, which share the loader, with the
# shape that has the most documents to load.
CASES = [
    *(pytest.param(("validate",), shape, id=f"validate-{shape}") for shape in SHAPES),
    pytest.param(("diff", "--host", "sandbox", "-o", "json", "-f"), "documents", id="diff-documents"),
    pytest.param(("upsert", "--host", "sandbox", "--dry-run", "-o", "json", "-f"), "documents", id="upsert-dry-run-documents"),
]


@pytest.mark.parametrize(("command", "shape"), CASES)
def test_work_per_communication_is_flat(
    cli: Cli, tmp_path: Path, targets: None, shape: str, command: tuple[str, ...]
) -> None:
    per_communication = []
    for size in (SMALL, LARGE):
        directory = tmp_path / f"{shape}-{size}"
        directory.mkdir()
        write_files(directory, shape, size)
        lines, outcome = lines_run(partial(cli, *command, str(directory)))
        assert outcome.code in (0, 7), outcome
        per_communication.append(lines / size)
    small, large = per_communication
    assert large < 1.15 * small, f"{shape}: {small:.0f} lines per communication at {SMALL}, {large:.0f} at {LARGE}"
