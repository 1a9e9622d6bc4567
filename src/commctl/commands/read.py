"""The commands that only read: show, validate, export, discovery (channels, groups, targets), schema.

Each command imports what it uses when it runs: `validate` never loads the HTTP client, `show` never
loads the file loader, and JSON output never loads Rich (start-up is a feature: SPEC section 9).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import render
from ..errors import ApiError, UsageError
from ..runtime import Run

if TYPE_CHECKING:
    from ..models import Communication, Desired


def load_files(run: Run, paths: list[str]) -> list[Desired]:
    if "-" in paths and run.conn.reads_stdin:
        raise UsageError("standard input cannot carry both a file (-f -) and a secret (--*-stdin)")
    from ..loader import load  # YAML and the input models load only when there are files

    return load(paths)


def show_files(run: Run, files: list[str]) -> int:
    desired = load_files(run, files)
    run.emit(render.desired_doc(desired), lambda: render.desired_table(desired))
    return 0


def _channel_names(channels: Any) -> dict[int, str]:
    try:
        return {c.id: c.name for c in channels.channels()}
    except ApiError:
        return {}


def _live_comms(run: Run, group: int, targets: list[int]) -> list[Communication]:
    from .. import plan as planner

    client = run.client()
    target_ids = targets or planner.target_ids_of(client, group)
    keys = [(group, t) for t in dict.fromkeys(target_ids)]
    with run.progress("reading", len(keys)) as tick:
        live = planner.fetch_live(client, keys, run.write.concurrency, tick)
    comms: list[Communication] = []
    for result in live.values():
        if isinstance(result, ApiError):
            raise result
        comms += result or []
    return comms


def show_live(run: Run, group: int, targets: list[int]) -> int:
    from ..plan import Prefetch

    # A table names the channels: read the list while the targets are read, not after (SPEC 9).
    channels = Prefetch(run.client().channels) if run.output == "table" else None
    comms = _live_comms(run, group, targets)
    names = _channel_names(channels) if channels else {}
    data = [c.api_dict() for c in comms]
    run.emit(data, lambda: render.comms_table(data, names))
    if run.output == "table" and not comms:
        run.note(f"no communications in target group {group}")
    return 0


def validate(run: Run, paths: list[str]) -> int:
    from ..loader import load
    from ..templates import check

    desired = load(paths)
    warnings = check(desired)
    run.warnings(warnings, run.write.strict)
    files = sorted({d.where.split(":")[0] for d in desired})
    doc = {"valid": True, "files": files, "communications": len(desired), "warnings": warnings}
    if run.output in ("json", "yaml"):
        run.emit(doc)
    else:
        s = "" if len(desired) == 1 else "s"
        run.out_stream.write(
            f"valid: {len(desired)} communication{s} in {len(files)} file(s), {len(warnings)} warning(s)\n"
        )
    return 0


def export(run: Run, group: int, targets: list[int], out: Path | None) -> int:
    from ..export import export_doc, export_yaml

    doc = export_doc(group, _live_comms(run, group, targets))
    if not doc["targets"]:
        run.note(f"warning: target group {group} has no communications to export")
    if run.output in ("json", "yaml") and out is None:
        run.emit(doc)
        return 0
    text = export_yaml(doc)
    if out is None:
        run.out_stream.write(text)
        return 0
    path = out / f"group-{group}.yaml"
    try:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write {path.name}: {e.strerror or e}") from None
    run.note(f"wrote {path}")
    return 0


NAME, DESCRIPTION = render.Column("name", text=True, limit=40), render.Column("description", text=True, hide=1)
DISCOVERY_COLUMNS = {
    "channels": (render.Column("id"), render.Column("name")),
    "groups": (render.Column("id"), NAME, render.Column("active"), DESCRIPTION),
    "targets": (render.Column("id"), NAME, render.Column("targetType"), render.Column("active"), DESCRIPTION),
}


def discover(run: Run, what: str, group: int | None = None) -> int:
    client = run.client()
    if what == "channels":
        rows = client.channels_raw()
    elif what == "groups":
        rows = client.groups()
    else:
        assert group is not None
        rows = client.targets(group)
    run.emit(rows, lambda: render.raw_table(rows, DISCOVERY_COLUMNS[what]))
    return 0


def schema(run: Run) -> int:
    from ..models import json_schema

    run.out_stream.write(json.dumps(json_schema(), indent=2) + "\n")
    return 0
