"""Desired + live -> per-item actions (create / update / unchanged), then apply them target by target."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .domain import DEFAULT_CONCURRENCY, Action
from .errors import ApiError, CommctlError, ExitCode, Problems, StoppedError, UnavailableError
from .models import CREATE_DEFAULTS, VALUE_FIELDS, Channel, Communication, Desired, Item

if TYPE_CHECKING:  # the client (httpx) is imported by whoever makes one, not by planning
    from .client import Client

Key = tuple[int, int]
# The request may have been processed with its answer lost: no answer at all, or a gateway's timeout.
ANSWER_LOST = frozenset({None, 502, 504})
T = TypeVar("T")
R = TypeVar("R")


Tick = Callable[[], None]
Progress = Callable[[str, int], AbstractContextManager[Tick]]


def _no_tick() -> None:
    pass


@contextmanager
def no_progress(description: str, total: int) -> Iterator[Tick]:
    yield _no_tick


def run_all(
    fn: Callable[[T], R],
    args: Iterable[T],
    concurrency: int,
    tick: Tick = _no_tick,
    stop: threading.Event | None = None,
) -> list[R | None]:
    """Map fn over args with `concurrency` threads, keeping order; `tick` after each one is done.

    Once `stop` is set (a signal), nothing new starts: what is in flight finishes and every item not
    started gives None. fn handles the errors of one item itself; anything it raises (an auth failure,
    a bug) stops the batch the same way, and is raised here once the calls in flight have finished.
    Each thread takes the next argument when it is free: no future is made per argument (an executor's
    map makes them all at once, 20 MiB for the 12,500 targets of 50,000 communications).
    """
    stop = stop or threading.Event()
    fatal: list[BaseException] = []
    args = list(args)
    results: list[R | None] = [None] * len(args)
    todo = iter(range(len(args)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                n = next(todo, None)
            if n is None:
                return
            if stop.is_set() or fatal:
                tick()
                continue
            try:
                results[n] = fn(args[n])
            except BaseException as e:
                fatal.append(e)
            finally:
                tick()

    threads = [threading.Thread(target=work) for _ in range(min(concurrency, len(args)))]
    if len(threads) <= 1:
        work()
    else:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if fatal:
        raise fatal[0]
    return results


class Prefetch:
    """`channels()` answered by a call started in a thread at construction (what resolve_channels reads)."""

    def __init__(self, call: Callable[[], list[Channel]]) -> None:
        self._result: list[Channel] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], list[Channel]]) -> None:
        try:
            self._result = call()
        except BaseException as e:  # handed to the caller's thread
            self._error = e

    def raise_error(self) -> None:
        """Raise the call's error, if it failed with one that is not an ApiError (which callers recover from)."""
        self._thread.join()
        if self._error is not None and not isinstance(self._error, ApiError):
            raise self._error

    def channels(self) -> list[Channel]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def target_ids_of(client: Any, group: int) -> list[int]:
    """Every target of a group (one GET), for commands given a group without --target."""
    return [t["id"] for t in client.targets(group) if isinstance(t, dict) and "id" in t]


class ChannelList(Protocol):
    def channels(self) -> list[Channel]: ...


def resolve_channels(items: list[Desired], client: ChannelList) -> dict[int, str]:
    """Turn channel names into ids and return id -> name (one GET of the channel list).

    Without names to resolve, an unreachable channel list only costs the names in the output.
    """
    try:
        names = {c.id: c.name for c in client.channels()}
    except ApiError:
        if any(isinstance(d.channel, str) for d in items):
            raise
        return {}
    problems = Problems(hint="`commctl channels` lists this org's channels (names are checked online only)")
    for d in items:
        if isinstance(d.channel, str):
            found = channel_id(d.channel, names)
            if found is None:
                problems.add(d.where, unknown_channel(d.channel, names))
            else:
                d.channel = found
    problems.raise_if_any()
    return names


def channel_id(value: int | str, names: dict[int, str]) -> int | None:
    """A channel given by id or by name (any case); None when the org has no channel of that name."""
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    return next((i for i, n in names.items() if n.upper() == value.upper()), None)


