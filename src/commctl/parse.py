"""Text -> plain data, with the place of every value and key.

YAML follows the 1.2 core schema (`010` is 10, `yes` and `1:30` are text), built straight from the
parser's events: no node tree, no recursion, duplicate keys refused, aliases limited by the size they
expand to and nesting by depth. JSON is parsed by the json module; one linear pass over its tokens
then finds where each value sits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

MAX_DEPTH = 64  # an honest file nests 6 deep
MAX_EXPANDED = 32 * 1024 * 1024  # characters (plus one per value) a source may expand to through aliases
MAX_DIGITS = 4000  # below Python's int() limit, far above any id
Path_ = tuple[str | int, ...]

_COL_BITS = 24
_COL_MASK = (1 << _COL_BITS) - 1


def pack(line: int, column: int) -> int:
    """A place as one int (0-based line and column): a source of 8 MiB has fewer columns than 2**24."""
    return (line << _COL_BITS) | column


def shown(pos: int) -> str:
    """`LINE:COL`, 1-based."""
    return f"{(pos >> _COL_BITS) + 1}:{(pos & _COL_MASK) + 1}"


class ParseError(Exception):
    """A syntax or limit problem at one place of the text."""

    def __init__(self, pos: int | None, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


@dataclass(frozen=True)
class Marks:
    """Where each value (and each mapping key) of one document sits; `prefix` selects an item of a top-level list."""

    name: str
    values: dict[Path_, int]
    keys: dict[Path_, int]
    prefix: Path_ = ()

    def item(self, index: int) -> Marks:
        return Marks(self.name, self.values, self.keys, (*self.prefix, index))

    def pos(self, path: Path_, key: bool = False) -> int | None:
        """The place of `path`, or of the nearest enclosing value that has one."""
        table = self.keys if key else self.values
        full = (*self.prefix, *path)
        stop = len(self.prefix)
        while full not in table and len(full) > stop:
            full = full[:-1]
        pos = table.get(full)
        return self.values.get(self.prefix) if pos is None else pos

    def at(self, path: Path_, key: bool = False) -> str:
        """`FILE:LINE:COL` of `path` (see `pos`)."""
        pos = self.pos(path, key)
        return self.name if pos is None else f"{self.name}:{shown(pos)}"


# ---- YAML 1.2 core schema ----

_STR = "tag:yaml.org,2002:str"
_INT_RE = re.compile(r"[-+]?[0-9]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    ".inf": math.inf,
    ".Inf": math.inf,
    ".INF": math.inf,
    "+.inf": math.inf,
    "+.Inf": math.inf,
    "+.INF": math.inf,
    "-.inf": -math.inf,
    "-.Inf": -math.inf,
    "-.INF": -math.inf,
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
}
_MAYBE_NOT_TEXT = frozenset("0123456789+-.~nNtTfF")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _integer(text: str, base: int) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError(f"a number of more than {MAX_DIGITS} digits")
    return int(text, base)


def resolve_plain(text: str) -> Any:
    """The value of an untagged plain scalar under the YAML 1.2 core schema."""
    if text and text[0] not in _MAYBE_NOT_TEXT:
        return text
    if text in _SPECIAL:
        return _SPECIAL[text]
    if _INT_RE.fullmatch(text):
        return _integer(text, 10)
    if text[:2] == "0o" and len(text) > 2 and all(c in "01234567" for c in text[2:]):
        return _integer(text[2:], 8)
    if text[:2] == "0x" and len(text) > 2 and all(c in "0123456789abcdefABCDEF" for c in text[2:]):
        return _integer(text[2:], 16)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    return text


def _tagged(tag: str, text: str) -> Any:
    """An explicitly tagged scalar (`!!int "7"`): only the core schema's tags."""
    kind = tag.removeprefix("tag:yaml.org,2002:")
    if kind == "str":
        return text
    value = resolve_plain(text)
    wanted = {"null": type(None), "bool": bool, "int": int, "float": float}.get(kind)
    if wanted is None:
        raise ValueError(f"unsupported tag {tag!r} (only str, int, float, bool and null)")
    if kind == "float" and type(value) is int:
        return float(value)
    if type(value) is not wanted:
        raise ValueError(f"{text!r} is not a valid {kind}")
    return value


def _scalar(ev: ScalarEvent) -> Any:
    tag = ev.tag
    if tag is None:
        value = resolve_plain(ev.value) if ev.implicit[0] else ev.value
    elif tag == "!" or tag == _STR:
        value = ev.value
    else:
        value = _tagged(tag, ev.value)
    if type(value) is str and _SURROGATE.search(value):
        # the pure-Python parser lets "\ud83d\ude00" escapes through as two halves: join them
        try:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("text contains a lone UTF-16 surrogate escape") from None
    return value


class _Merge:
    """The `<<` key of a mapping, waiting for its value."""


