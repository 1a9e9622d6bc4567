"""Files, directories and stdin -> `Desired` items, with every problem located as FILE:LINE:COL.

Only regular files and `-` are read, never more than 8 MiB from any source; template files must
stay inside the directory of the file that names them. `parse` turns the text into plain data with
the place of every value; pydantic validates it and its error locations are mapped back to those
places.
"""

from __future__ import annotations

import difflib
import os
import stat
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ValidationError

from .domain import COMM_TYPES
from .errors import Problems, clipped, dotted
from .gcpause import collector_paused
from .models import EXCLUSIVE, CommunicationFields, CommunicationIn, Desired, DocumentIn, TargetIn
from .parse import Marks, ParseError, documents, shown

MAX_FILE_BYTES = 8 * 1024 * 1024
SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
Path_ = tuple[str | int, ...]


@dataclass
class Source:
    name: str  # as shown in messages
    base: Path  # where relative template paths start (resolved)
    text: str


# ---- reading ----

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_LIMIT = f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"not a regular file ({kind}); only regular files and - (standard input) are read"


def _bounded(stream: BinaryIO) -> bytes:
    """At most the limit: one byte more tells that the source is too large, without reading it all."""
    raw = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {_LIMIT}")
    return raw


def _decode(raw: bytes) -> str:
    if b"\x00" in raw:
        raise ValueError("not a text file (binary content)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at line {line}, column {col})") from None


def read_bytes(path: Path) -> bytes:
    """The content of a regular file, at most the limit; anything else is a ValueError for people.

    The type is checked before opening (opening a FIFO for reading would wait for a writer) and again
    on the open descriptor, opened non-blocking, so a file swapped in between cannot make us hang.
    """
    try:
        problem = _not_regular(os.stat(path).st_mode)
        if problem:
            raise ValueError(problem)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        with open(os.open(path, flags), "rb") as f:
            problem = _not_regular(os.fstat(f.fileno()).st_mode)
            if problem:
                raise ValueError(problem)
            return _bounded(f)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from None


def read_text(path: Path) -> str:
    """Read a whole regular text file as UTF-8, refusing binary, oversized or special files."""
    return _decode(read_bytes(path))


def read_stdin(stdin: BinaryIO | None = None) -> str:
    if stdin is None and sys.stdin is None:  # started with standard input closed
        raise ValueError("there is no standard input")
    stream = stdin or sys.stdin.buffer
    if stream.isatty():
        raise ValueError("standard input is a terminal: pipe or redirect a file into it")
    return _decode(_bounded(stream))


def _files_under(directory: Path, problems: Problems) -> Iterator[tuple[str, Path | None]]:
    found = False
    for f in sorted(directory.rglob("*")):
        if f.suffix.lower() not in SUFFIXES:
            continue
        try:
            mode = f.stat().st_mode
        except OSError as e:
            problems.add(str(f), f"cannot read: {e.strerror or e}")
            continue
        if stat.S_ISDIR(mode):  # its files are listed on their own
            continue
        problem = _not_regular(mode)
        if problem:
            problems.add(str(f), problem)
            continue
        found = True
        yield str(f), f
    if not found:
        problems.add(str(directory), "directory has no *.yaml, *.yml or *.json files")


def expand(paths: Iterable[str], problems: Problems) -> Iterator[tuple[str, Path | None]]:
    """Yield (shown name, path) for each input, None for stdin; directories give their files in sorted order."""
    for p in paths:
        if p == STDIN:
            yield "<stdin>", None
            continue
        path = Path(p)
        try:
            is_dir = stat.S_ISDIR(path.stat().st_mode)
        except FileNotFoundError:
            problems.add(p, "no such file or directory")
            continue
        except (OSError, ValueError) as e:  # ValueError: a NUL in the name
            problems.add(p, f"cannot read: {getattr(e, 'strerror', None) or e}")
            continue
        if is_dir:
            yield from _files_under(path, problems)
        else:
            yield p, path


def read_sources(paths: Iterable[str], problems: Problems, stdin: BinaryIO | None = None) -> Iterator[Source]:
    """Each readable input in turn: one source's text is held at a time, however many files there are."""
    for name, path in expand(paths, problems):
        try:
            if path is None:
                # a document read from stdin names its templates relative to the current directory
                yield Source(name, Path.cwd().resolve(), read_stdin(stdin))
            else:
                yield Source(name, path.parent.resolve(), read_text(path))
        except ValueError as e:
            problems.add(name, str(e))


