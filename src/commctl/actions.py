"""What each command does, in terms of the modules below it: load, plan, apply, render, exit code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import plan as planner
from . import render
from .errors import ApiError, ExitCode, InputError, UsageError
from .loader import Problems, load, read_text
from .models import COMM_TYPES, Desired, DocumentIn, Item
from .runtime import Run
from .templates import check


def _stdin_taken(run: Run, paths: list[str]) -> None:
    if "-" in paths and (run.opts.get("password_stdin") or run.opts.get("client_secret_stdin")):
        raise UsageError("standard input cannot carry both a file (-f -) and a secret (--*-stdin)")


def load_files(run: Run, paths: list[str]) -> list[Desired]:
    _stdin_taken(run, paths)
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


def _warn(run: Run, warnings: list[str], strict: bool) -> None:
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
    opts = run.opts
    concurrency = int(opts.get("concurrency") or 8)
    client = run.client()
    try:
        names = planner.resolve_channels(desired, client)
    except ApiError as e:
        return _finish(run, planner.failed_items(desired, e), {}, title, diff)
    _warn(run, check(desired, names), bool(opts.get("strict")))
    live = _fetch(run, client, [(d.group, d.target) for d in desired], concurrency)
    items = planner.plan(desired, live, create=create)
    planner.apply(
        client,
        items,
        concurrency=concurrency,
        force=bool(opts.get("force")),
        dry_run=diff or bool(opts.get("dry_run")),
        progress=run.progress,
    )
    return _finish(run, items, names, title, diff)


def _fetch(run: Run, client: Any, keys: list[tuple[int, int]], concurrency: int) -> dict[tuple[int, int], Any]:
    targets = list(dict.fromkeys(keys))
    with run.progress("reading", len(targets)) as tick:
        return planner.fetch_live(client, targets, concurrency, tick)


def _finish(run: Run, items: list[Item], names: dict[int, str], title: str, diff: bool = False) -> int:
    doc = render.results_doc(items, with_changes=diff)
    run.write_report(run.report_path, doc)
    for i in items:
        if i.error:
            run.log(f"error: group {i.group} target {i.target} {i.type or ''}/{i.channel or ''}: {i.error['message']}")
    if run.output == "markdown":
        run.out_stream.write(render.markdown(items, title))
    elif run.output == "table" and diff and all(i.action == "unchanged" for i in items):
        run.note(f"in sync: {render.summary_line(items)}")  # no table of zero differences
    else:
        run.emit(doc, lambda: (render.diff_table if diff else render.results_table)(items, names, run.plain))
        if run.output == "table":
            run.note(render.summary_line(items))
    code = planner.failure_exit(items)
    if not code and diff and any(i.action.startswith("would-") for i in items):
        return ExitCode.DIFFERENCES
    return code


def set_active(
    run: Run,
    active: bool,
    group: int | None,
    targets: list[int] | None,
    types: list[str],
    channels: list[str] | None,
    files: list[str] | None,
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
    opts = run.opts
    concurrency = int(opts.get("concurrency") or 8)
    client = run.client()
    names = {c.id: c.name for c in client.channels()}
    wanted = _channel_ids(channels or [], names)
    target_ids = targets or [t["id"] for t in client.targets(group) if isinstance(t, dict) and "id" in t]
    live = _fetch(run, client, [(group, t) for t in target_ids], concurrency)
    items = planner.plan_active(
        live,
        active,
        lambda c: (not types or c.communicationType in types) and (not wanted or c.channelId in wanted),
    )
    if not items:
        run.note("nothing matched: no live communication has the given target, type and channel")
    planner.apply(
        client,
        items,
        concurrency=concurrency,
        force=bool(opts.get("force")),
        dry_run=bool(opts.get("dry_run")),
        progress=run.progress,
    )
    return _finish(run, items, names, title)


def _channel_ids(channels: list[str], names: dict[int, str]) -> set[int]:
    by_name = {n.upper(): i for i, n in names.items()}
    ids = set()
    for c in channels:
        if c.isdigit():
            ids.add(int(c))
        elif c.upper() in by_name:
            ids.add(by_name[c.upper()])
        else:
            raise UsageError(f"unknown channel {c!r} (this org has: {', '.join(names.values())})")
    return ids


def show_files(run: Run, files: list[str]) -> int:
    desired = load_files(run, files)
    run.emit(render.desired_doc(desired), lambda: render.desired_table(desired, run.plain))
    return 0


def _channel_names(client: Any) -> dict[int, str]:
    try:
        return {c.id: c.name for c in client.channels()}
    except ApiError:
        return {}


def _live_comms(run: Run, group: int, targets: list[int]) -> list[Any]:
    client = run.client()
    target_ids = targets or [t["id"] for t in client.targets(group) if isinstance(t, dict) and "id" in t]
    live = _fetch(run, client, [(group, t) for t in target_ids], 8)
    comms = []
    for result in live.values():
        if isinstance(result, ApiError):
            raise result
        comms += result
    return comms


def show_live(run: Run, group: int, targets: list[int]) -> int:
    comms = _live_comms(run, group, targets)
    names = _channel_names(run.client()) if run.output == "table" else {}
    run.emit([c.api_dict() for c in comms], lambda: render.comms_table(comms, names, run.plain))
    if run.output == "table" and not comms:
        run.note(f"no communications in target group {group}")
    return 0


def validate(run: Run, paths: list[str], strict: bool) -> int:
    desired = load(paths)
    warnings = check(desired)
    _warn(run, warnings, strict)
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


TYPE_ORDER = {t: n for n, t in enumerate(COMM_TYPES)}
EXPORT_FIELDS = (
    "communicationType",
    "channelId",
    "sender",
    "subjectTemplate",
    "messageTemplate",
    "offsetDays",
    "active",
)


def export_doc(group: int, comms: list[Any]) -> dict[str, Any]:
    by_target: dict[int, list[Any]] = {}
    for c in comms:
        by_target.setdefault(int(c.targetId), []).append(c)
    return {
        "targetGroupId": group,
        "targets": [
            {
                "targetId": t,
                "communications": [
                    {f: getattr(c, f) for f in EXPORT_FIELDS}
                    for c in sorted(
                        cs, key=lambda c: (TYPE_ORDER.get(c.communicationType, 99), c.communicationType, c.channelId)
                    )
                ],
            }
            for t, cs in sorted(by_target.items())
        ],
    }


def export_yaml(doc: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    Dumper.add_representer(str, text)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000)


def export(run: Run, group: int, targets: list[int], out: Path | None) -> int:
    comms = [c for c in _live_comms(run, group, targets) if c.targetId is not None]
    doc = export_doc(group, comms)
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


DISCOVERY_COLUMNS = {
    "channels": ("id", "name"),
    "groups": ("id", "name", "active", "description"),
    "targets": ("id", "name", "targetType", "active", "description"),
}


def discover(run: Run, what: str, group: int | None = None) -> int:
    client = run.client()
    rows = (
        client.channels_raw() if what == "channels" else client.groups() if what == "groups" else client.targets(group)
    )
    run.emit(rows, lambda: render.raw_table(rows, DISCOVERY_COLUMNS[what], run.plain))
    return 0


def json_schema() -> dict[str, Any]:
    body = DocumentIn.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}


def schema(run: Run) -> int:
    run.out_stream.write(json.dumps(json_schema(), indent=2) + "\n")
    return 0


def config_show(run: Run) -> int:
    rows = run.settings.shown()
    data = {name: {"value": value or None, "source": source or None} for name, value, source in rows}

    def table() -> Any:
        t = render._table("setting", "value", "source", plain=run.plain)
        for row in rows:
            t.add_row(*row)
        return t

    run.emit(data, table)
    return 0


def sandbox_serve(
    run: Run,
    host: str,
    port: int,
    db: Path | None,
    seed: Path | None,
    latency_ms: int,
    fail_rate: float,
    rate_limit: int,
    rate_window: float,
    drop_rate: float,
    verbose: bool,
) -> int:
    from .sandbox.app import Faults, SandboxApp, default_db, open_store
    from .sandbox.server import serve

    path = db or default_db()
    store = open_store(path, seed)
    app = SandboxApp(store, Faults(latency_ms, fail_rate, rate_limit, rate_window, drop_rate))

    def announce(url: str) -> None:
        run.log(f"commctl sandbox listening on {url} (state: {path}); credentials: sandbox / sandbox")
        run.err_stream.flush()

    try:
        serve(app, host, port, verbose, announce)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        run.log("stopped")
    return 0


def sandbox_reset(run: Run, db: Path | None, seed: Path | None) -> int:
    from .sandbox.app import default_db, open_store
    from .sandbox.seed import load_seed

    path = db or default_db()
    store = open_store(path)
    store.reset()
    store.load_seed(load_seed(seed))
    run.note(f"sandbox state reset: {path}")
    return 0
