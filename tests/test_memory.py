"""Large runs in bounded memory (SPEC 9), with output byte for byte what it was when built whole."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from commctl.jsonout import Rows, json_chunks, write_json, write_lines
from commctl.text import json_safe

TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | TEXT
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20
)


def dumped(data: Any, indent: int | None) -> str:
    return json_safe(json.dumps(data, ensure_ascii=False, indent=indent))


@settings(max_examples=300, deadline=None)
@given(
    before=JSON,
    rows=st.lists(JSON, max_size=5),
    after=st.dictionaries(TEXT, JSON, max_size=3),
    indent=st.sampled_from([None, 2]),
)
def test_streamed_json_is_byte_for_byte_json_dumps(
    before: Any, rows: list[Any], after: dict[str, Any], indent: int | None
) -> None:
    """Rows are made one at a time as they are written; the text is what json.dumps writes for the list."""
    made: list[int] = []

    def row(n: int) -> Any:
        made.append(n)
        return rows[n]

    streamed = {"before": before, "results": Rows(range(len(rows)), row), **after}
    whole = {"before": before, "results": rows, **after}
    assert "".join(json_chunks(streamed, indent)) == dumped(whole, indent)
    assert "".join(json_chunks(before, indent)) == dumped(before, indent)
    nested = [streamed]  # a Rows inside a value encoded whole is listed, not streamed
    assert "".join(json_chunks(nested, indent)) == dumped([whole], indent)


def test_streamed_json_is_written_in_batches_with_a_line_end() -> None:
    out = io.StringIO()
    rows = Rows(list(range(50_000)), lambda n: {"n": n, "text": "é\x85"})
    write_json(out, {"results": rows, "summary": {}})
    assert out.getvalue() == dumped({"results": list(rows), "summary": {}}, None) + "\n"

    class Counting(io.StringIO):
        calls = 0

        def write(self, s: str) -> int:
            Counting.calls += 1
            return super().write(s)

    write_lines(Counting(), (str(n) for n in range(100_000)), size=1 << 16)
    assert Counting.calls < 10