def parse_documents(source: Source, problems: Problems) -> list[tuple[Any, Marks]]:
    """Every document of one source (each item of a top-level list is one); problems are recorded, not raised."""
    is_json = source.name.lower().endswith(".json")
    try:
        docs = list(documents(source.name, source.text, is_json))
    except ParseError as e:
        where = source.name if e.pos is None else f"{source.name}:{shown(e.pos)}"
        problems.add(where, f"invalid {'JSON' if is_json else 'YAML'}: {e.message}")
        return []
    except RecursionError:  # pragma: no cover - the parsers refuse deep nesting before Python's limit
        problems.add(source.name, f"invalid {'JSON' if is_json else 'YAML'}: nesting too deep")
        return []
    if not docs:
        problems.add(source.name, "empty: no documents (expected targetGroupId and targets)")
    return docs


# ---- validation ----


def _model_at(path: Path_) -> type[BaseModel]:
    names = tuple(p for p in path if isinstance(p, str))
    models: dict[tuple[str, ...], type[BaseModel]] = {
        (): DocumentIn,
        ("defaults",): CommunicationFields,
        ("targets",): TargetIn,
        ("targets", "communications"): CommunicationIn,
    }
    return models.get(names, DocumentIn)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(err: Any) -> str:
    kind, loc, msg = err["type"], tuple(err["loc"]), str(err["msg"])
    if kind == "extra_forbidden":
        known = list(_model_at(loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        tip = f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(known)})"
        return f"unknown field '{clipped(str(loc[-1]))}'{tip}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and loc and loc[-1] == "communicationType":
        close = difflib.get_close_matches(str(err["input"]).upper(), COMM_TYPES, n=1)
        tip = f" (did you mean '{close[0]}'?)" if close else ""
        return f"expected one of {', '.join(COMM_TYPES)}, got {_short(err['input'])}{tip}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if isinstance(err.get("input"), (dict, list)):
        return msg
    extra = ""
    if kind == "string_type" and isinstance(err.get("input"), (int, float, bool)):
        extra = "; quote it to keep it as text"
    elif kind == "bool_type" and isinstance(err.get("input"), str):
        extra = "; write true or false (YAML 1.2 reads yes, no, on and off as text)"
    return f"{msg}, got {_short(err.get('input'))}{extra}"


def validate_document(data: Any, marks: Marks, problems: Problems) -> DocumentIn | None:
    if not isinstance(data, dict):
        problems.add(marks.at(()), f"expected a mapping with targetGroupId and targets, got {type(data).__name__}")
        return None
    try:
        return DocumentIn.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            problems.add(marks.at(loc, key=err["type"] == "extra_forbidden"), _describe(err), loc)
        return None


def _confined(base: Path, name: str) -> Path:
    """`name` resolved (symlinks too) inside `base`, so that a file cannot pull in files from elsewhere."""
    if "\x00" in name:
        raise ValueError("the path contains a NUL character")
    if Path(name).anchor:
        raise ValueError("absolute paths are refused: give a path relative to the directory of this file")
    try:
        target = (base / name).resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise ValueError(str(getattr(e, "strerror", None) or e)) from None
    if not target.is_relative_to(base):
        raise ValueError(f"it resolves outside {base}; template files must stay inside the directory of this file")
    return target


class Templates:
    """Template files named in documents: confined, read once each, each problem reported once."""

    def __init__(self) -> None:
        self.cache: dict[tuple[Path, str], str | ValueError] = {}
        self.reported: set[tuple[str, Path_]] = set()

    def _read(self, base: Path, name: str) -> str:
        found = self.cache.get((base, name))
        if found is None:
            try:
                found = read_text(_confined(base, name))
            except ValueError as e:
                found = e
            self.cache[(base, name)] = found
        if isinstance(found, ValueError):
            raise found
        return found

    def text(self, source: Source, marks: Marks, path: Path_, name: str, problems: Problems) -> str | None:
        try:
            return self._read(source.base, name)
        except ValueError as e:
            where = marks.at(path)
            if (where, path) not in self.reported:  # a file named in defaults is one problem, not one per item
                self.reported.add((where, path))
                problems.add(where, f"cannot read {name}: {e}", path)
            return None


_FIELD_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple for each set of fields met, shared
_NO_PLACE = -1


