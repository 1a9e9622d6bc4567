"""Pure functions from results to data (JSON/YAML documents), tables and Markdown; no I/O decisions here.

A table is a `Grid` of raw values, its rows made each time it is drawn, one of two ways (runtime.emit
chooses):
- `tsv`: for pipes, tab-separated, header first, one row per line, values escaped (text.field) and
  never shortened, written without Rich so that a 20,000-row table costs about what its JSON does,
  and in batches, so that a diff of 50,000 communications (250,000 rows) is never held whole;
- `rich_table`: for a terminal, fitted to its width: ids, types, channels, counts and times never wrap,
  free text shrinks with …, and the least useful text columns are hidden when even that cannot fit.
Every cell goes to Rich as a `Text`, so text from files or the API is never read as markup.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .domain import BASE_ACTIONS, Action
from .jsonout import Rows
from .models import VALUE_FIELDS, Desired, Item
from .text import markdown_code, shown
from .text import tsv as tsv_text

if TYPE_CHECKING:
    from rich.console import RenderableType

LONG = 30  # a text change longer than this (or on several lines) is shown as a unified diff
GAP = 2  # spaces between columns at a terminal
MIN_TEXT = 8  # a text column narrower than this is hidden rather than shown as a few letters
WANT = 20  # what an always-shown text column (message, error, location) gets before others are hidden
T = TypeVar("T")


@dataclass(frozen=True)
class Column:
    name: str
    text: bool = False  # free text: shrinks with … (ids, types, channels, counts, times never do)
    limit: int = 0  # widest a text column gets at a terminal (0: as wide as its longest value)
    hide: int = 0  # > 0: hidden at a narrow terminal, highest first; 0: always shown
    time: bool = False  # an API timestamp: compact local time at a terminal, as given when piped
    keep_end: bool = False  # shortened from the left (FILE:LINE:COL locations keep their line)


Row = tuple[list[str], str]  # the cells, and the style of the first one at a terminal ("" for none)


def row(*cells: Any, style: str | None = None) -> Row:
    """A table row: None shows as nothing, anything else as its str()."""
    return ["" if c is None else str(c) for c in cells], style or ""


class Remade(Generic[T]):
    """Iterable again and again: each time, `make()` makes the values anew, one at a time."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], Iterable[T]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[T]:
        return iter(self._make())


@dataclass(frozen=True)
class Grid:
    """A table as data: columns, rows of raw values, and unified diffs printed after them.

    Rows and diffs are made each time the table is drawn (`Remade`): a pipe writes them in batches, a
    terminal lists them all to fit the columns.
    """

    columns: tuple[Column, ...]
    rows: Iterable[Row]
    after: Iterable[Block] = ()


@dataclass(frozen=True)
class Block:
    """The unified diff of one long text change."""

    title: str
    lines: list[str]  # ---, +++, @@, -, +, and context lines, without line ends


# ---- drawing ----


def tsv(grid: Grid, headers: bool = True, batch: int = 2000) -> Iterator[str]:
    """The table as tab-separated lines (with their line ends), `batch` rows at a time, then any diff blocks."""
    if headers:
        yield "\t".join(c.name for c in grid.columns) + "\n"
    rows = iter(grid.rows)
    while cells := [cells for cells, _ in islice(rows, batch)]:
        yield tsv_text(cells)
    yield from _blocks_text(grid.after)


def _blocks_text(blocks: Iterable[Block]) -> Iterator[str]:
    for block in blocks:
        yield "\n"
        yield from (shown(line) + "\n" for line in block.lines)


def compact_time(value: str) -> str:
    """`2026-11-27T16:02:55.123+0000` -> `2026-11-27 16:02` in local time; anything else as given."""
    try:
        stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return value
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


