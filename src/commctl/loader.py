"""Files, directories and stdin -> `Desired` items, with every problem located as FILE:LINE:COL.

YAML is composed into nodes (safe, no custom tags), walked by hand so that duplicate keys are caught
and every value keeps its mark; pydantic then validates plain data and its error locations are
mapped back to those marks.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .domain import COMM_TYPES
from .errors import InputError
from .models import EXCLUSIVE, CommunicationFields, CommunicationIn, Desired, DocumentIn, TargetIn

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_NODES = 100_000  # guards against alias bombs ("billion laughs")
MAX_PROBLEMS = 50
SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
Path_ = tuple[str | int, ...]


@dataclass
class Source:
    name: str  # as shown in messages
    base: Path  # where relative template paths start
    text: str


@dataclass
class Marks:
    """Where each value (and each mapping key) of one document sits in its file."""

    name: str
    values: dict[Path_, yaml.Mark] = field(default_factory=dict)
    keys: dict[Path_, yaml.Mark] = field(default_factory=dict)

    def within(self, index: int) -> Marks:
        """The marks of item `index` of a top-level list, as a document of its own."""
        inner = [{p[1:]: m for p, m in table.items() if p[:1] == (index,)} for table in (self.values, self.keys)]
        return Marks(self.name, *inner)

    def at(self, path: Path_, key: bool = False) -> str:
        table = self.keys if key else self.values
        while path not in table and path:
            path = path[:-1]
        mark = table.get(path) or self.values.get(())
        return f"{self.name}:{mark.line + 1}:{mark.column + 1}" if mark else self.name


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, where: str, message: str, path: Iterable[str | int] = ()) -> None:
        p = dotted(path)
        self.lines.append(f"{where}: {p}: {message}" if p else f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            shown = self.lines[:MAX_PROBLEMS]
            if len(self.lines) > MAX_PROBLEMS:
                shown.append(f"... and {len(self.lines) - MAX_PROBLEMS} more problems")
            raise InputError(shown, hint="fix the file(s) and run `commctl validate` to check them offline")


# ---- reading ----


def _decode(name: str, raw: bytes) -> str:
    if b"\x00" in raw:
        raise ValueError("not a text file (binary content)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at line {line}, column {col})") from None


def read_text(path: Path, shown: str) -> str:
    """Read a whole text file as UTF-8, refusing binary or oversized content."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("is a directory") from None
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from None
    return _decode(shown, raw)


def expand(paths: Iterable[str], problems: Problems) -> Iterator[tuple[str, Path | None]]:
    """Yield (shown name, path) for each input; directories give their files in sorted order."""
    for p in paths:
        if p == STDIN:
            yield "<stdin>", None
            continue
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file())
            if not files:
                problems.add(p, "directory has no *.yaml, *.yml or *.json files")
            for f in files:
                yield str(f), f
        elif not path.exists():
            problems.add(p, "no such file or directory")
        else:
            yield p, path


def read_sources(paths: Iterable[str], problems: Problems, stdin: Any = None) -> list[Source]:
    sources = []
    for shown, path in expand(paths, problems):
        try:
            if path is None:
                raw = (stdin or sys.stdin.buffer).read(MAX_FILE_BYTES + 1)
                if len(raw) > MAX_FILE_BYTES:
                    raise ValueError("input larger than 8 MiB")
                sources.append(Source(shown, Path.cwd(), _decode(shown, raw)))
            else:
                sources.append(Source(shown, path.parent, read_text(path, shown)))
        except ValueError as e:
            problems.add(shown, str(e))
    return sources


# ---- YAML nodes -> plain data with marks ----


class _Walker:
    def __init__(self, marks: Marks) -> None:
        self.marks = marks
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0

    def walk(self, node: Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ValueError(f"document expands to more than {MAX_NODES} nodes (alias bomb?)")
        self.marks.values.setdefault(path, node.start_mark)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.walk(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        value = self.constructor.construct_object(node, deep=True)
        return _join_surrogates(value, node) if isinstance(value, str) else value

    def _mapping(self, node: MappingNode, path: Path_) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    value = self.walk(src, path)
                    if not isinstance(value, dict):
                        raise yaml.MarkedYAMLError(
                            problem="a merge key (<<) needs a mapping", problem_mark=src.start_mark
                        )
                    merged = {**value, **merged}
                continue
            if not isinstance(key_node, ScalarNode):
                raise yaml.MarkedYAMLError(
                    problem="mapping keys must be plain values", problem_mark=key_node.start_mark
                )
            key = self.constructor.construct_object(key_node, deep=True)
            if key in out:
                first = self.marks.keys[(*path, key)]
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r} (first defined at line {first.line + 1}, column {first.column + 1})",
                    problem_mark=key_node.start_mark,
                )
            self.marks.keys[(*path, key)] = key_node.start_mark
            out[key] = self.walk(value_node, (*path, key))
        return {**merged, **out}


