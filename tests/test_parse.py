"""parse: the places found for JSON values and keys are exactly where they are written."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from commctl import parse
from commctl.parse import Marks, ParseError, json_documents, shown, yaml_documents

KEYS = st.text(st.sampled_from(['a', 'é', '"', "\\", "\n", "😀", "\u2028", " ", "{", "]", ":", ","]), max_size=4)  # fmt: skip
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), KEYS)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)


def offset(text: str, place: str) -> int:
    line, col = (int(n) for n in place.split(":"))
    return sum(len(s) + 1 for s in text.split("\n")[: line - 1]) + col - 1


def walk(data: Any, path: tuple[str | int, ...] = ()) -> Any:
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from walk(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from walk(v, (*path, i))


@settings(max_examples=100)
@given(data=JSON, indent=st.sampled_from([None, 0, 1, 4]), ascii_only=st.booleans())
def test_json_places_point_at_each_value_and_key(data: Any, indent: int | None, ascii_only: bool) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=ascii_only)
    [(parsed, marks)] = json_documents("f.json", text)
    assert parsed == data
    for path, value in walk(data):
        at = offset(text, marks.at(path).removeprefix("f.json:"))
        assert json.JSONDecoder().raw_decode(text, at)[0] == value, (path, at)
        if path and isinstance(path[-1], str):
            key_at = offset(text, marks.at(path, key=True).removeprefix("f.json:"))
            assert json.JSONDecoder().raw_decode(text, key_at)[0] == path[-1], (path, key_at)


def test_a_top_level_list_item_is_a_document_of_its_own() -> None:
    text = '[{"a": 1},\n {"b": [true, 2]}]'
    [(_, marks)] = json_documents("f.json", text)
    second = marks.item(1)
    assert isinstance(second, Marks)
    assert second.at(()) == "f.json:2:2"
    assert second.at(("b", 1)) == "f.json:2:15"
    assert second.at(("b", 9, "x")) == "f.json:2:8"  # the nearest place that exists
    assert second.at(("b",), key=True) == "f.json:2:3"


def test_yaml_places_and_the_place_of_an_alias() -> None:
    [(data, marks)] = yaml_documents("f.yaml", "a: &x [1, 2]\nb:\n  - *x\n  - c: 3\n")
    assert data == {"a": [1, 2], "b": [[1, 2], {"c": 3}]}
    assert [marks.at(p) for p in [("a", 1), ("b", 0), ("b", 0, 1), ("b", 1, "c")]] == [
        "f.yaml:1:11",
        "f.yaml:3:5",  # where the alias is used, not where its anchor is
        "f.yaml:3:5",
        "f.yaml:4:8",
    ]


def test_a_parse_error_carries_its_place() -> None:
    try:
        yaml_documents("f.yaml", "a: [1,\n  2\n")
    except ParseError as e:
        assert e.pos is not None and shown(e.pos) == "3:1"
    else:
        raise AssertionError("no ParseError")


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 010, 0o10, yes, ~, '1:30', 1e3]\nb: {<<: {c: *x}, d: \"\\u00e9\\t\"}\n---\n- 2\n",
        "a: 1\na: 2\n",
        "a: \x01\n",
        "a: [1,\n",
        "a: !!binary aGk=\n",
    ],
)
def test_the_pure_python_parser_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Without libyaml, PyYAML's own parser is used: same data, same places, problems at the same place."""

    def answers() -> object:
        try:
            return [(data, marks.values, marks.keys) for data, marks in yaml_documents("f", text)]
        except ParseError as e:
            return e.pos  # the two parsers word syntax errors differently

    with_libyaml = answers()
    monkeypatch.setattr(parse, "_Loader", yaml.SafeLoader)
    assert answers() == with_libyaml