def layout(columns: tuple[Column, ...], natural: list[int], width: int) -> list[int | None]:
    """Column widths that fit `width`, None for a hidden column; pure, so it can be tested alone.

    Fixed columns keep their natural width. Text columns share what is left: each gets up to MIN_TEXT,
    then the most important (lowest `hide`) grows to its natural width first. When they cannot all
    have MIN_TEXT (WANT for the always-shown ones), the column with the highest `hide` is hidden.
    """
    shown_cols = [i for i in range(len(columns))]
    while True:
        fixed = sum(natural[i] for i in shown_cols if not columns[i].text)
        texts = [i for i in shown_cols if columns[i].text]
        room = width - fixed - GAP * (len(shown_cols) - 1)
        if room >= sum(min(natural[i], MIN_TEXT if columns[i].hide else WANT) for i in texts):
            break
        droppable = [i for i in shown_cols if columns[i].hide]
        if not droppable:
            break
        shown_cols.remove(max(droppable, key=lambda i: columns[i].hide))
    widths: list[int | None] = [None] * len(columns)
    for i in shown_cols:
        widths[i] = natural[i]
    # Every text column gets its minimum, the always-shown ones WANT, then the most important grows first.
    room = max(room, 0)
    for n, i in enumerate(sorted(texts, key=lambda i: natural[i])):
        share = room // (len(texts) - n)
        widths[i] = max(min(natural[i], MIN_TEXT, share), min(natural[i], 1))
        room -= widths[i] or 0
    always = sorted((i for i in texts if not columns[i].hide), key=lambda i: min(natural[i], WANT))
    for n, i in enumerate(always):  # shared evenly up to WANT
        grow = max(min(min(natural[i], WANT) - (widths[i] or 0), room // (len(always) - n)), 0)
        widths[i] = (widths[i] or 0) + grow
        room -= grow
    for i in sorted(texts, key=lambda i: (columns[i].hide, i)):
        grow = max(min(natural[i] - (widths[i] or 0), room), 0)
        widths[i] = (widths[i] or 0) + grow
        room -= grow
    return widths


def rich_table(
    grid: Grid, width: int, boxed: bool = True, headers: bool = True
) -> tuple[RenderableType, list[str]]:
    """The Rich renderable for a terminal of `width` columns, and the names of the hidden columns."""
    from rich import box
    from rich.cells import cell_len
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    cols = grid.columns
    listed = list(grid.rows)
    rows = [[compact_time(v) if c.time else shown(v) for c, v in zip(cols, cells, strict=True)] for cells, _ in listed]
    natural = []
    for i, c in enumerate(cols):
        longest = max([cell_len(c.name), *(cell_len(r[i]) for r in rows)])
        natural.append(min(longest, max(c.limit, cell_len(c.name))) if c.text and c.limit else longest)
    widths = layout(cols, natural, width)
    table = Table(
        box=box.SIMPLE_HEAD if boxed else None,
        show_edge=False,
        pad_edge=False,
        padding=(0, GAP - 1, 0, 0) if boxed else (0, GAP // 2),  # a box adds a one-space column separator
        show_header=headers,
        header_style="bold",
    )
    visible = [i for i, w in enumerate(widths) if w is not None]
    for i in visible:
        table.add_column(cols[i].name, width=widths[i], no_wrap=True, overflow="ellipsis")
    for values, (_, style) in zip(rows, listed, strict=True):
        cells = []
        for i in visible:
            value = values[i]
            w = widths[i] or 0
            if cols[i].keep_end and cell_len(value) > w:
                value = "…" + value[-(w - 1) :] if w > 1 else "…"
            cells.append(Text(value, style=style if i == 0 else ""))
        table.add_row(*cells)
    hidden = [cols[i].name for i, w in enumerate(widths) if w is None]
    blocks = list(grid.after)
    if not blocks:
        return table, hidden
    parts: list[RenderableType] = [table]
    for block in blocks:
        parts.append(Text(""))
        for line in block.lines:
            style = {"-": "red", "+": "green", "@": "cyan"}.get(line[:1], "")
            parts.append(Text(shown(line), style="bold" if line[:3] in ("---", "+++") else style))
    return Group(*parts), hidden


# ---- documents ----


def result_row(item: Item) -> dict[str, Any]:
    """One result; `before` and `changes` make a report an undo record on its own."""
    return {
        **item.key_fields(),
        "action": item.action.value,
        "communication": item.communication,
        "before": item.live.api_dict() if item.live else None,
        "changes": item.changes,
        "error": item.error,
    }


def summary(items: Iterable[Item]) -> dict[str, int]:
    counts = Counter(i.action.value for i in items)
    out = {a.value: counts.get(a.value, 0) for a in BASE_ACTIONS}
    out.update({a: n for a, n in sorted(counts.items()) if a not in out})
    return out


def results_doc(items: list[Item], run: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = {"run": run} if run else {}
    return {**doc, "results": Rows(items, result_row), "summary": summary(items)}


def summary_line(items: list[Item]) -> str:
    return ", ".join(f"{n} {a}" for a, n in summary(items).items() if n) or "no communications matched"


def desired_doc(items: list[Desired]) -> list[dict[str, Any]]:
    return [
        {
            "targetGroupId": d.group,
            "targetId": d.target,
            "communicationType": d.type,
            **({"channel": d.channel} if isinstance(d.channel, str) else {"channelId": d.channel}),
            **d.fields,
        }
        for d in items
    ]


# ---- tables ----

STYLE = {
    Action.CREATED: "green",
    Action.UPDATED: "yellow",
    Action.FAILED: "bold red",
    Action.WOULD_CREATE: "green",
    Action.WOULD_UPDATE: "yellow",
}

SHOW_COLUMNS = (
    Column("group"),
    Column("target"),
    Column("id"),
    Column("type"),
    Column("channel"),
    Column("sender", text=True, limit=30, hide=2),
    Column("subject", text=True, limit=40, hide=3),
    Column("message", text=True, limit=40),
    Column("offset"),
    Column("active"),
    Column("updated", time=True, hide=1),
)
SHOW = tuple(c.name for c in SHOW_COLUMNS)


def _channel(channel: Any, names: dict[int, str]) -> str:
    if channel is None:
        return ""
    return f"{channel} {names[channel]}" if channel in names else str(channel)


_SHOW_FIELDS = ("targetGroupId", "targetId", "id", "communicationType", "channelId", *VALUE_FIELDS)


def _show_row(c: dict[str, Any], names: dict[int, str]) -> list[str]:
    """The `show` columns of one communication given as API fields, as cell text.

    20,000 rows: the fields are fetched in one C-level pass and the cells made inline (no call per
    cell), which keeps a piped table near the cost of the same rows as JSON (SPEC 9).
    """
    group, target, id_, ctype, channel, sender, subject, message, offset, active = map(c.get, _SHOW_FIELDS)
    updated = (c.get("attribution") or {}).get("lastUpdatedOn")
    return [
        "" if group is None else str(group),
        "" if target is None else str(target),
        "" if id_ is None else str(id_),
        "" if ctype is None else str(ctype),
        _channel(channel, names),
        "" if sender is None else str(sender),
        "" if subject is None else str(subject),
        "" if message is None else str(message),
        "" if offset is None else str(offset),
        "" if active is None else ("yes" if active else "no"),
        "" if updated is None else str(updated),
    ]


def _cells(c: dict[str, Any], names: dict[int, str], columns: Iterable[str] = SHOW) -> list[str]:
    """Some of the `show` columns of one communication given as API fields."""
    row = _show_row(c, names)
    return [row[SHOW.index(name)] for name in columns]


def comms_table(comms: list[dict[str, Any]], names: dict[int, str]) -> Grid:
    """Communications given as API fields (the same dicts `-o json` prints)."""
    return Grid(SHOW_COLUMNS, Remade(lambda: ((_show_row(c, names), "") for c in comms)))


def results_table(items: list[Item], names: dict[int, str]) -> Grid:
    """The `show` columns of each result, with the action in front and what changed (or failed) last."""
    # What changed matters more here than when it last did: the time goes first, then the message.
    later = {"updated": 5, "message": 4}
    columns = (replace(c, hide=later[c.name]) if c.name in later else c for c in SHOW_COLUMNS)
    rows = Remade(lambda: (_result(i, names) for i in items))
    return Grid((Column("action"), *columns, Column("detail", text=True, limit=60)), rows)


def _result(i: Item, names: dict[int, str]) -> Row:
    if i.error:
        detail = i.error["message"]
    elif i.action is Action.UNCHANGED:
        detail = ""
    else:
        detail = ", ".join(i.changes) if i.live else "new"
    known = {"targetGroupId": i.group, "targetId": i.target, "communicationType": i.type, "channelId": i.channel}
    live = i.live.api_dict() if i.live else {}  # a planned update still has its id and last update
    fields = {**known, **live, **(i.desired or {}), **(i.result or {})}
    return row(i.action.value, *_cells(fields, names), detail, style=STYLE.get(i.action))


DESIRED = tuple(c for c in SHOW if c not in ("id", "updated"))


def desired_table(items: list[Desired]) -> Grid:
    """What files declare, in the `show` columns the files can fill, and where each was declared."""
    columns = tuple(c for c in SHOW_COLUMNS if c.name in DESIRED)

    def declared(d: Desired) -> Row:
        known = {"targetGroupId": d.group, "targetId": d.target, "communicationType": d.type, "channelId": d.channel}
        return row(*_cells({**known, **d.fields}, {}, DESIRED), d.where.split(": ")[0])

    return Grid((*columns, Column("declared at", text=True, keep_end=True)), Remade(lambda: map(declared, items)))


def raw_table(rows: list[Any], columns: tuple[Column, ...]) -> Grid:
    """API objects (channels, groups, targets) in the given columns."""
    dicts = [r if isinstance(r, dict) else {} for r in rows]
    return Grid(columns, [row(*(r.get(c.name) for c in columns)) for r in dicts])


SETTING_COLUMNS = (Column("setting"), Column("value", text=True), Column("source", text=True))


def rows_table(columns: tuple[Column, ...], rows: Iterable[Iterable[Any]]) -> Grid:
    return Grid(columns, [row(*r) for r in rows])


HISTORY_COLUMNS = (
    Column("run"),
    Column("at", time=True),
    *(Column(n) for n in ("group", "target", "type", "channel", "action")),
    Column("changed", text=True),
)


def history_table(entries: list[dict[str, Any]]) -> Grid:
    """Journal entries: which run wrote what, and the fields it changed."""
    return Grid(HISTORY_COLUMNS, Remade(lambda: map(_entry, entries)))


def _entry(e: dict[str, Any]) -> Row:
    before, after = e.get("before") or {}, e.get("after") or {}
    changed = [f for f in VALUE_FIELDS if f in after and before.get(f) != after.get(f)]
    action = e.get("action")
    if action in ("create", "update"):  # an intent with no outcome line: the process died around its write
        action = f"{action} (no outcome)"
    return row(
        *(e.get(k) for k in ("run", "at", "targetGroupId", "targetId", "communicationType", "channelId")),
        action,
        "new" if not before and after else ", ".join(changed),
    )


# ---- diff ----


def _is_long(before: Any, after: Any) -> bool:
    return (
        isinstance(before, str)
        and isinstance(after, str)
        and (len(before) > LONG or len(after) > LONG or "\n" in before + after)
    )


def text_diff(before: str, after: str, title: str) -> Block:
    """A unified diff, line by line (a missing final line break shows as a removed empty line)."""
    lines = list(difflib.unified_diff(before.split("\n"), after.split("\n"), n=2, lineterm=""))[2:]
    return Block(title, [f"--- live: {title}", f"+++ desired: {title}", *lines])


def diff_table(items: list[Item], names: dict[int, str]) -> Grid:
    """A row per field that would change (all five of a new communication); long text changes below, as diffs."""
    key = ("action", "group", "target", "type", "channel", "field")
    columns = (*(Column(n) for n in key), Column("live", text=True, limit=40), Column("desired", text=True, limit=40))
    return Grid(columns, Remade(lambda: _diff_rows(items, names)), Remade(lambda: _diff_blocks(items, names)))


def _diff_rows(items: list[Item], names: dict[int, str]) -> Iterator[Row]:
    for i in items:
        head = [i.action.value, i.group, i.target, i.type, _channel(i.channel, names)]
        style = STYLE.get(i.action)
        if i.error:
            yield row(*head, "", "", i.error["message"], style=style)
        elif i.action is Action.WOULD_CREATE:
            d = i.desired or {}
            for n, f in enumerate(VALUE_FIELDS):
                yield row(*(head if n == 0 else [""] * 5), f, "", repr(d.get(f)), style=style if n == 0 else None)
        elif i.action is Action.WOULD_UPDATE:
            for n, (f, change) in enumerate(i.changes.items()):
                before, after = change["from"], change["to"]
                shown_values = ["(below)", "(below)"] if _is_long(before, after) else [repr(before), repr(after)]
                yield row(*(head if n == 0 else [""] * 5), f, *shown_values, style=style if n == 0 else None)


def _diff_blocks(items: list[Item], names: dict[int, str]) -> Iterator[Block]:
    """The unified diff of each long text change that `_diff_rows` shows as (below), in the same order."""
    for i in items:
        if i.action is Action.WOULD_UPDATE and not i.error:
            for f, change in i.changes.items():
                if _is_long(change["from"], change["to"]):
                    title = f"group {i.group} target {i.target} {i.type} channel {_channel(i.channel, names)} {f}"
                    yield text_diff(change["from"], change["to"], title)


# ---- Markdown (pull-request comments, job summaries) ----


def markdown(items: list[Item], title: str) -> str:
    counts = summary(items)
    lines = [f"### {title}", "", " · ".join(f"**{n}** {a}" for a, n in counts.items() if n) or "nothing to do", ""]
    changed = [i for i in items if i.action is not Action.UNCHANGED]
    if not changed:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    lines += ["| action | group | target | type | channel | fields |", "|---|---|---|---|---|---|"]
    blocks: list[Block] = []
    for i in changed:
        if i.error:
            detail = markdown_code(i.error["message"], 80)
        elif i.live is None:
            detail = "new: " + markdown_code((i.desired or {}).get("messageTemplate", ""), 50)
        else:
            parts = []
            for f, c in i.changes.items():
                parts.append(f"`{f}`: {markdown_code(c['from'], 30) or '—'} → {markdown_code(c['to'], 30) or '—'}")
                if _is_long(c["from"], c["to"]):
                    blocks.append(text_diff(c["from"], c["to"], f"group {i.group} target {i.target} {i.type} {f}"))
            detail = "; ".join(parts)
        lines.append(f"| {i.action.value} | {i.group} | {i.target} | {i.type or ''} | {i.channel or ''} | {detail} |")
    for block in blocks:
        body = [shown(line) for line in block.lines]
        fence = "`" * max([3, *(len(run) + 1 for line in body for run in re.findall("`+", line))])
        lines += ["", f"{fence}diff", *body, fence]
    return "\n".join(lines) + "\n"

