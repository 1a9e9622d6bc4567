"""The journal of writes: one JSON-lines file per run, each line flushed to disk before its write is sent.

A line per communication says what the run meant to do (`create`/`update`, with `before` and
`after`) before the request goes out, and another what came of it (`created`, `updated`, `failed`,
`unknown`). Restore reads either a journal or a `--report` file: both carry `before` and `after`.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InputError, UsageError
from .models import VALUE_FIELDS, Item

INTENTS = ("create", "update")
KEY_FIELDS = ("targetGroupId", "targetId", "communicationType", "channelId")
Key = tuple[int, int, str, int]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """Sortable and unique enough: the UTC second, then four random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def journal_dir(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("COMMCTL_JOURNAL_DIR"):
        return Path(env["COMMCTL_JOURNAL_DIR"])
    from .config import state_dir

    return state_dir(env) / "journal"


@dataclass(frozen=True)
class RunInfo:
    id: str
    startedAt: str
    host: str
    command: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "startedAt": self.startedAt, "host": self.host, "command": self.command}


def values(communication: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The fields a user sets, from a full communication (the part a restore puts back)."""
    if communication is None:
        return None
    return {f: communication.get(f) for f in VALUE_FIELDS}


class Journal:
    """Appends lines to `<dir>/<run id>.jsonl` (mode 0600); `intend` returns once its lines are on disk.

    Only what a write is about to do must be on disk before it is sent (SPEC 8.1): `intend` syncs
    (plan.apply journals the intents of several targets at a time, so one flush covers them; workers
    that sync at the same time share one fdatasync). The outcome lines are written at once (a crash of
    commctl keeps them: they are in the kernel) and reach the disk with the next sync or at `close`.
    """

    def __init__(self, run: RunInfo, directory: Path) -> None:
        self.run = run
        self.path = directory / f"{run.id}.jsonl"
        try:  # fail before anything is sent, not at the first write
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            writable = os.access(directory, os.W_OK)
        except OSError as e:
            writable, why = False, e.strerror or str(e)
        else:
            why = "Permission denied"
        if not writable:
            raise UsageError(
                f"cannot write the journal in {directory}: {why}",
                hint="set COMMCTL_JOURNAL_DIR to a writable directory",
            )
        self._fd: int | None = None  # opened at the first line: a run that sends nothing leaves no file
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0

    def close(self) -> None:
        if self._fd is not None:
            if self._synced < self._written:
                os.fdatasync(self._fd)
            os.close(self._fd)

    def _line(self, item: Item, action: str, after: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "run": self.run.id,
            "at": now_iso(),
            "host": self.run.host,
            **item.key_fields(),
            "action": action,
            "before": item.live.api_dict() if item.live else None,
            "after": dict(after) if after is not None else None,
        }

    def intend(self, items: Iterable[tuple[Item, Mapping[str, Any]]]) -> None:
        """Before a target's write is sent: what each communication is about to become."""
        self._append([self._line(i, "create" if i.live is None else "update", after) for i, after in items])

    def outcome(self, items: Iterable[Item]) -> None:
        """After the answer (or its loss): what became of each communication."""
        self._append([self._line(i, i.action.value, i.result) for i in items], sync=False)

    def _append(self, lines: list[dict[str, Any]], sync: bool = True) -> None:
        if not lines:
            return
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self._fd, data)  # O_APPEND: one write, one atomic append
            self._written += 1
            mine = self._written
        if not sync:
            return
        with self._sync_lock:
            if self._synced >= mine:
                return  # another worker's flush covered this line
            with self._lock:
                upto = self._written
            assert self._fd is not None
            os.fdatasync(self._fd)
            self._synced = upto


# ---- reading ----


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The entries of a journal file; a torn last line (a crash mid-write) is skipped."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


def journal_files(directory: Path) -> list[Path]:
    """Newest first (run ids sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.jsonl"), reverse=True)


def find_run(directory: Path, run_id: str) -> Path:
    matches = [p for p in journal_files(directory) if p.stem == run_id] or [
        p for p in journal_files(directory) if p.stem.startswith(run_id)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no run {run_id!r} in the journal {directory}", hint="see `commctl history`")
    raise UsageError(f"run id {run_id!r} is ambiguous: {', '.join(p.stem for p in matches[:5])}")


def latest_per_key(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (run, communication): the outcome when it was recorded, else the intent."""
    last: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in entries:
        last[(e.get("run"), *(e.get(k) for k in KEY_FIELDS))] = e
    return list(last.values())


@dataclass
class Undo:
    """One communication a restore may put back: its key, what the run replaced and what it wrote."""

    key: Key
    before: dict[str, Any] | None  # full communication as it was, None when the run created it
    after: dict[str, Any]  # the value fields the run wrote


def undo_records(path: Path) -> tuple[str | None, str | None, list[Undo]]:
    """(run id, host, undo records) from a journal file or a `--report` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        return _from_report(path, doc)
    return _from_journal(path)


def _key(where: str, entry: Mapping[str, Any]) -> Key:
    group, target, ctype, channel = (entry.get(k) for k in KEY_FIELDS)
    if not (isinstance(group, int) and isinstance(target, int) and isinstance(ctype, str) and isinstance(channel, int)):
        raise InputError([f"{where}: not a communication key: {dict((k, entry.get(k)) for k in KEY_FIELDS)}"])
    return (group, target, ctype, channel)


def _check_values(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or any(f not in value for f in VALUE_FIELDS):
        raise InputError([f"{where}: expected a communication with {', '.join(VALUE_FIELDS)}"])
    return value


def _from_report(path: Path, doc: dict[str, Any]) -> tuple[str | None, str | None, list[Undo]]:
    run: dict[str, Any] = doc["run"] if isinstance(doc.get("run"), dict) else {}
    undos = []
    for n, row in enumerate(doc["results"]):
        where = f"{path}: results[{n}]"
        if not isinstance(row, dict) or row.get("action") not in ("created", "updated", "unknown"):
            continue
        before, after = row.get("before"), row.get("communication")  # for `unknown`: what was meant
        undos.append(
            Undo(
                _key(where, row),
                None if before is None else _check_values(where, before),
                values(_check_values(where, after)) or {},
            )
        )
    return run.get("id"), run.get("host"), undos


def _from_journal(path: Path) -> tuple[str | None, str | None, list[Undo]]:
    run_id = host = None
    by_key: dict[Key, Undo] = {}
    unwritten: set[Key] = set()
    for n, entry in enumerate(read_lines(path)):
        where = f"{path}:{n + 1}"
        run_id, host = entry.get("run", run_id), entry.get("host", host)
        key = _key(where, entry)
        if entry.get("action") in INTENTS:
            before = entry.get("before")
            after = values(_check_values(where, entry.get("after"))) or {}
            first = by_key.get(key)
            by_key[key] = Undo(key, first.before if first else before, after)
        elif entry.get("action") in ("failed", "skipped"):
            unwritten.add(key)  # refused by the API, or never sent: nothing to undo
    if run_id is None:
        raise InputError([f"{path}: neither a commctl journal nor a --report file"])
    return run_id, host, [u for k, u in by_key.items() if k not in unwritten]
