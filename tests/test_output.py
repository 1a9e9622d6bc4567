"""What people and scripts see: tables at a terminal and in a pipe, data shown as data, closed pipes.

Golden tables live in tests/golden/; after an intended change, regenerate them with
`UPDATE_GOLDEN=1 python -m pytest -q tests/test_output.py` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from commctl import render
from commctl.domain import Action
from commctl.models import Communication, Item
from commctl.options import OutputOptions
from commctl.runtime import Run, github_annotation, to_yaml
from commctl.text import field, json_safe, markdown_code, shown

from .conftest import ROOT, SAMPLES, Cli, write

GOLDEN = Path(__file__).parent / "golden"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMER = str(SAMPLES / "summer-challenge.yaml")
HOSTILE = "Hi [first_name]! Closing [/b] tag \x1b[31mred\x07 \x9b2J tab\there\nline2 \u202eevil"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (UPDATE_GOLDEN=1 regenerates it)"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Compact times are local: pin the zone so goldens do not depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def at_terminal(grid: render.Grid, width: int, monkeypatch: pytest.MonkeyPatch, term: str = "xterm") -> str:
    """The table as a terminal of `width` columns shows it (styles stripped), and the stderr notes."""
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("TERM", term)
    run = Run()
    run.out_stream, run.err_stream = Tty(), io.StringIO()
    run.table(grid)
    return ANSI.sub("", run.out_stream.getvalue()) + "".join(f"# {line}\n" for line in run.err_stream.getvalue().splitlines())


def piped(grid: render.Grid, headers: bool = True) -> str:
    run = Run(OutputOptions(no_headers=not headers))
    run.out_stream = io.StringIO()
    run.table(grid)
    return run.out_stream.getvalue()


def comm(**fields: Any) -> Communication:
    base: dict[str, Any] = {
        "id": 12,
        "targetGroupId": 4100,
        "targetId": 5200,
        "communicationType": "REMINDER",
        "channelId": 1,
        "sender": "BRANDSMS",
        "subjectTemplate": "",
        "messageTemplate": "3 days left to reach your summer target!",
        "offsetDays": 3,
        "active": True,
        "attribution": {"lastUpdatedOn": "2026-11-27T16:02:55.123+0000"},
    }
    return Communication.model_validate({**base, **fields})


LIVE = [
    comm(id=3, communicationType="START", channelId=2, sender="loyalty@brand.example",
         subjectTemplate="Your summer challenge has started",
         messageTemplate=(SAMPLES / "templates" / "start.html").read_text(), offsetDays=0),
    comm(id=4, communicationType="FINISH", channelId=2, sender="loyalty@brand.example",
         subjectTemplate="Your summer challenge is over", messageTemplate="Thanks, {{first_name}}!", offsetDays=1),
    comm(id=5),
    comm(id=9, targetId=5201, communicationType="CHANGE", channelId=3, sender="", active=False,
         messageTemplate="Good news, {{first_name}}: your new target is {{target_value}}."),
]  # fmt: skip
NAMES = {1: "SMS", 2: "EMAIL", 3: "MOBILE PUSH"}


def dicts(comms: list[Communication]) -> list[dict[str, Any]]:
    return [c.api_dict() for c in comms]


# ---- text: one escaping path ----


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain [b]markup[/b] stays", "plain [b]markup[/b] stays"),
        ("a\nb\r\nc\td", "a⏎b⏎c⇥d"),
        ("esc \x1b[2J bell \x07 del \x7f", "esc \\x1b[2J bell \\x07 del \\x7f"),
        ("c1 \x9b nel \x85", "c1 \\x9b nel \\x85"),
        ("bidi \u202e and \u2066, sep \u2028", "bidi \\u202e and \\u2066, sep \\u2028"),
        ("lone \udcff surrogate", "lone \\udcff surrogate"),
        ("é ü 中文 emoji 🎉 nbsp\u00a0", "é ü 中文 emoji 🎉 nbsp\u00a0"),
    ],
)
def test_shown_escapes_control_characters_only(raw: str, expected: str) -> None:
    assert shown(raw) == expected


def test_tsv_fields_are_reversible_and_one_line() -> None:
    raw = "a\tb\nc\\n \r \x1b"
    escaped = field(raw)
    assert escaped == "a\\tb\\nc\\\\n \\r \\x1b"
    assert "\t" not in escaped and "\n" not in escaped
    unescaped = escaped.encode().decode("unicode_escape")
    assert unescaped == raw


def test_whole_table_escaping_matches_field_by_field() -> None:
    import random

    from commctl.text import tsv

    rng = random.Random(7)
    for alphabet in ("ab\\\t\n\r\x1b\x85\u202e\udcffx", "ab\\\t\n\x1e\x1fx", "plain text "):
        rows = [["".join(rng.choice(alphabet) for _ in range(6)) for _ in range(4)] for _ in range(500)]
        assert tsv(rows) == "".join("\t".join(field(v) for v in row) + "\n" for row in rows)
    assert tsv([]) == ""


def test_json_safe_keeps_exact_values() -> None:
    data = {"m": "c1 \x9b del \x7f bidi \u202e lone \udcff é"}
    out = json_safe(json.dumps(data, ensure_ascii=False))
    assert not re.search("[\x7f-\x9f\u202e\ud800-\udfff]", out)
    assert "é" in out
    assert json.loads(out) == data
    assert json_safe('{"m": "del \x7f"}') == '{"m": "del \\u007f"}'  # DEL is ASCII: no shortcut for ASCII text


def test_markdown_code_spans_are_inert() -> None:
    assert markdown_code("a | b") == "`a \\| b`"
    assert markdown_code("use `x` here") == "``use `x` here``"
    assert markdown_code("`edge`") == "`` `edge` ``"
    assert markdown_code("<img src=x> @team **bold**") == "`<img src=x> @team **bold**`"
    assert markdown_code("\x1b[31m") == "`\\x1b[31m`"
    assert markdown_code("") == ""


def test_yaml_output_quotes_and_escapes_control_characters() -> None:
    data = [{"m": "nel \x85 esc \x1b", "plain": "Hi [first_name]!"}]
    out = to_yaml(data)
    assert "\x85" not in out and "\x1b" not in out
    assert yaml.safe_load(out) == data


# ---- tables at a terminal ----


@pytest.mark.parametrize("width", [80, 100, 200])
def test_show_golden_at_a_terminal(width: int, monkeypatch: pytest.MonkeyPatch, utc: None) -> None:
    text = at_terminal(render.comms_table(dicts(LIVE), NAMES), width, monkeypatch)
    golden(f"show-{width}.txt", text)
    table = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(len(line) <= width for line in table)
    assert len(table) == 2 + len(LIVE)  # header, rule, one line per row: nothing wraps
    for word in ("REMINDER", "3 MOBILE PUSH", *(["2026-11-27 16:02"] if width > 80 else [])):
        assert word in text, word


@pytest.mark.parametrize("width", [80, 100, 200])
def test_show_files_golden_at_a_terminal(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from commctl.loader import load

    monkeypatch.chdir(ROOT)  # locations as a user in the repository sees them, wherever it is checked out
    text = at_terminal(render.desired_table(load(["sample-configs"])), width, monkeypatch)
    golden(f"show-files-{width}.txt", text)
    assert all(len(line) <= width for line in text.splitlines() if not line.startswith("#"))


def test_narrow_terminal_hides_the_least_useful_text_first(monkeypatch: pytest.MonkeyPatch, utc: None) -> None:
    text = at_terminal(render.comms_table(dicts(LIVE), NAMES), 80, monkeypatch)
    assert "# hidden to fit 80 columns: sender, subject" in text
    wide = at_terminal(render.comms_table(dicts(LIVE), NAMES), 200, monkeypatch)
    assert "hidden" not in wide and "loyalty@brand.example" in wide


def test_dumb_terminal_draws_no_box(monkeypatch: pytest.MonkeyPatch, utc: None) -> None:
    boxed = at_terminal(render.comms_table(dicts(LIVE), NAMES), 200, monkeypatch)
    assert "─" in boxed
    dumb = at_terminal(render.comms_table(dicts(LIVE), NAMES), 200, monkeypatch, term="dumb")
    assert not re.search("[─━│┃┏┓└┘]", dumb)
    assert dumb.splitlines()[0].split() == boxed.splitlines()[0].split()


def test_layout_keeps_fixed_columns_whole() -> None:
    cols = (render.Column("id"), render.Column("text", text=True), render.Column("extra", text=True, hide=1))
    assert render.layout(cols, [4, 50, 20], 200) == [4, 50, 20]
    assert render.layout(cols, [4, 50, 20], 40) == [4, 24, 8]  # 32 columns of text: the more important grows first
    assert render.layout(cols, [4, 50, 20], 20) == [4, 14, None]  # too narrow for both: extra hidden
    assert render.layout(cols, [4, 50, 20], 8) == [4, 2, None]  # never below a fixed column


def test_markup_and_escapes_in_data_are_shown_as_data(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = render.comms_table(dicts([comm(messageTemplate=HOSTILE, sender="[bold]x[/bold]")]), NAMES)
    text = at_terminal(grid, 400, monkeypatch)
    assert "[bold]x[/bold]" in text
    assert "Hi [first_name]! Closing [/b] tag \\x1b[…" in text  # the rest: test_piped_table_…
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text)


# ---- piped tables ----


def test_piped_table_is_tab_separated_with_header(utc: None) -> None:
    grid = render.comms_table(dicts([*LIVE, comm(id=6, messageTemplate=HOSTILE)]), NAMES)
    lines = piped(grid).splitlines()
    header = lines[0].split("\t")
    assert header == [c.name for c in render.SHOW_COLUMNS]
    assert len(lines) == 1 + len(LIVE) + 1
    rows = [line.split("\t") for line in lines[1:]]
    assert {len(r) for r in rows} == {len(header)}
    assert rows[2] == ["4100", "5200", "5", "REMINDER", "1 SMS", "BRANDSMS", "",
                       "3 days left to reach your summer target!", "3", "yes", "2026-11-27T16:02:55.123+0000"]  # fmt: skip
    assert rows[0][7] == field((SAMPLES / "templates" / "start.html").read_text())  # whole, escaped
    assert rows[-1][7] == field(HOSTILE)
    assert piped(grid, headers=False).splitlines() == lines[1:]


def test_cut_and_awk_see_the_columns(cli: Cli) -> None:
    out = cli("show", "-f", SUMMER)
    assert out.code == 0, out
    types = subprocess.run(["cut", "-f3"], input=out.stdout, capture_output=True, text=True, check=True).stdout
    assert types.split() == ["type", "START", "FINISH", "REMINDER", "START", "CHANGE"]
    awk = subprocess.run(
        ["awk", "-F\t", "{print NF}"], input=out.stdout, capture_output=True, text=True, check=True
    ).stdout
    assert set(awk.split()) == {str(len(render.DESIRED) + 1)}
    bare = cli("show", "-f", SUMMER, "--no-headers")
    assert bare.stdout.splitlines() == out.stdout.splitlines()[1:]


def test_piped_show_files_golden(cli: Cli) -> None:
    out = cli("show", "-f", str(SAMPLES))
    assert out.code == 0, out
    golden("show-files-piped.txt", out.stdout.replace(str(SAMPLES), "sample-configs"))


# ---- diff ----


def diff_items() -> list[Item]:
    before = "Hello {{first_name}},\nOnly 2 days left to visit!\nSee you\n"
    after = "Hello {{first_name}},\n3 days left to reach your target!\nSee you\n"
    live = comm(messageTemplate=before, offsetDays=2)
    desired = {**live.values(), "messageTemplate": after, "offsetDays": 3}
    update = Item(4100, 5200, "REMINDER", 1, Action.WOULD_UPDATE, live=live, desired=desired)
    create = Item(4100, 5201, "START", 2, Action.WOULD_CREATE, desired={"messageTemplate": "Hi", "offsetDays": 0})
    return [update, create]


def test_diff_shows_a_real_unified_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = render.diff_table(diff_items(), NAMES)
    for width in (80, 100):
        text = at_terminal(grid, width, monkeypatch)
        golden(f"diff-{width}.txt", text)
        lines = text.splitlines()
        assert "-Only 2 days left to visit!" in lines and "+3 days left to reach your target!" in lines
    out = piped(grid)
    assert "-Only 2 days left to visit!\n+3 days left to reach your target!\n" in out
    table = out.split("\n\n")[0].splitlines()
    assert {len(line.split("\t")) for line in table} == {8}


def test_write_results_golden(monkeypatch: pytest.MonkeyPatch, utc: None) -> None:
    from commctl.errors import ApiError

    unchanged = Item(4100, 5200, "START", 2, Action.UNCHANGED, live=LIVE[0], desired=LIVE[0].api_dict())
    updated = Item(4100, 5200, "REMINDER", 1, Action.UPDATED, live=LIVE[2])
    updated.desired = {**LIVE[2].api_dict(), "offsetDays": 2}  # offsetDays: 3 -> 2
    failed = Item(4100, 9999, "FINISH", 2, Action.FAILED, desired={"messageTemplate": "Bye"})
    failed.failure = ApiError("HTTP 404 Not Found: target 9999 not found in target group 4100", 404, 310902)
    grid = render.results_table([unchanged, updated, failed], NAMES)
    for width in (80, 100, 200):
        text = at_terminal(grid, width, monkeypatch)
        golden(f"results-{width}.txt", text)
        assert "HTTP 404" in text and "offsetDays" in text  # what changed or failed is never what is hidden


# ---- Markdown ----


def test_markdown_neutralises_pipes_backticks_and_escapes() -> None:
    live = comm(communicationType="START", channelId=2, subjectTemplate="a | b `c`")
    desired = {**live.values(), "subjectTemplate": "\x1b[2J @team <b>"}
    item = Item(4100, 5200, "START", 2, Action.WOULD_UPDATE, live=live, desired=desired)
    md = render.markdown([item], "commctl diff")
    row = md.splitlines()[-1]
    assert row == "| would-update | 4100 | 5200 | START | 2 | `subjectTemplate`: `` a \\| b `c` `` → `\\x1b[2J @team <b>` |"
    assert row.count(" | ") == 5  # still six cells


# ---- stderr, annotations, closed pipes ----


def test_error_lines_escape_control_characters(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communicationz: 1\n")
    out = cli("validate", str(path))
    assert out.code == 3, out
    hostile = cli("upsert", "-g", "1", "-t", "1", "--type", "START", "-c", "E\x1b[2JMAIL", "--message", "m",
                  "--host", "sandbox")  # fmt: skip
    assert hostile.code == 3, hostile
    assert "E\\x1b[2JMAIL" in hostile.stderr and "\x1b" not in hostile.stderr


def test_github_annotations(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = write(tmp_path / "a,b:c%.yaml", "targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communicationz: 1\n")
    assert "::" not in cli("validate", str(bad)).stderr  # not outside GitHub Actions
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    out = cli("validate", str(bad))
    assert out.code == 3, out
    annotations = [line for line in out.stderr.splitlines() if line.startswith("::")]
    assert annotations == [
        "::error file=a%2Cb%3Ac%25.yaml,line=3,col=3::targets[0].communications: required field is missing",
        "::error file=a%2Cb%3Ac%25.yaml,line=4,col=3::targets[0].communicationz: unknown field 'communicationz' "
        "(did you mean 'communications'?)",
    ]
    warn = write(
        tmp_path / "w.yaml",
        "targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communications:\n"
        "  - {communicationType: REMINDER, channel: SMS, messageTemplate: 'Hi {{name', offsetDays: 1}\n",
    )
    warned = cli("validate", str(warn))
    assert warned.code == 0, warned
    [annotation] = [line for line in warned.stderr.splitlines() if line.startswith("::")]
    assert re.match(r"::warning file=w\.yaml,line=5,col=\d+::targets\[0\]\.communications\[0\]\.messageTemplate: ", annotation)
    assert github_annotation("error", "flags: unknown channel") is None  # no file position, no annotation
    assert github_annotation("error", "x.yaml:1:2: 100% done\r\nnext") == "::error file=x.yaml,line=1,col=2::100%25 done⏎next"


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "XDG_STATE_HOME": str(tmp_path)}
    for args in (["show", "-f", str(SAMPLES), "-o", "json"], ["show", "-f", str(SAMPLES)], ["--help"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "commctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first write, as with `| head -c 0`
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
        assert (code, err) in ((141, ""), (0, "")), (args, code, err)
    head = subprocess.run(
        f"{sys.executable} -m commctl show -f {SAMPLES} -o json | head -c 10",
        shell=True, capture_output=True, env=env, check=True,
    )  # fmt: skip
    assert head.stdout == b'[{"targetG' and head.stderr == b""


@pytest.mark.skipif(
    sys.gettrace() is not None, reason="a tracer (coverage, a debugger) slows the table's Python, not json's C"
)
def test_piped_tables_cost_about_what_json_costs() -> None:
    """SPEC 9: piped tables ≤ 1.5x the time of -o json (here: rendering 5,000 rows, median of five interleaved pairs;
    benchmarks/run.py compares 20,000)."""
    import timeit

    many = [comm(id=n, targetId=5200 + n // 4, messageTemplate=f"Hello {{{{first_name}}}}, {n} days left!\n" * 3)
            for n in range(5_000)]  # fmt: skip

    def as_json() -> None:
        to_json = Run(OutputOptions(output="json"))
        to_json.out_stream, to_json._output = io.StringIO(), "json"
        to_json.emit([c.api_dict() for c in many])

    def as_table() -> None:
        data = [c.api_dict() for c in many]
        piped(render.comms_table(data, NAMES))

    json_times, table_times = [], []
    for _ in range(5):  # interleaved, so that both see the same load on a shared machine
        json_times.append(timeit.timeit(as_json, number=1))
        table_times.append(timeit.timeit(as_table, number=1))
    ratios = sorted(t / j for t, j in zip(table_times, json_times, strict=True))
    assert ratios[len(ratios) // 2] <= 1.5, ratios  # the median pair: one lucky or unlucky run decides nothing


def in_pty(args: list[str], columns: int, env: dict[str, str]) -> str:
    """What commctl prints to a real pseudo-terminal `columns` wide (its own size detection, no COLUMNS)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "commctl", *args], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_a_real_terminal_gets_a_fitted_table(columns: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(PYTHONPATH=str(ROOT / "src"), TERM="xterm-256color", XDG_STATE_HOME=str(tmp_path))
    text = in_pty(["show", "-f", str(SAMPLES / "summer-challenge.yaml")], columns, env)
    lines = [line for line in text.splitlines() if line and not line.startswith("hidden to fit")]
    assert lines[0].split()[:4] == ["group", "target", "type", "channel"]
    assert set(lines[1].strip()) == {"─"}
    assert len(lines) == 2 + 5 and all(len(line) <= columns for line in lines), text
    assert [line.split()[2] for line in lines[2:]] == ["START", "FINISH", "REMINDER", "START", "CHANGE"]
    assert ("hidden to fit" in text) == (columns < 200)  # the note names what did not fit


def test_sandbox_request_log_shows_targets_as_data(sandbox_factory: Any) -> None:
    import socket
    from urllib.parse import urlsplit

    s = sandbox_factory("--verbose")
    parts = urlsplit(s.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(b"GET /v3/\x1b[2Jevil\x07 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while conn.recv(65536):
            pass
    assert s.process.stderr is not None
    # The server logs the request once it has answered it: wait for the line (pytest-timeout bounds a
    # line that never comes) instead of racing it with terminate().
    lines = []
    while "evil" not in (line := s.process.stderr.readline()) and line:
        lines.append(line)
    s.process.terminate()
    err = "".join([*lines, line, s.process.stderr.read()])
    s.process.wait(timeout=10)
    assert "GET /v3/\\x1b[2Jevil\\x07" in err and "\x1b" not in err, err
