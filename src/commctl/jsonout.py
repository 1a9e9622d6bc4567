"""JSON text for output: safe to print, and written a piece at a time.

The text is `json.dumps(data, ensure_ascii=False, indent=indent)` made safe for any terminal
(text.json_safe), but written in pieces: a mapping member by member and a `Rows` element by element,
so that a document of 50,000 results never exists whole in memory, as rows or as text. The pieces
joined are byte for byte what `json.dumps` writes (tests/test_memory.py holds this).
Standard library only (it is imported on every error path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar

from .text import json_safe

T = TypeVar("T")


class Rows(Generic[T]):
    """A list whose elements are made only as they are written: `row(item)` for each item, each time."""

    __slots__ = ("_items", "_row")

    def __init__(self, items: Sequence[T], row: Callable[[T], Any]) -> None:
        self._items = items
        self._row = row

    def __iter__(self) -> Iterator[Any]:
        return map(self._row, self._items)

    def __len__(self) -> int:
        return len(self._items)


def _listed(value: object) -> list[Any]:
    """json's fallback for what it cannot encode: a `Rows` met inside a value encoded whole."""
    if isinstance(value, Rows):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_chunks(data: Any, indent: int | None = None) -> Iterator[str]:
    """The JSON text of `data` in pieces (see the module's docstring): lone surrogates, DEL, C1 and bidi
    controls stay `\\uXXXX` escapes (legal JSON, the exact same values)."""
    encode = json.JSONEncoder(ensure_ascii=False, indent=indent, default=_listed).encode
    item_sep = ", " if indent is None else ","

    def newline(level: int) -> str:
        return "" if indent is None else "\n" + " " * (indent * level)

    def whole(value: Any, level: int) -> str:
        text = encode(value)
        return text.replace("\n", newline(level)) if indent is not None and level else text

    def chunks(value: Any, level: int) -> Iterator[str]:
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            inner = newline(level + 1)
            for n, (key, member) in enumerate(value.items()):
                yield ("{" if n == 0 else item_sep) + inner + encode(key) + ": "
                yield from chunks(member, level + 1)
            yield newline(level) + "}"
        elif isinstance(value, Rows):
            inner, first = newline(level + 1), True
            for element in value:
                yield ("[" if first else item_sep) + inner + whole(element, level + 1)
                first = False
            yield "[]" if first else newline(level) + "]"
        else:
            yield whole(value, level)

    for chunk in chunks(data, 0):
        yield json_safe(chunk)


def write_json(stream: IO[str], data: Any, indent: int | None = None) -> None:
    """The JSON text of `data` and a line end, written to `stream` piece by piece."""
    write_lines(stream, json_chunks(data, indent))
    stream.write("\n")


def write_lines(stream: IO[str], pieces: Iterable[str], size: int = 1 << 16) -> None:
    """Write pieces in batches of about `size` characters: few calls, and never the whole text at once."""
    batch: list[str] = []
    held = 0
    for piece in pieces:
        batch.append(piece)
        held += len(piece)
        if held >= size:
            stream.write("".join(batch))
            batch.clear()
            held = 0
    stream.write("".join(batch))
