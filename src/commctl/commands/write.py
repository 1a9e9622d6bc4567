"""The commands that write (upsert, activate, deactivate) and diff, which plans like them and sends nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import plan as planner
from .. import render
from ..domain import Action
from ..errors import ApiError, ExitCode, InputError, Problems, UsageError
from ..models import Desired, Item
from ..runtime import Run
from ..templates import check


def load_files(run: Run, paths: list[str]) -> list[Desired]:
    if "-" in paths and run.conn.reads_stdin:
        raise UsageError("standard input cannot carry both a file (-f -) and a secret (--*-stdin)")
    from ..loader import load  # YAML and the input models load only when there are files

    return load(paths)


def desired_from_flags(
    group: int,
    target: int,
    ctype: str,
    channel: str,
    *,
    sender: str | None,
    subject: str | None,
    subject_file: Path | None,
    message: str | None,
    message_file: Path | None,
    offset_days: int | None,
    active: bool | None,
) -> Desired:
    problems = Problems()
    fields: dict[str, Any] = {}
    for name, text, path, flag in (
        ("subjectTemplate", subject, subject_file, "--subject"),
        ("messageTemplate", message, message_file, "--message"),
    ):
        if text is not None and path is not None:
            raise UsageError(f"give {flag} or {flag}-file, not both")
        if path is not None:
            from ..loader import read_text

            try:
                text = read_text(path, str(path))
            except ValueError as e:
                problems.add(str(path), f"{flag}-file: {e}")
        if text is not None:
            fields[name] = text
    problems.raise_if_any()
    for name, value in (("sender", sender), ("offsetDays", offset_days), ("active", active)):
        if value is not None:
            fields[name] = value
    for flag, value in (("--channel", channel), ("--sender", sender), ("--subject", subject), ("--message", message)):
        if value is not None and not _is_utf8(value):
            raise UsageError(f"{flag}: the value is not valid UTF-8 text")
    chan: int | str = int(channel) if channel.isdigit() else channel
    return Desired(
        group, target, ctype, chan, fields, where="flags", channel_name=None if isinstance(chan, int) else chan
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes on the command line arrive as lone surrogates
        return False
    return True


def warn(run: Run, warnings: list[str], strict: bool) -> None:
    if strict and warnings:
        raise InputError(warnings, hint="--strict turns template warnings into errors")
    for w in warnings:
        run.note(f"warning: {w}")


def _check_report(run: Run) -> None:
    """Fail before anything is sent when the report could not be written afterwards."""
    if run.report_path:
        try:
            with open(run.report_path, "a", encoding="utf-8"):
                pass
        except OSError as e:
            raise UsageError(f"--report {run.report_path}: {e.strerror or e}") from None


def apply_desired(run: Run, desired: list[Desired], title: str, diff: bool = False, create: bool = True) -> int:
    _check_report(run)
    client = run.client()
    try:
        names = planner.resolve_channels(desired, client)
    except ApiError as e:
        return _finish(run, planner.failed_items(desired, e), {}, title, diff)
    warn(run, check(desired, names), run.write.strict)
    live = _fetch(run, [(d.group, d.target) for d in desired])
    items = planner.plan(desired, live, create=create)
    return _send(run, items, names, title, dry_run=diff or run.write.dry_run, diff=diff)


def _send(run: Run, items: list[Item], names: dict[int, str], title: str, dry_run: bool, diff: bool = False) -> int:
    planner.apply(
        run.client(),
        items,
        concurrency=run.write.concurrency,
        force=run.write.force,
        dry_run=dry_run,
        progress=run.progress,
    )
    return _finish(run, items, names, title, diff)


def _fetch(run: Run, keys: list[tuple[int, int]]) -> dict[tuple[int, int], Any]:
    targets = list(dict.fromkeys(keys))
    with run.progress("reading", len(targets)) as tick:
        return planner.fetch_live(run.client(), targets, run.write.concurrency, tick)


def _finish(run: Run, items: list[Item], names: dict[int, str], title: str, diff: bool = False) -> int:
    doc = render.results_doc(items, with_changes=diff)
    run.write_report(run.report_path, doc)
    for i in items:
        if i.error:
            run.log(f"error: group {i.group} target {i.target} {i.type or ''}/{i.channel or ''}: {i.error['message']}")
    if run.output == "markdown":
        run.out_stream.write(render.markdown(items, title))
    elif run.output == "table" and diff and all(i.action is Action.UNCHANGED for i in items):
        run.note(f"in sync: {render.summary_line(items)}")  # no table of zero differences
    else:
        run.emit(doc, lambda: (render.diff_table if diff else render.results_table)(items, names, run.plain))
        if run.output == "table":
            run.note(render.summary_line(items))
    code = planner.failure_exit(items)
    if not code and diff and any(i.action.pending for i in items):
        return ExitCode.DIFFERENCES
    return code


def upsert(run: Run, desired: list[Desired]) -> int:
    return apply_desired(run, desired, title="commctl upsert")


def diff(run: Run, files: list[str]) -> int:
    return apply_desired(run, load_files(run, files), title="commctl diff", diff=True)


def set_active(
    run: Run,
    active: bool,
    group: int | None,
    targets: list[int],
    types: list[str],
    channels: list[str],
    files: list[str],
) -> int:
    title = f"commctl {'activate' if active else 'deactivate'}"
    if files:
        if group or targets or types or channels:
            raise UsageError("--group/--target/--type/--channel cannot be combined with -f")
        desired = [replace(d, fields={"active": active}) for d in load_files(run, files)]
        return apply_desired(run, desired, title, create=False)
    if group is None:
        raise UsageError("--group is required (or give -f FILE)")
    _check_report(run)
    client = run.client()
    names = {c.id: c.name for c in client.channels()}
    wanted = _channel_ids(channels, names)
    target_ids = targets or target_ids_of(client, group)
    live = _fetch(run, [(group, t) for t in target_ids])
    items = planner.plan_active(
        live,
        active,
        lambda c: (not types or c.communicationType in types) and (not wanted or c.channelId in wanted),
    )
    if not items:
        run.note("nothing matched: no live communication has the given target, type and channel")
    return _send(run, items, names, title, dry_run=run.write.dry_run)


def target_ids_of(client: Any, group: int) -> list[int]:
    """Every target of a group (one GET), for commands given a group without --target."""
    return [t["id"] for t in client.targets(group) if isinstance(t, dict) and "id" in t]


def _channel_ids(channels: list[str], names: dict[int, str]) -> set[int]:
    ids = set()
    for c in channels:
        found = planner.channel_id(c, names)
        if found is None:
            raise UsageError(planner.unknown_channel(c, names))
        ids.add(found)
    return ids