def _join_surrogates(value: str, node: Node) -> str:
    """JSON escapes such as "\\ud83d\\ude00" arrive as two surrogates: join pairs, refuse lone halves."""
    if not any("\ud800" <= ch <= "\udfff" for ch in value):
        return value
    try:
        return value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise yaml.MarkedYAMLError(
            problem="text contains a lone UTF-16 surrogate escape", problem_mark=node.start_mark
        ) from None


def parse_documents(source: Source, problems: Problems) -> list[tuple[Any, Marks]]:
    """Parse every document of one source; syntax problems are recorded, not raised."""
    is_json = source.name.lower().endswith(".json")
    if is_json:
        try:
            json.loads(source.text)
        except json.JSONDecodeError as e:
            problems.add(f"{source.name}:{e.lineno}:{e.colno}", f"invalid JSON: {e.msg}")
            return []
    docs: list[tuple[Any, Marks]] = []
    try:
        # libyaml is ~10x faster, but refuses the escaped surrogate pairs that JSON writers emit for emoji
        fast = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loader = (yaml.SafeLoader if is_json else fast)(source.text)
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                marks = Marks(source.name)
                docs.append((_Walker(marks).walk(node, ()), marks))
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source.name}:{mark.line + 1}:{mark.column + 1}" if mark else source.name
        problems.add(where, f"invalid {'JSON' if is_json else 'YAML'}: {e.problem or e.context}")
        return []
    except (yaml.YAMLError, ValueError) as e:
        problems.add(source.name, f"invalid YAML: {e}")
        return []
    except RecursionError:
        problems.add(source.name, "invalid YAML: nesting too deep")
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
        return f"unknown field '{loc[-1]}'{tip}"
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


def _template(source: Source, marks: Marks, path: Path_, name: str, problems: Problems) -> str | None:
    where = marks.at(path)
    target = (source.base / name).resolve()
    try:
        return read_text(target, name)
    except ValueError as e:
        problems.add(where, f"cannot read {name}: {e}", path)
        return None


def _slot(fields: dict[str, Any], pair: tuple[str, str]) -> dict[str, Any]:
    return {k: fields[k] for k in pair if fields.get(k) is not None}


def to_desired(doc: DocumentIn, source: Source, marks: Marks, problems: Problems) -> list[Desired]:
    defaults = doc.defaults.model_dump(exclude_none=True) if doc.defaults else {}
    out = []
    for ti, target in enumerate(doc.targets):
        for ci, comm in enumerate(target.communications):
            path: Path_ = ("targets", ti, "communications", ci)
            own = comm.model_dump(exclude_none=True)
            merged: dict[str, Any] = {k: v for k, v in defaults.items() if not any(k in p for p in EXCLUSIVE)}
            for pair in EXCLUSIVE:  # a pair given here replaces the same pair from defaults
                merged.update(_slot(own, pair) or _slot(defaults, pair))
            merged.update({k: v for k, v in own.items() if not any(k in p for p in EXCLUSIVE)})
            for field_ in ("messageTemplate", "subjectTemplate"):
                name = merged.pop(f"{field_}File", None)
                if name is not None:
                    from_defaults = f"{field_}File" not in own
                    fpath: Path_ = ("defaults", f"{field_}File") if from_defaults else (*path, f"{field_}File")
                    text = _template(source, marks, fpath, name, problems)
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
                    locs={f: marks.at((*path, f)) for f in merged},
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


def load(paths: Iterable[str], stdin: Any = None) -> list[Desired]:
    """Load and validate every input; raise one InputError listing all problems found."""
    problems = Problems()
    items: list[Desired] = []
    for source in read_sources(paths, problems, stdin):
        for data, marks in parse_documents(source, problems):
            # A top-level list holds several documents: handy in JSON, which has no `---`.
            parts = [(d, marks.within(i)) for i, d in enumerate(data)] if isinstance(data, list) else [(data, marks)]
            for part, part_marks in parts:
                doc = validate_document(part, part_marks, problems)
                if doc:
                    items += to_desired(doc, source, part_marks, problems)
    check_duplicates(items, problems)
    problems.raise_if_any()
    return items