class Places(Mapping[str, str]):
    """field -> FILE:LINE:COL of one communication, formatted only when asked.

    Only warnings read them, and a run holds one per communication: the field names are a tuple
    shared by every communication with the same fields, the places packed 8 bytes each (as strings
    they took 20 MiB at 50k communications, as tuples of ints 16 MiB; now 3 MiB).
    """

    __slots__ = ("_fields", "_name", "_places")

    def __init__(self, name: str, marks: Marks, path: Path_, fields: Iterable[str]) -> None:
        names = tuple(fields)
        self._name = name
        self._fields = _FIELD_SETS.setdefault(names, names)
        places = (marks.pos((*path, f)) for f in names)
        self._places = struct.pack(f"{len(names)}q", *(_NO_PLACE if p is None else p for p in places))

    def __getitem__(self, field_: str) -> str:
        try:
            (pos,) = struct.unpack_from("q", self._places, 8 * self._fields.index(field_))
        except ValueError:
            raise KeyError(field_) from None
        return self._name if pos == _NO_PLACE else f"{self._name}:{shown(pos)}"

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


_PAIRED = frozenset(k for pair in EXCLUSIVE for k in pair)
_TEMPLATE_FILES = (("messageTemplate", "messageTemplateFile"), ("subjectTemplate", "subjectTemplateFile"))


def _slot(fields: dict[str, Any], pair: tuple[str, str]) -> dict[str, Any]:
    return {k: fields[k] for k in pair if fields.get(k) is not None}


def to_desired(
    doc: DocumentIn, source: Source, marks: Marks, problems: Problems, templates: Templates
) -> list[Desired]:
    defaults = doc.defaults.model_dump(exclude_none=True) if doc.defaults else {}
    unpaired_defaults = {k: v for k, v in defaults.items() if k not in _PAIRED}
    out = []
    for ti, target in enumerate(doc.targets):
        for ci, comm in enumerate(target.communications):
            path: Path_ = ("targets", ti, "communications", ci)
            own = comm.model_dump(exclude_none=True)
            merged: dict[str, Any] = dict(unpaired_defaults)
            for pair in EXCLUSIVE:  # a pair given here replaces the same pair from defaults
                merged.update(_slot(own, pair) or _slot(defaults, pair))
            merged.update({k: v for k, v in own.items() if k not in _PAIRED})
            for field_, file_field in _TEMPLATE_FILES:
                name = merged.pop(file_field, None)
                if name is not None:
                    fpath: Path_ = (*path, file_field) if file_field in own else ("defaults", file_field)
                    text = templates.text(source, marks, fpath, name, problems)
                    if text is not None:
                        merged[field_] = text
            channel = merged.pop("channelId", None) or merged.pop("channel", None)
            if channel is None:
                problems.add(marks.at(path), "one of channelId or channel is required (here or in defaults)", path)
                continue
            channel_name = channel if isinstance(channel, str) else None
            if isinstance(channel, str) and channel.isdigit():
                channel = int(channel)
            out.append(
                Desired(
                    group=doc.targetGroupId,
                    target=target.targetId,
                    type=merged.pop("communicationType"),
                    channel=channel,
                    fields=merged,
                    where=f"{marks.at(path)}: {dotted(path)}",
                    channel_name=channel_name,
                    locs=Places(marks.name, marks, path, merged),
                )
            )
    return out


def check_duplicates(items: list[Desired], problems: Problems) -> None:
    seen: dict[tuple[Any, ...], Desired] = {}
    for d in items:
        chan = d.channel.upper() if isinstance(d.channel, str) else d.channel
        key = (d.group, d.target, d.type, chan)
        if key in seen:
            problems.add(d.where, f"duplicate communication {d.label}; first declared at {seen[key].where}")
        else:
            seen[key] = d


def load(paths: Iterable[str], stdin: BinaryIO | None = None) -> list[Desired]:
    """Load and validate every input; raise one InputError listing all problems found."""
    problems = Problems()
    templates = Templates()
    items: list[Desired] = []
    with collector_paused():
        for source in read_sources(paths, problems, stdin):
            for data, marks in parse_documents(source, problems):
                doc = validate_document(data, marks, problems)
                if doc:
                    items += to_desired(doc, source, marks, problems, templates)
        check_duplicates(items, problems)
    problems.raise_if_any()
    return items