_MERGE = _Merge()
_NO_KEY = object()
_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Frame:
    __slots__ = ("anchor", "depth", "is_map", "key", "merges", "path", "pos", "size", "value")

    def __init__(self, path: Path_, pos: int, is_map: bool, anchor: str | None) -> None:
        self.path = path
        self.anchor = anchor
        self.pos = pos
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.key: Any = _NO_KEY
        self.merges: list[Any] = []
        self.size = 1
        self.depth = 1

    def result(self) -> Any:
        if not self.merges:
            return self.value
        merged: dict[Any, Any] = {}
        for source in self.merges:  # earlier sources win, the mapping's own keys win over all
            for part in source if isinstance(source, list) else [source]:
                merged = {**part, **merged}
        return {**merged, **self.value}


def _mark(ev: Any) -> int:
    return pack(ev.start_mark.line, ev.start_mark.column)


class _YamlBuilder:
    """Plain data and marks from the events of one source; the alias budget spans all its documents."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.expanded = 0

    def _too_big(self, pos: int) -> ParseError:
        return ParseError(
            pos, f"aliases expand the input past {MAX_EXPANDED // (1024 * 1024)} MiB of text (alias bomb?)"
        )

    def document(self, get_event: Callable[[], Event]) -> tuple[Any, Marks]:
        values: dict[Path_, int] = {}
        keys: dict[Path_, int] = {}
        anchors: dict[str, tuple[Any, int, int]] = {}  # value, expanded size, depth
        stack: list[_Frame] = []
        root: Any = None
        # Compared by exact type and with locals: this loop runs once per event, ~14 per communication.
        scalar_event, alias_event, mapping_end, sequence_end = (
            ScalarEvent,
            AliasEvent,
            MappingEndEvent,
            SequenceEndEvent,
        )
        maybe_not_text = _MAYBE_NOT_TEXT
        while True:
            ev: Any = get_event()
            cls = type(ev)
            if cls is scalar_event:
                mark = ev.start_mark
                pos = (mark.line << _COL_BITS) | mark.column
                text = ev.value
                if ev.tag is None and ev.implicit[0] and text and text[0] not in maybe_not_text:
                    value = text  # plain text, the common case
                else:
                    try:
                        value = _scalar(ev)
                    except ValueError as e:
                        raise ParseError(pos, str(e)) from None
                size, depth, record = len(text) + 1, 0, True
                self.expanded += size
                if self.expanded > MAX_EXPANDED:
                    raise self._too_big(pos)
                if ev.anchor is not None:
                    anchors[ev.anchor] = (value, size, 0)
            elif cls is alias_event:
                pos = _mark(ev)
                try:
                    value, size, depth = anchors[ev.anchor]
                except KeyError:
                    raise ParseError(pos, f"unknown alias *{ev.anchor}") from None
                record = True
                self.expanded += size
                if self.expanded > MAX_EXPANDED:
                    raise self._too_big(pos)
                if len(stack) + depth > MAX_DEPTH:
                    raise ParseError(pos, f"nesting deeper than {MAX_DEPTH} levels")
            elif cls is mapping_end or cls is sequence_end:
                frame = stack.pop()
                value, size, depth, pos, record = frame.result(), frame.size, frame.depth, frame.pos, False
                if frame.anchor is not None:  # bound only now: an alias inside its own anchor is unknown
                    anchors[frame.anchor] = (value, size, depth)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                pos = _mark(ev)
                if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
                    raise ParseError(pos, "mapping keys must be plain values")
                if ev.tag not in _COLLECTION_TAGS:
                    raise ParseError(pos, f"unsupported tag {ev.tag!r}")
                if len(stack) >= MAX_DEPTH:
                    raise ParseError(pos, f"nesting deeper than {MAX_DEPTH} levels")
                self.expanded += 1
                path = _child_path(stack)
                values[path] = pos
                stack.append(_Frame(path, pos, cls is MappingStartEvent, ev.anchor))
                continue
            elif cls is DocumentEndEvent:
                return root, Marks(self.name, values, keys)
            else:  # pragma: no cover - the parser sends nothing else inside a document
                raise ParseError(_mark(ev), f"unexpected {cls.__name__}")

            if not stack:
                root = value
                values.setdefault((), pos)
                continue
            parent = stack[-1]
            parent.size += size
            if depth >= parent.depth:
                parent.depth = depth + 1
            if parent.is_map:
                if parent.key is _NO_KEY:
                    if cls is scalar_event and ev.value == "<<" and ev.tag is None and ev.implicit[0]:
                        parent.key = _MERGE
                        continue
                    if isinstance(value, (dict, list)):
                        raise ParseError(pos, "mapping keys must be plain values")
                    kpath = (*parent.path, value)
                    if value in parent.value:
                        raise ParseError(
                            pos, f"duplicate key {value!r} (first defined at line {_line_col(keys[kpath])})"
                        )
                    keys[kpath] = pos
                    parent.key = value
                    continue
                key, parent.key = parent.key, _NO_KEY
                if key is _MERGE:
                    if not (
                        isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value))
                    ):
                        raise ParseError(pos, "a merge key (<<) needs a mapping or a list of mappings")
                    parent.merges.append(value)
                    continue
                parent.value[key] = value
                path = (*parent.path, key)
            else:
                path = (*parent.path, len(parent.value))
                parent.value.append(value)
            if record:  # a collection was recorded where it starts
                values[path] = pos


def _line_col(pos: int) -> str:
    line, col = shown(pos).split(":")
    return f"{line}, column {col}"


def _child_path(stack: list[_Frame]) -> Path_:
    if not stack:
        return ()
    parent = stack[-1]
    if parent.is_map:
        return (*parent.path, parent.key) if parent.key is not _MERGE else (*parent.path, "<<")
    return (*parent.path, len(parent.value))


# ---- whole sources ----

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_documents(name: str, text: str) -> list[tuple[Any, Marks]]:
    """Every document of a YAML stream; the first problem raises ParseError."""
    builder = _YamlBuilder(name)
    docs = []
    loader = None
    try:
        loader = _Loader(text)  # the pure-Python reader checks the characters here
        loader.get_event()  # stream start
        while not loader.check_event(StreamEndEvent):
            loader.get_event()  # document start
            docs.append(builder.document(loader.get_event))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ParseError(pack(mark.line, mark.column) if mark else None, str(e.problem or e.context)) from None
    except yaml.reader.ReaderError as e:
        raise ParseError(_pos_at(text, e.position), f"unacceptable character {e.character!r}: {e.reason}") from None
    except yaml.YAMLError as e:
        raise ParseError(None, str(e)) from None
    finally:
        if loader is not None:
            loader.dispose()
    return docs


# a string (unrolled so long strings cost one pass), a bracket, or a number / true / false / null
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|[^\s{}\[\]:,"]+')
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE = re.compile(
    r"\\(?:(?P<high>u[dD][89abAB][0-9a-fA-F]{2})(?P<low>\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(?P<lone>u[dD][c-fC-F][0-9a-fA-F]{2})|.)"
)


def _pos_at(text: str, offset: int) -> int:
    return pack(text.count("\n", 0, offset), offset - (text.rfind("\n", 0, offset) + 1))


def _locate_json(text: str) -> tuple[dict[Path_, int], dict[Path_, int]]:
    """The place of every value and key of valid JSON text, in one pass over its tokens."""
    values: dict[Path_, int] = {}
    keys: dict[Path_, int] = {}
    frames: list[list[Any]] = []  # [path, is a mapping, pending key, next index]
    line = line_start = last = 0
    for m in _JSON_TOKEN.finditer(text):
        offset = m.start()
        breaks = text.count("\n", last, offset)
        if breaks:
            line += breaks
            line_start = text.rfind("\n", last, offset) + 1
        last = offset
        pos = pack(line, offset - line_start)
        token = m.group()
        first = token[0]
        if first == "}" or first == "]":
            frames.pop()
            continue
        if not frames:
            path: Path_ = ()
        else:
            frame = frames[-1]
            if not frame[1]:
                path = (*frame[0], frame[3])
                frame[3] += 1
            elif frame[2] is _NO_KEY:
                key = json.loads(token) if "\\" in token else token[1:-1]
                kpath = (*frame[0], key)
                if kpath in keys:
                    raise ParseError(pos, f"duplicate key {key!r} (first defined at line {_line_col(keys[kpath])})")
                keys[kpath] = pos
                frame[2] = key
                continue
            else:
                path = (*frame[0], frame[2])
                frame[2] = _NO_KEY
        values[path] = pos
        if first == "{" or first == "[":
            if len(frames) >= MAX_DEPTH:
                raise ParseError(pos, f"nesting deeper than {MAX_DEPTH} levels")
            frames.append([path, first == "{", _NO_KEY, 0])
        elif first != '"' and len(token) > MAX_DIGITS:
            raise ParseError(pos, f"a number of more than {MAX_DIGITS} digits")
    return values, keys


def _check_surrogates(text: str) -> None:
    """Escaped surrogate pairs are one character; a lone half is refused where it is written."""
    if not _SURROGATE_HINT.search(text):
        return
    for m in _ESCAPE.finditer(text):
        if m.group("lone") or (m.group("high") and not m.group("low")):
            raise ParseError(_pos_at(text, m.start()), "text contains a lone UTF-16 surrogate escape")


def json_documents(name: str, text: str) -> list[tuple[Any, Marks]]:
    """A JSON text as one document; the first problem raises ParseError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(pack(e.lineno - 1, e.colno - 1), e.msg) from None
    except (RecursionError, ValueError) as e:  # too deep or too long a number: the pass below says where
        _locate_json(text)
        raise ParseError(None, str(e) or type(e).__name__) from None
    values, keys = _locate_json(text)
    _check_surrogates(text)
    return [(data, Marks(name, values, keys))]


def documents(name: str, text: str, is_json: bool) -> Iterator[tuple[Any, Marks]]:
    """Each document of a source, a top-level list of a JSON or YAML document counting as several."""
    for data, marks in (json_documents if is_json else yaml_documents)(name, text):
        if isinstance(data, list):
            yield from ((item, marks.item(i)) for i, item in enumerate(data))
        else:
            yield data, marks