def unknown_channel(value: str, names: dict[int, str]) -> str:
    import difflib

    by_upper = {n.upper(): n for n in names.values()}
    close = difflib.get_close_matches(value.upper(), by_upper, n=1)
    tip = f"did you mean {by_upper[close[0]]!r}? " if close else ""
    return f"unknown channel {value!r} ({tip}this org has: {', '.join(names.values())})"


def failed_items(desired: list[Desired], error: ApiError, stop: threading.Event | None = None) -> list[Item]:
    """Every item failed by one error that ended the run before any target was tried (`skipped`
    when the error only says that a signal stopped the run)."""
    items = [
        Item(d.group, d.target, d.type, d.channel if isinstance(d.channel, int) else None, action=Action.SKIPPED)
        for d in desired
    ]
    return items if stopped(error, stop) else [fail(i, error) for i in items]


Live = dict[Key, list[Communication] | ApiError | None]  # None: not read (the run was stopped)


def stopped(error: ApiError, stop: threading.Event | None) -> bool:
    """Whether `error` only says that the run was stopped (a signal cut the request or its retries short)."""
    return isinstance(error, StoppedError) or (
        isinstance(error, UnavailableError) and stop is not None and stop.is_set()
    )


def fetch_live(
    client: Client, keys: Iterable[Key], concurrency: int, tick: Tick = _no_tick, stop: threading.Event | None = None
) -> Live:
    """GET the communications of each target; a failing target is recorded, not raised.

    A read that fails once the run is stopped (a signal) is not retried: that target counts as not
    read (None: its items are `skipped`, their writes never attempted), not as failed.
    """

    def one(key: Key) -> list[Communication] | ApiError | None:
        try:
            return client.communications(*key)
        except UnavailableError as e:
            return None if stopped(e, stop) else e
        except ApiError as e:
            return e

    keys = list(dict.fromkeys(keys))
    return dict(zip(keys, run_all(one, keys, concurrency, tick, stop), strict=True))


def _merge(item: Item, live: Communication, fields: dict[str, Any]) -> Item:
    item.live = live
    item.desired = {**live.values(), **fields}
    item.action = Action.UPDATE if item.changes else Action.UNCHANGED
    return item


def plan(desired: list[Desired], live: Live, create: bool = True) -> list[Item]:
    """Merge each desired item over its live counterpart (SPEC section 2).

    With `create` false, an item with no live counterpart fails instead of being created.
    """
    problems = Problems()
    items: list[Item] = []
    seen: dict[tuple[int, int, str, int], Desired] = {}
    for d in desired:
        assert isinstance(d.channel, int)
        key = (d.group, d.target, d.type, d.channel)
        if key in seen:
            problems.add(d.where, f"duplicate communication {d.label}; first declared at {seen[key].where}")
            continue
        seen[key] = d
        item = Item(d.group, d.target, d.type, d.channel, action=Action.CREATE)
        items.append(item)
        current = live[(d.group, d.target)]
        if current is None:
            item.action = Action.SKIPPED
            continue
        if isinstance(current, ApiError):
            fail(item, current)
            continue
        match = next((c for c in current if c.key == item.key), None)
        if match is not None:
            _merge(item, match, d.fields)
        elif not create:
            fail(item, ApiError(f"{d.where}: {d.label} does not exist on the server"))
        else:
            if "messageTemplate" not in d.fields:
                problems.add(
                    d.where,
                    f"{d.label} does not exist yet: messageTemplate (or messageTemplateFile) is required to create it",
                )
            item.desired = {**CREATE_DEFAULTS, **d.fields}
    problems.raise_if_any()
    return items


def plan_active(live: Live, active: bool, match: Callable[[Communication], bool]) -> list[Item]:
    """Items that set `active` on the live communications that match (targets not read are left out)."""
    items = []
    for (group, target), current in live.items():
        if current is None:
            continue
        if isinstance(current, ApiError):
            item = Item(group, target, None, None, action=Action.UPDATE)
            items.append(fail(item, current))
            continue
        for c in sorted(current, key=lambda c: c.key):
            if match(c):
                item = Item(group, target, c.communicationType, c.channelId, action=Action.UPDATE)
                items.append(_merge(item, c, {"active": active}))
    return items


