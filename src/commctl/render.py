"""Pure functions from results to data (JSON/YAML), Rich tables and Markdown; no I/O decisions here."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .domain import BASE_ACTIONS, Action
from .models import VALUE_FIELDS, Communication, Desired, Item

if TYPE_CHECKING:  # Rich loads only when a table is drawn: JSON, YAML and Markdown output never need it
    from rich.table import Table
    from rich.text import Text

LONG = 60


def shorten(text: Any, width: int = 40) -> str:
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "⏎").replace("\n", "⏎")
    return s if len(s) <= width else s[: width - 1] + "…"


def result_row(item: Item) -> dict[str, Any]:
    """One result; `before` and `changes` make a report an undo record on its own."""
    return {
        "targetGroupId": item.group,
        "targetId": item.target,
        "communicationType": item.type,
        "channelId": item.channel,
        "action": item.action.value,
        "communication": item.result,
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
    return {**doc, "results": [result_row(i) for i in items], "summary": summary(items)}


def _table(*columns: str, plain: bool) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=None if plain else box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


STYLE = {
    Action.CREATED: "green",
    Action.UPDATED: "yellow",
    Action.FAILED: "bold red",
    Action.WOULD_CREATE: "green",
    Action.WOULD_UPDATE: "yellow",
}


def rows_table(columns: Iterable[str], rows: Iterable[Iterable[str]], plain: bool) -> Table:
    table = _table(*columns, plain=plain)
    for row in rows:
        table.add_row(*row)
    return table


def _channel(channel: Any, names: dict[int, str]) -> str:
    if channel is None:
        return ""
    return f"{channel} {names[channel]}" if channel in names else str(channel)


SHOW_COLUMNS = (
    "group",
    "target",
    "id",
    "type",
    "channel",
    "sender",
    "subject",
    "message",
    "offset days",
    "active",
    "last updated",
)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _cells(c: dict[str, Any], names: dict[int, str], columns: tuple[str, ...] = SHOW_COLUMNS) -> list[str]:
    """The `show` columns (or some of them) of one communication given as API fields."""
    active = c.get("active")
    cells = {
        "group": _text(c.get("targetGroupId")),
        "target": _text(c.get("targetId")),
        "id": _text(c.get("id")),
        "type": _text(c.get("communicationType")),
        "channel": _channel(c.get("channelId"), names),
        "sender": shorten(c.get("sender"), 30),
        "subject": shorten(c.get("subjectTemplate")),
        "message": shorten(c.get("messageTemplate")),
        "offset days": _text(c.get("offsetDays")),
        "active": "" if active is None else ("yes" if active else "no"),
        "last updated": _text((c.get("attribution") or {}).get("lastUpdatedOn")),
    }
    return [cells[name] for name in columns]


def results_table(items: list[Item], names: dict[int, str], plain: bool) -> Table:
    """The `show` columns of each result, with the action in front and what changed (or failed) last."""
    from rich.text import Text

    table = _table("action", *SHOW_COLUMNS, "changed / error", plain=plain)
    for i in items:
        if i.error:
            detail = i.error["message"]
        elif i.action is Action.UNCHANGED:
            detail = ""
        else:
            detail = ", ".join(i.changes) if i.live else "new"
        known = {"targetGroupId": i.group, "targetId": i.target, "communicationType": i.type, "channelId": i.channel}
        fields = {**known, **(i.desired or {}), **(i.result or {})}
        table.add_row(Text(i.action.value, style=STYLE.get(i.action, "")), *_cells(fields, names), detail)
    return table


def summary_line(items: list[Item]) -> str:
    return ", ".join(f"{n} {a}" for a, n in summary(items).items() if n) or "no communications matched"


def comms_table(comms: list[Communication], names: dict[int, str], plain: bool) -> Table:
    table = _table(*SHOW_COLUMNS, plain=plain)
    for c in comms:
        table.add_row(*_cells(c.api_dict(), names))
    return table


DESIRED_COLUMNS = tuple(c for c in SHOW_COLUMNS if c not in ("id", "last updated"))


def desired_table(items: list[Desired], plain: bool) -> Table:
    """What files declare, in the `show` columns the files can fill, and where each was declared."""
    table = _table(*DESIRED_COLUMNS, "declared at", plain=plain)
    for d in items:
        known = {"targetGroupId": d.group, "targetId": d.target, "communicationType": d.type, "channelId": d.channel}
        table.add_row(*_cells({**known, **d.fields}, {}, DESIRED_COLUMNS), d.where.split(": ")[0])
    return table


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


def raw_table(rows: list[Any], columns: tuple[str, ...], plain: bool) -> Table:
    table = _table(*columns, plain=plain)
    for row in rows:
        r = row if isinstance(row, dict) else {}
        table.add_row(*(shorten(r.get(c, ""), 50) for c in columns))
    return table


def history_table(entries: list[dict[str, Any]], plain: bool) -> Table:
    """Journal entries: which run wrote what, and the fields it changed."""
    table = _table("run", "at", "group", "target", "type", "channel", "action", "changed", plain=plain)
    for e in entries:
        before, after = e.get("before") or {}, e.get("after") or {}
        changed = [f for f in VALUE_FIELDS if f in after and before.get(f) != after.get(f)]
        table.add_row(
            _text(e.get("run")),
            _text(e.get("at")),
            _text(e.get("targetGroupId")),
            _text(e.get("targetId")),
            _text(e.get("communicationType")),
            _text(e.get("channelId")),
            _text(e.get("action")),
            "new" if not before and after else ", ".join(changed),
        )
    return table


def text_diff(before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), "live", "desired", n=2)
    ).rstrip("\n")


def diff_table(items: list[Item], names: dict[int, str], plain: bool) -> Table:
    from rich.text import Text

    table = _table("action", "group", "target", "type", "channel", "field", "live", "desired", plain=plain)
    for i in items:
        head: list[Text | str] = [
            Text(i.action.value, style=STYLE.get(i.action, "")),
            str(i.group),
            str(i.target),
            i.type or "",
            _channel(i.channel, names),
        ]
        if i.error:
            table.add_row(*head, "", "", i.error["message"])
        elif i.action is Action.WOULD_CREATE:
            d = i.desired or {}
            for n, f in enumerate(VALUE_FIELDS):
                table.add_row(*(head if n == 0 else [""] * 5), f, "", repr(d.get(f)))
        elif i.action is Action.WOULD_UPDATE:
            for n, (f, change) in enumerate(i.changes.items()):
                before, after = change["from"], change["to"]
                if (
                    isinstance(before, str)
                    and isinstance(after, str)
                    and (len(before) > LONG or len(after) > LONG or "\n" in before + after)
                ):
                    row = [f, text_diff(before, after), ""]
                else:
                    row = [f, repr(before), repr(after)]
                table.add_row(*(head if n == 0 else [""] * 5), *row)
    return table


def _md(text: Any, width: int = 50) -> str:
    return shorten(text, width).replace("|", "\\|")


def markdown(items: list[Item], title: str) -> str:
    counts = summary(items)
    lines = [f"### {title}", "", " · ".join(f"**{n}** {a}" for a, n in counts.items() if n) or "nothing to do", ""]
    changed = [i for i in items if i.action is not Action.UNCHANGED]
    if not changed:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    lines += ["| action | group | target | type | channel | fields |", "|---|---|---|---|---|---|"]
    for i in changed:
        if i.error:
            detail = _md(i.error["message"], 80)
        elif i.live is None:
            detail = "new: " + _md((i.desired or {}).get("messageTemplate", ""))
        else:
            detail = "; ".join(f"`{f}`: {_md(c['from'], 30)} → {_md(c['to'], 30)}" for f, c in i.changes.items())
        lines.append(f"| {i.action.value} | {i.group} | {i.target} | {i.type or ''} | {i.channel or ''} | {detail} |")
    return "\n".join(lines) + "\n"
