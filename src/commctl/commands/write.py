"""The commands that write (upsert, activate, deactivate) and diff, which plans like them and sends nothing."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import plan as planner
from .. import render
from ..domain import Action
from ..errors import ApiError, ExitCode, Problems, UsageError
from ..jsonout import write_json
from ..models import Desired, Item
from ..plans import plan_doc
from ..runtime import Run, write_atomic
from ..templates import check
from .read import load_files


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
    problems = Problems(hint="check the path given to --message-file / --subject-file")
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
                text = read_text(path)
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


def apply_desired(run: Run, desired: list[Desired], command: str, diff: bool = False, create: bool = True) -> int:
    run.check_writable(run.report_path, "--report")
    client = run.client()
    with run.batch() as stop:
        # The channel list and the targets' live state do not depend on each other: read them at the
        # same time, one round trip less before anything is planned (SPEC 9). Errors are told as
        # before: the channel list's first.
        channels = planner.Prefetch(client.channels)
        try:
            live = fetch(run, [(d.group, d.target) for d in desired], stop)
        except BaseException:
            channels.raise_error()
            raise
        try:
            names = planner.resolve_channels(desired, channels)
        except ApiError as e:
            return finish(run, planner.failed_items(desired, e, stop), {}, command, diff=diff)
        run.warnings(check(desired, names), run.write.strict)
        items = planner.plan(desired, live, create=create)
        return send(run, items, names, command, stop, dry_run=diff or run.write.dry_run, diff=diff)



def send(
    run: Run,
    items: list[Item],
    names: dict[int, str],
    command: str,
    stop: threading.Event,
    dry_run: bool,
    diff: bool = False,
) -> int:
    """Apply the planned items (journaled, under a run id), then report; a fatal error is raised after the report."""
    if dry_run:
        run.check_writable(run.write.plan_out, "--plan-out")
    elif run.write.plan_out:
        raise UsageError("--plan-out needs --dry-run (or use `commctl diff --plan-out`)")
    else:
        run.start_run(command)
    fatal: Exception | None = None
    try:
        planner.apply(
            run.client(),
            items,
            concurrency=run.write.concurrency,
            force=run.write.force,
            dry_run=dry_run,
            progress=run.progress,
            stop=stop,
            journal=run.journal,
        )
    except Exception as e:  # the items already say what happened; the report says it too, then the error
        fatal = e
    return finish(run, items, names, command, diff=diff, fatal=fatal)


def fetch(run: Run, keys: list[tuple[int, int]], stop: threading.Event | None = None) -> planner.Live:
    targets = list(dict.fromkeys(keys))
    with run.progress("reading", len(targets)) as tick:
        return planner.fetch_live(run.client(), targets, run.write.concurrency, tick, stop)


def finish(
    run: Run,
    items: list[Item],
    names: dict[int, str],
    command: str,
    diff: bool = False,
    fatal: Exception | None = None,
) -> int:
    doc = render.results_doc(items, run.run_info.as_dict() if run.run_info else None)
    try:
        run.write_report(doc)
        if run.write.plan_out and fatal is None:
            write_atomic(Path(run.write.plan_out), lambda f: write_json(f, plan_doc(items, run.host, command), 2))
    except UsageError:
        if fatal is None:
            raise
    for i in items:
        if i.error:
            run.log(f"error: {i.label}: {i.error['message']}")
    if fatal is not None:
        if run.output == "table":
            run.emit(doc, lambda: render.results_table(items, names))
        raise fatal
    if run.output == "markdown":
        run.out_stream.write(render.markdown(items, f"commctl {command}"))
    elif run.output == "table" and not items:
        run.note(render.summary_line(items))  # no table of zero rows
    elif run.output == "table" and diff and all(i.action is Action.UNCHANGED for i in items):
        run.note(f"in sync: {render.summary_line(items)}")  # no table of zero differences
    else:
        run.emit(doc, lambda: (render.diff_table if diff else render.results_table)(items, names))
        if run.output == "table":
            run.note(render.summary_line(items))
    if run.stop_code is not None:
        run.log(f"error: interrupted: {render.summary_line(items)}")
        return run.stop_code
    code = planner.failure_exit(items)
    if not code and diff and any(i.action.pending for i in items):
        return ExitCode.DIFFERENCES
    return code


def upsert(run: Run, desired: list[Desired]) -> int:
    return apply_desired(run, desired, "upsert")


def diff(run: Run, files: list[str]) -> int:
    return apply_desired(run, load_files(run, files), "diff", diff=True)


def set_active(
    run: Run,
    active: bool,
    group: int | None,
    targets: list[int],
    types: list[str],
    channels: list[str],
    files: list[str],
    everything: bool = False,
) -> int:
    command = "activate" if active else "deactivate"
    if files:
        if group or targets or types or channels:
            raise UsageError("--group/--target/--type/--channel cannot be combined with -f")
        desired = [replace(d, fields={"active": active}) for d in load_files(run, files)]
        return apply_desired(run, desired, command, create=False)
    if group is None:
        raise UsageError("--group is required (or give -f FILE)")
    if not (targets or types or channels or everything):
        raise UsageError(
            f"this would {command} every communication of target group {group}",
            hint=f"narrow it with --target/--type/--channel, or pass --all to {command} the whole group",
        )
    run.check_writable(run.report_path, "--report")
    client = run.client()
    names = {c.id: c.name for c in client.channels()}
    wanted = _channel_ids(channels, names)
    target_ids = targets or planner.target_ids_of(client, group)
    with run.batch() as stop:
        live = fetch(run, [(group, t) for t in target_ids], stop)
        items = planner.plan_active(
            live,
            active,
            lambda c: (not types or c.communicationType in types) and (not wanted or c.channelId in wanted),
        )
        if not items:
            run.note("nothing matched: no live communication has the given target, type and channel")
        return send(run, items, names, command, stop, dry_run=run.write.dry_run)



def _channel_ids(channels: list[str], names: dict[int, str]) -> set[int]:
    ids = set()
    for c in channels:
        found = planner.channel_id(c, names)
        if found is None:
            raise UsageError(planner.unknown_channel(c, names))
        ids.add(found)
    return ids