def plan_guarded(
    key: tuple[int, int, str, int],
    live: Live,
    expected: dict[str, Any] | None,
    goal: dict[str, Any],
    force: bool = False,
    conflict: str = "",
    gone_ok: bool = False,
) -> Item:
    """An item that sets `goal` where the live value is still `expected` (None: absent), for apply and restore.

    Already at `goal` (or absent, with `gone_ok`): unchanged. Moved elsewhere since: a conflict, not
    sent (unless `force`).
    """
    group, target, ctype, channel = key
    item = Item(group, target, ctype, channel, action=Action.CREATE)
    current = live.get((group, target))
    if current is None:
        item.action = Action.SKIPPED
        return item
    if isinstance(current, ApiError):
        return fail(item, current)
    match = next((c for c in current if c.key == item.key), None)
    now = match.values() if match else None
    if now == goal or (match is None and gone_ok):
        if match:
            _merge(item, match, goal)
        item.action = Action.UNCHANGED
        return item
    if now != expected and not force:
        item.action, item.live = Action.CONFLICT, match
        item.result = match.api_dict() if match else None  # what is live now
        moved = [f for f in VALUE_FIELDS if (now or {}).get(f) != (expected or {}).get(f)]
        item.failure = ApiError(conflict + (f" ({', '.join(moved)} changed)" if now and expected else ""))
        return item
    if match is not None:
        return _merge(item, match, goal)
    item.desired = dict(goal)
    return item


def fail(item: Item, error: BaseException) -> Item:
    item.action = Action.FAILED
    item.failure = error
    return item


def applied(item: Item, result: dict[str, Any] | None) -> None:
    """A write that landed: created or updated, with what the API holds now."""
    item.action = Action.CREATED if item.live is None else Action.UPDATED
    item.result = result


def unknown(item: Item, error: BaseException) -> Item:
    """A write that may or may not have landed: reported with what was meant, and weighed by restore."""
    item.action, item.failure, item.result = Action.UNKNOWN, error, item.wire()
    return item


class Recorder(Protocol):
    """Where a batch records each target's intent before sending it, and its outcome after (the journal)."""

    def intend(self, items: Iterable[tuple[Item, Mapping[str, Any]]]) -> None: ...

    def outcome(self, items: Iterable[Item]) -> None: ...


# Targets whose intents share one disk sync: 2,000 targets cost 125 syncs instead of 2,000, and a hard
# kill (kill -9, a double Ctrl-C) leaves at most this many intents, plus the writes in flight, with no outcome.
INTENT_WINDOW = 16


class _IntentsAhead:
    """Journals the intents of the next `window` targets at once, so one disk sync covers many writes.

    Every target's intent is on disk before its write is sent (SPEC 8.1), but a bulk run no longer
    waits for a sync in front of each write (the bulk benchmark's largest cost on a real disk). Targets
    journaled and then never sent (a signal, a fatal error) get a `skipped` outcome line; after a hard
    kill, the intents of at most one window (and of the writes in flight) have no outcome.
    """

    def __init__(self, journal: Recorder, batches: list[list[Item]], window: int = INTENT_WINDOW) -> None:
        self.journal, self.batches, self.window = journal, batches, window
        self.written = 0  # batches[:written] have their intents on disk; raised only after the sync
        self._lock = threading.Lock()

    def before_send(self, index: int) -> None:
        if index < self.written:
            return
        with self._lock:  # a worker that needs a later window waits for this one's sync, then writes its own
            while index >= self.written:
                end = min(len(self.batches), self.written + self.window)
                self.journal.intend((i, i.wire()) for batch in self.batches[self.written : end] for i in batch)
                self.written = end

    def never_sent(self, unsent: Iterable[tuple[int, list[Item]]]) -> None:
        """The `skipped` outcome of each item whose intent is on disk but whose write was never sent."""
        self.journal.outcome(i for n, items in unsent if n < self.written for i in items)


