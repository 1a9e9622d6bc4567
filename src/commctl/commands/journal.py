"""The journal's commands: `history` (what was written), `restore` (put it back) and `apply` (a saved plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import journal, render
from ..errors import ConfigError
from ..journal import Undo
from ..plan import plan_guarded
from ..plans import load_plan
from ..runtime import Run
from .write import fetch, send


def history(
    run: Run, groups: list[int], targets: list[int], types: list[str], run_id: str | None, limit: int | None
) -> int:
    directory = journal.journal_dir()
    files = [journal.find_run(directory, run_id)] if run_id else journal.journal_files(directory)
    entries = [
        e
        for path in files
        for e in journal.latest_per_key(journal.read_lines(path))
        if e.get("action") != "skipped"  # journaled, then never sent (the run was stopped): nothing written
        and (not groups or e.get("targetGroupId") in groups)
        and (not targets or e.get("targetId") in targets)
        and (not types or e.get("communicationType") in types)
    ]
    entries.sort(key=lambda e: str(e.get("at", "")), reverse=True)  # newest first, across runs
    entries = entries[:limit] if limit is not None else entries
    run.emit(entries, lambda: render.history_table(entries))
    if run.output == "table" and not entries:
        run.note(f"no writes recorded in {directory}")
    return 0


def restore(
    run: Run, run_id: str | None, source: str | None, groups: list[int], targets: list[int], types: list[str]
) -> int:
    """Put back what a run replaced; what it created is deactivated; what moved since is a conflict."""
    path = Path(source) if source else journal.find_run(journal.journal_dir(), run_id or "")
    origin, host, undos = journal.undo_records(path)
    if host and host != run.host:
        raise ConfigError(f"run {origin} wrote to {host}, not to {run.host}", hint=f"pass --host {host}")
    undos = [
        u
        for u in undos
        if (not groups or u.key[0] in groups)
        and (not targets or u.key[1] in targets)
        and (not types or u.key[2] in types)
    ]
    if not undos:
        run.note(f"nothing to restore from {path}")
    run.check_writable(run.report_path, "--report")
    with run.batch() as stop:
        live = fetch(run, [u.key[:2] for u in undos], stop)
        items = [
            plan_guarded(
                u.key,
                live,
                expected=u.after,
                goal=_undone(u),
                force=run.write.force,
                conflict=f"changed since run {origin}; left alone (--force overwrites it)",
                gone_ok=u.before is None,
            )
            for u in undos
        ]
        return send(run, items, {}, "restore", stop, dry_run=run.write.dry_run)


def _undone(u: Undo) -> dict[str, Any]:
    """The value fields to put back: the old value, or for a communication the run created, the same switched off."""
    if u.before is None:
        return {**u.after, "active": False}
    return journal.values(u.before) or {}


def apply(run: Run, plan_path: str) -> int:
    """Send exactly a saved plan's changes, refusing items whose live value is no longer the plan's `before`."""
    plan = load_plan(plan_path)
    if plan.host != run.host:
        raise ConfigError(
            f"the plan {plan_path} was made for {plan.host}, not {run.host}", hint=f"pass --host {plan.host}"
        )
    run.check_writable(run.report_path, "--report")
    with run.batch() as stop:
        live = fetch(run, plan.targets, stop)
        items = [
            plan_guarded(
                (c.targetGroupId, c.targetId, c.communicationType, c.channelId),
                live,
                expected=c.before,
                goal=c.after,
                conflict=f"changed since the plan was made ({plan.createdAt}); not sent",
            )
            for c in plan.items
        ]
        return send(run, items, {}, "apply", stop, dry_run=run.write.dry_run)