def apply(
    client: Client,
    items: list[Item],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    journal: Recorder | None = None,
) -> list[Item]:
    """Send one upsert per target that has something to send; every target is attempted.

    With a journal, a target's intent is on disk before its request is sent. Once `stop` is set, or
    a fatal error (an auth failure, a bug) has stopped the batch, targets not yet sent end `skipped`;
    the fatal error is raised after every item has its outcome.
    """
    by_target: dict[Key, list[Item]] = {}
    for item in items:
        if not item.action.planned:  # failed, skipped or in conflict before anything was sent
            continue
        if item.action is Action.UNCHANGED and not force:
            item.result = item.live.api_dict() if item.live else None
            continue
        if dry_run:  # what it would send is its `communication`
            item.action = item.action.would
            continue
        by_target.setdefault((item.group, item.target), []).append(item)

    batches = list(by_target.values())
    ahead = _IntentsAhead(journal, batches) if journal else None

    def send(numbered: tuple[int, list[Item]]) -> None:
        index, batch = numbered
        if ahead:
            ahead.before_send(index)
        try:
            sent = client.upsert(batch[0].group, batch[0].target, [i.wire() for i in batch])
            returned: dict[tuple[str | None, int | None], Communication] = {c.key: c for c in sent}
            for i in batch:
                reply = returned.get(i.key)
                applied(i, reply.api_dict() if reply else i.wire())
        except StoppedError:
            return  # never sent (it waited for a slot of the rate when the signal came): the items end skipped
        except UnavailableError as e:
            if e.status in ANSWER_LOST:
                _read_back(client, batch, e)
            else:  # a definite refusal (429, 503...): nothing was written
                for i in batch:
                    fail(i, e)
        except ApiError as e:
            if e.status is None or 200 <= e.status < 300:  # an answer not understood: the write may have landed
                _read_back(client, batch, e)
            else:
                for i in batch:
                    fail(i, e)
        except CommctlError as e:  # refused outright (401, 403): nothing was written, and the run ends here
            for i in batch:
                fail(i, e)
            raise
        except Exception as e:  # a bug, perhaps once the write was sent: unknown (restore weighs it), not skipped
            for i in batch:
                if i.action.planned:
                    unknown(i, e)
            raise
        finally:
            if journal:  # an outcome for each item that has one; the rest end `skipped` below
                journal.outcome(i for i in batch if not i.action.planned)

    try:
        with (progress or no_progress)("sending", len(batches)) as tick:
            run_all(send, enumerate(batches), concurrency, tick, stop)
    finally:
        unsent = [(n, [i for i in batch if i.action.planned]) for n, batch in enumerate(batches)]
        for _, never in unsent:
            for i in never:
                i.action = Action.SKIPPED
        if ahead:
            ahead.never_sent(unsent)
    return items


def _read_back(client: Client, batch: list[Item], error: ApiError) -> None:
    """The answer to a write was lost or not understood: read the target again; what is live as intended was applied.

    If the read fails, or breaks (a bug: raised again), the writes stay `unknown`, never `skipped`:
    they may have landed, and restore passes skipped ones by.
    """
    try:
        live: dict[tuple[str | None, int | None], Communication] = {
            c.key: c for c in client.communications(batch[0].group, batch[0].target)
        }
        for i in batch:
            now = live.get(i.key)
            meant = i.wire()
            if now is not None and all(now.values()[f] == meant[f] for f in VALUE_FIELDS):
                applied(i, now.api_dict())
            else:
                fail(i, error)
    except Exception as e:
        for i in batch:
            if i.action.planned:
                unknown(i, error)
        if not isinstance(e, CommctlError):
            raise


def failure_exit(items: list[Item]) -> ExitCode:
    """OK when nothing failed; UNAVAILABLE when every failure was the API being unavailable; else API_REJECTED."""
    failures = [i.failure for i in items if i.action in (Action.FAILED, Action.CONFLICT, Action.UNKNOWN)]
    if not failures:
        return ExitCode.OK
    return ExitCode.UNAVAILABLE if all(isinstance(e, UnavailableError) for e in failures) else ExitCode.API_REJECTED
