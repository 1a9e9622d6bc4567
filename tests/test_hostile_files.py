"""Hostile files (SPEC 8.4): each is refused with exit 3 and one located line, quickly, never a traceback."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commctl.loader import MAX_FILE_BYTES, load, read_stdin
from commctl.parse import MAX_DEPTH

from .conftest import Cli, write

ONE = """\
targetGroupId: 4100
targets:
  - targetId: 5200
    communications:
      - communicationType: START
        channelId: 2
        messageTemplate: hi
"""


def refused(cli: Cli, *args: str, input: str | bytes | None = None) -> str:
    """The one problem `validate` reports, after checking the exit code and the shape of stderr."""
    out = cli("validate", *args, input=input)
    assert out.code == 3, out
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    error, hint = out.stderr.splitlines()
    assert error.startswith("error: ") and hint.startswith("hint: "), out
    return error.removeprefix("error: ")


def with_template(tmp_path: Path, reference: str) -> Path:
    """A file whose only communication takes its message from `reference`."""
    text = ONE.replace("messageTemplate: hi", f"messageTemplateFile: {json.dumps(reference)}")
    return write(tmp_path / "comms" / "c.yaml", text)


WHERE_TEMPLATE = "c.yaml:7:30: targets[0].communications[0].messageTemplateFile"


# ---- only regular files ----


def test_a_fifo_is_refused_without_waiting_for_a_writer(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    assert refused(cli, str(fifo)) == (
        f"{fifo}: not a regular file (a named pipe); only regular files and - (standard input) are read"
    )


def test_a_fifo_in_a_directory_is_reported_and_the_rest_still_checked(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.yaml", ONE)
    os.mkfifo(tmp_path / "d" / "b.yaml")
    assert refused(cli, str(tmp_path / "d")).startswith(
        f"{tmp_path / 'd' / 'b.yaml'}: not a regular file (a named pipe)"
    )


def test_a_device_is_refused_before_reading_it(cli: Cli) -> None:
    assert refused(cli, "/dev/zero").startswith("/dev/zero: not a regular file (a character device)")


def test_a_socket_is_refused(cli: Cli) -> None:
    with tempfile.TemporaryDirectory() as short:  # socket paths are limited to about 100 bytes
        path = Path(short) / "c.yaml"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))
            assert refused(cli, str(path)).startswith(f"{path}: not a regular file (a socket)")


def test_a_template_that_is_a_fifo_names_the_yaml_location(cli: Cli, tmp_path: Path) -> None:
    path = with_template(tmp_path, "msg.txt")
    os.mkfifo(path.parent / "msg.txt")
    line = refused(cli, str(path))
    assert line.endswith(
        f"{WHERE_TEMPLATE}: cannot read msg.txt: not a regular file (a named pipe); only regular "
        "files and - (standard input) are read"
    )


def test_a_directory_named_as_a_template(cli: Cli, tmp_path: Path) -> None:
    path = with_template(tmp_path, "templates")
    (path.parent / "templates").mkdir()
    assert refused(cli, str(path)).endswith(
        f"{WHERE_TEMPLATE}: cannot read templates: not a regular file (a directory); "
        "only regular files and - (standard input) are read"
    )


def test_a_broken_symlink_in_a_directory_is_reported(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.yaml", ONE)
    (tmp_path / "d" / "b.yaml").symlink_to(tmp_path / "gone.yaml")
    assert refused(cli, str(tmp_path / "d")) == f"{tmp_path / 'd' / 'b.yaml'}: cannot read: No such file or directory"


# ---- one size limit for every source ----


def test_stdin_over_the_limit(cli: Cli) -> None:
    big = ONE + "#" * (MAX_FILE_BYTES - len(ONE)) + "\n"
    assert refused(cli, "-", input=big) == "<stdin>: larger than 8 MiB"


def test_stdin_at_the_limit_is_read(cli: Cli) -> None:
    text = ONE + "#" * (MAX_FILE_BYTES - len(ONE) - 1) + "\n"
    assert len(text) == MAX_FILE_BYTES
    out = cli("validate", "-", input=text)
    assert out.code == 0, out


def test_a_terminal_on_stdin_is_refused_rather_than_waited_on() -> None:
    class Tty(io.BytesIO):
        def isatty(self) -> bool:
            return True

    with pytest.raises(ValueError, match="standard input is a terminal"):
        read_stdin(Tty(ONE.encode()))


def _commctl(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "commctl", *args], capture_output=True, text=True, timeout=60, env=env, **kwargs
    )


def test_dev_stdin_from_a_pipe_is_refused_not_read_unbounded() -> None:
    done = _commctl("validate", "/dev/stdin", input="x" * (MAX_FILE_BYTES + 10))
    assert done.returncode == 3, done
    assert done.stderr.splitlines()[0] == (
        "error: /dev/stdin: not a regular file (a named pipe); only regular files and - (standard input) are read"
    )


def test_dev_stdin_redirected_from_a_big_file_keeps_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(ONE + "#" * MAX_FILE_BYTES + "\n")
    with big.open("rb") as f:
        done = _commctl("validate", "/dev/stdin", stdin=f)
    assert done.returncode == 3, done
    assert done.stderr.splitlines()[0] == "error: /dev/stdin: larger than 8 MiB"


def test_a_template_over_the_limit(cli: Cli, tmp_path: Path) -> None:
    path = with_template(tmp_path, "big.html")
    (path.parent / "big.html").write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    assert refused(cli, str(path)).endswith(f"{WHERE_TEMPLATE}: cannot read big.html: larger than 8 MiB")


# ---- templates stay inside the directory of the file that names them ----


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "secret.txt"
    path.write_text("TOKEN=hunter2")
    yield path


@pytest.mark.parametrize("reference", ["../secret.txt", "templates/../../secret.txt", "./../secret.txt"])
def test_dot_dot_escapes_are_refused(cli: Cli, tmp_path: Path, secret: Path, reference: str) -> None:
    path = with_template(tmp_path, reference)
    (path.parent / "templates").mkdir()
    line = refused(cli, str(path))
    assert line == (
        f"{path.parent / WHERE_TEMPLATE}: cannot read {reference}: it resolves outside {path.parent}; template "
        "files must stay inside the directory of this file"
    )
    assert "hunter2" not in line


@pytest.mark.parametrize("reference", ["/proc/self/environ", "/etc/hostname", "//etc/hostname"])
def test_absolute_paths_are_refused(cli: Cli, tmp_path: Path, reference: str) -> None:
    assert refused(cli, str(with_template(tmp_path, reference))).endswith(
        f"{WHERE_TEMPLATE}: cannot read {reference}: absolute paths are refused: give a path relative to the "
        "directory of this file"
    )


def test_a_symlink_pointing_outside_is_refused(cli: Cli, tmp_path: Path, secret: Path) -> None:
    path = with_template(tmp_path, "t/msg.txt")
    (path.parent / "t").mkdir()
    (path.parent / "t" / "msg.txt").symlink_to(secret)
    assert "cannot read t/msg.txt: it resolves outside" in refused(cli, str(path))


def test_a_symlinked_directory_pointing_outside_is_refused(cli: Cli, tmp_path: Path, secret: Path) -> None:
    path = with_template(tmp_path, "t/secret.txt")
    (path.parent / "t").symlink_to(tmp_path)
    assert "cannot read t/secret.txt: it resolves outside" in refused(cli, str(path))


def test_a_symlink_loop_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = with_template(tmp_path, "loop")
    (path.parent / "loop").symlink_to(path.parent / "loop")
    assert f"{WHERE_TEMPLATE}: cannot read loop: " in refused(cli, str(path))


def test_a_nul_in_a_template_path(cli: Cli, tmp_path: Path) -> None:
    path = with_template(tmp_path, "a\x00b")
    assert refused(cli, str(path)).endswith(f"{WHERE_TEMPLATE}: cannot read a\\x00b: the path contains a NUL character")


def test_paths_that_stay_inside_are_read(tmp_path: Path) -> None:
    path = with_template(tmp_path, "t/../t/msg.txt")
    (path.parent / "t").mkdir()
    (path.parent / "real.txt").write_text("inside")
    (path.parent / "t" / "msg.txt").symlink_to(path.parent / "real.txt")
    assert load([str(path)])[0].fields["messageTemplate"] == "inside"


def test_templates_of_stdin_documents_are_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: Path
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "msg.txt").write_text("from cwd")
    monkeypatch.chdir(tmp_path / "work")
    text = ONE.replace("messageTemplate: hi", "messageTemplateFile: msg.txt")
    assert load(["-"], stdin=io.BytesIO(text.encode()))[0].fields["messageTemplate"] == "from cwd"
    with pytest.raises(Exception, match="resolves outside"):
        load(["-"], stdin=io.BytesIO(text.replace("msg.txt", "../secret.txt").encode()))


def test_a_bad_template_in_defaults_is_one_problem_not_one_per_communication(cli: Cli, tmp_path: Path) -> None:
    text = ONE.replace("targets:\n", "defaults:\n  messageTemplateFile: ../secret.txt\ntargets:\n").replace(
        "        messageTemplate: hi\n", ""
    )
    text += "      - communicationType: FINISH\n        channelId: 2\n"
    path = write(tmp_path / "comms" / "c.yaml", text)
    assert refused(cli, str(path)).startswith(f"{path}:3:24: defaults.messageTemplateFile: cannot read ../secret.txt")


# ---- YAML 1.2 core schema ----


def field_value(tmp_path: Path, line: str) -> object:
    text = ONE.replace("messageTemplate: hi", f"messageTemplate: hi\n        {line}")
    return load([str(write(tmp_path / "c.yaml", text))])[0].fields


@pytest.mark.parametrize(
    ("written", "value"),
    [("010", 10), ("0o10", 8), ("0x10", 16), ("+7", 7), ("0", 0), ("!!int 010", 10), ("!!int '12'", 12)],
)
def test_integers_follow_yaml_1_2(tmp_path: Path, written: str, value: int) -> None:
    assert field_value(tmp_path, f"offsetDays: {written}") == {"messageTemplate": "hi", "offsetDays": value}


@pytest.mark.parametrize("written", ["yes", "no", "on", "off", "y", "n", "Yes", "2026-11-27", "1:30", "1_000", "0b11"])
def test_yaml_1_1_values_are_text(tmp_path: Path, written: str) -> None:
    assert field_value(tmp_path, f"sender: {written}") == {"messageTemplate": "hi", "sender": written}


@pytest.mark.parametrize("written", ["~", "null", "Null", "NULL", ""])
def test_nulls(tmp_path: Path, written: str) -> None:
    assert field_value(tmp_path, f"offsetDays: {written}") == {"messageTemplate": "hi"}


def test_active_yes_is_a_type_error_with_a_hint(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", ONE + "        active: yes\n")
    assert refused(cli, str(path)) == (
        f"{path}:8:17: targets[0].communications[0].active: Input should be a valid boolean, got 'yes'; write "
        "true or false (YAML 1.2 reads yes, no, on and off as text)"
    )


def test_sexagesimal_is_text_so_a_type_error(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", ONE + "        offsetDays: 1:30\n")
    assert refused(cli, str(path)) == (
        f"{path}:8:21: targets[0].communications[0].offsetDays: Input should be a valid integer, got '1:30'"
    )


@pytest.mark.parametrize(("written", "shown"), [(".inf", "inf"), ("-.Inf", "-inf"), (".nan", "nan"), ("1e3", "1000.0")])
def test_floats_are_floats_so_a_type_error_for_a_count(cli: Cli, tmp_path: Path, written: str, shown: str) -> None:
    path = write(tmp_path / "c.yaml", ONE + f"        offsetDays: {written}\n")
    assert refused(cli, str(path)).endswith(f"offsetDays: Input should be a valid integer, got {shown}")


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("!!binary aGk=", "unsupported tag 'tag:yaml.org,2002:binary' (only str, int, float, bool and null)"),
        ("!!python/object:os.system x", "unsupported tag 'tag:yaml.org,2002:python/object:os.system'"),
        ("!custom x", "unsupported tag '!custom'"),
        ("!!int ten", "'ten' is not a valid int"),
        ("!!set {a: null}", "unsupported tag 'tag:yaml.org,2002:set'"),
        ("1" * 5000, "a number of more than 4000 digits"),
    ],
)
def test_tags_and_numbers_outside_the_core_schema(cli: Cli, tmp_path: Path, written: str, message: str) -> None:
    path = write(tmp_path / "c.yaml", ONE + f"        offsetDays: {written}\n")
    assert message in refused(cli, str(path))


# ---- expanded size and depth, not node count ----


@pytest.mark.slow
def test_a_plain_file_of_13000_communications_loads(tmp_path: Path) -> None:
    types = ("START", "FINISH", "CHANGE", "REMINDER")
    lines = ["targetGroupId: 4100", "defaults: {channelId: 2, sender: loyalty@brand.example}", "targets:"]
    for t in range(13_000 // 4):
        lines += [f"  - targetId: {10_000 + t}", "    communications:"]
        for kind in types:
            body = f"Hello {{{{name}}}}, your {kind.lower()} message for target {t}: " + "lorem ipsum " * 20
            lines += [
                f"      - communicationType: {kind}",
                f"        subjectTemplate: Target {t}",
                f"        messageTemplate: {json.dumps(body)}",
                "        offsetDays: 3",
            ]
    path = write(tmp_path / "big.yaml", "\n".join(lines) + "\n")
    assert 4_000_000 < path.stat().st_size < MAX_FILE_BYTES
    items = load([str(path)])
    assert len(items) == 13_000
    assert items[-1].where.endswith(f"big.yaml:{len(lines) - 3}:9: targets[3249].communications[3]")


def test_one_big_template_aliased_200_times_is_refused_where_the_limit_is_crossed(cli: Cli, tmp_path: Path) -> None:
    big = "x" * 1_000_000
    comms = "".join(
        f"      - {{communicationType: START, channelId: {c}, messageTemplate: *big}}\n" for c in range(1, 200)
    )
    text = (
        f"targetGroupId: 1\ndefaults: {{sender: &big {big}}}\ntargets:\n  - targetId: 1\n    communications:\n{comms}"
    )
    path = write(tmp_path / "c.yaml", text)
    # 33 aliases of 1,000,001 characters each cross 32 MiB: the 33rd is on line 5 + 33
    assert (
        refused(cli, str(path))
        == f"{path}:38:68: invalid YAML: aliases expand the input past 32 MiB of text (alias bomb?)"
    )


def test_the_same_big_template_shared_through_defaults_is_fine(tmp_path: Path) -> None:
    comms = "".join(f"      - {{communicationType: START, channelId: {c}}}\n" for c in range(1, 201))
    text = f"targetGroupId: 1\ndefaults: {{messageTemplate: {'x' * 1_000_000}}}\ntargets:\n  - targetId: 1\n    communications:\n{comms}"
    items = load([str(write(tmp_path / "c.yaml", text))])
    assert len(items) == 200 and all(len(d.fields["messageTemplate"]) == 1_000_000 for d in items)


def test_a_billion_laughs_is_refused(cli: Cli, tmp_path: Path) -> None:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    assert "aliases expand the input past 32 MiB of text (alias bomb?)" in refused(
        cli, str(write(tmp_path / "c.yaml", "\n".join(lines) + "\n"))
    )


def test_the_alias_budget_spans_the_documents_of_a_file(cli: Cli, tmp_path: Path) -> None:
    doc = "a: &a " + "y" * 1_000_000 + "\nb: [" + ", ".join(["*a"] * 20) + "]\n"
    assert "alias bomb?" in refused(cli, str(write(tmp_path / "c.yaml", "---\n".join([doc, doc]))))


def test_aliases_and_merge_keys_that_stay_small_are_fine(tmp_path: Path) -> None:
    text = (
        "targetGroupId: 1\ntargets:\n  - targetId: 1\n    communications:\n"
        "      - &c {communicationType: START, channelId: 1, messageTemplate: &m hello}\n"
        "      - {<<: *c, communicationType: FINISH, subjectTemplate: *m}\n"
        "      - {<<: [{offsetDays: 2}, *c], communicationType: REMINDER}\n"
    )
    items = load([str(write(tmp_path / "c.yaml", text))])
    assert [(d.type, d.fields) for d in items] == [
        ("START", {"messageTemplate": "hello"}),
        ("FINISH", {"subjectTemplate": "hello", "messageTemplate": "hello"}),
        ("REMINDER", {"messageTemplate": "hello", "offsetDays": 2}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "1:8: invalid YAML: unknown alias *a"),
        ("a: *nope\n", "1:4: invalid YAML: unknown alias *nope"),
        ("<<: 3\n", "1:5: invalid YAML: a merge key (<<) needs a mapping or a list of mappings"),
        ("? [a, b]\n: 1\n", "1:3: invalid YAML: mapping keys must be plain values"),
    ],
)
def test_alias_and_key_misuse(cli: Cli, tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.yaml", text)
    assert refused(cli, str(path)) == f"{path}:{message}"


@pytest.mark.parametrize("name", ["c.yaml", "c.json"])
def test_deep_nesting_is_refused_by_depth(cli: Cli, tmp_path: Path, name: str) -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    path = write(tmp_path / name, deep)
    kind = "JSON" if name.endswith("json") else "YAML"
    assert (
        refused(cli, str(path)) == f"{path}:1:{MAX_DEPTH + 1}: invalid {kind}: nesting deeper than {MAX_DEPTH} levels"
    )


@pytest.mark.parametrize("name", ["c.yaml", "c.json"])
def test_very_deep_nesting_is_refused_too(cli: Cli, tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, "[" * 200_000 + "]" * 200_000)
    assert "nesting" in refused(cli, str(path))


def test_aliases_cannot_nest_past_the_depth_limit(cli: Cli, tmp_path: Path) -> None:
    half = MAX_DEPTH // 2 + 1
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    assert f"nesting deeper than {MAX_DEPTH} levels" in refused(cli, str(write(tmp_path / "c.yaml", text)))


# ---- encodings and odd text ----


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert load([str(write(tmp_path / "c.yaml", "\ufeff" + ONE))])[0].target == 5200
    doc = {
        "targetGroupId": 1,
        "targets": [
            {"targetId": 2, "communications": [{"communicationType": "START", "channelId": 1, "messageTemplate": "m"}]}
        ],
    }
    assert load([str(write(tmp_path / "c.json", "\ufeff" + json.dumps(doc)))])[0].target == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (ONE.encode() + b"\x00", "not a text file (binary content)"),
        (ONE.encode().replace(b"hi", b"h\xffi"), "not valid UTF-8 (byte 0xff at line 7, column 27)"),
        (ONE.encode("utf-16"), "not a text file (binary content)"),
    ],
)
def test_bytes_that_are_not_utf8_text(cli: Cli, tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    assert message in refused(cli, str(path))


def test_control_characters_in_keys_and_names_stay_on_one_line(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "odd\nname\x1b[31m.yaml", ONE.replace("channelId: 2", '"chan\\nnel\\u2028Id\\e[2J": 2'))
    line = refused(cli, str(path))
    assert "\x1b" not in line and "\u2028" not in line
    assert (
        "odd\\nname\\x1b[31m.yaml:6:9: targets[0].communications[0].chan\\nnel\\u2028Id\\x1b[2J: unknown field" in line
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"targetGroupId": 1, "targetGroupId": 2}',
            "1:22: invalid JSON: duplicate key 'targetGroupId' (first defined at line 1, column 2)",
        ),
        ('{"a": 1, "\\u0061": 2}', "1:10: invalid JSON: duplicate key 'a' (first defined at line 1, column 2)"),
        ('{"targetGroupId": ' + "9" * 4100 + "}", "1:19: invalid JSON: a number of more than 4000 digits"),
        ('{"targetGroupId": ' + "9" * 5000 + "}", "1:19: invalid JSON: a number of more than 4000 digits"),
        ('{"a": "\\udc00"}', "1:8: invalid JSON: text contains a lone UTF-16 surrogate escape"),
    ],
)
def test_json_traps(cli: Cli, tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.json", text)
    assert refused(cli, str(path)) == f"{path}:{message}"


def test_an_escaped_backslash_before_u_is_not_a_surrogate(tmp_path: Path) -> None:
    doc = {
        "targetGroupId": 1,
        "targets": [
            {
                "targetId": 2,
                "communications": [
                    {"communicationType": "START", "channelId": 1, "messageTemplate": "\\ud83d \\\ud83d\ude00"}
                ],
            }
        ],
    }
    text = json.dumps(doc)
    assert "\\\\ud83d" in text
    assert load([str(write(tmp_path / "c.json", text))])[0].fields["messageTemplate"] == "\\ud83d \\\U0001f600"


# ---- anything at all: exit 0 or 3, never a traceback ----

FIELDS = ["targetGroupId", "targets", "targetId", "communications", "communicationType", "channelId", "channel",
          "defaults", "sender", "messageTemplate", "messageTemplateFile", "offsetDays", "active", "<<"]  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    st.sampled_from(["START", "REMINDER", "SMS", "yes", "010", "1:30", "../x", "/dev/zero", "-"]),
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=4)), inner, max_size=5),
    ),
    max_leaves=25,
)
YAMLISH = st.lists(
    st.sampled_from(["-", ":", " ", "\n", "  ", "{", "}", "[", "]", ",", "&a", "*a", "!!int", "!x", "|", ">", "'", '"',
                     "#", "<<", "---", "...", "%YAML 1.2", "?", "\t", "\\", "\x85", "\ufeff", *FIELDS]),
    max_size=40,
).map("".join)  # fmt: skip


def assert_handled(cli: Cli, path: Path) -> None:
    out = cli("validate", str(path))
    assert out.code in (0, 3), out
    assert "Traceback" not in out.stderr
    if out.code == 3:
        assert all(line.startswith(("error: ", "hint: ", "... and ")) for line in out.stderr.splitlines()), out


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(raw=st.binary(max_size=300), name=st.sampled_from(["f.yaml", "f.json"]))
def test_random_bytes(cli: Cli, tmp_path: Path, raw: bytes, name: str) -> None:
    (tmp_path / name).write_bytes(raw)
    assert_handled(cli, tmp_path / name)


@FUZZ
@given(text=YAMLISH)
def test_random_yaml_syntax(cli: Cli, tmp_path: Path, text: str) -> None:
    assert_handled(cli, write(tmp_path / "f.yaml", text))


@FUZZ
@given(data=DATA, as_json=st.booleans())
def test_random_documents(cli: Cli, tmp_path: Path, data: object, as_json: bool) -> None:
    import yaml

    text = json.dumps(data) if as_json else yaml.safe_dump(data, allow_unicode=True)
    assert_handled(cli, write(tmp_path / ("f.json" if as_json else "f.yaml"), text))


def test_a_huge_key_is_named_shortly(cli: Cli, tmp_path: Path) -> None:
    doc = {"targetGroupId": 1, "k" * 100_000: 1, "targets": [{"targetId": 1, "communications": [
        {"communicationType": "START", "channelId": 1}]}]}  # fmt: skip
    path = write(tmp_path / "c.json", json.dumps(doc))
    assert refused(cli, str(path)) == (
        f"{path}:1:22: {'k' * 57}...: unknown field '{'k' * 57}...' (expected one of: targetGroupId, defaults, targets)"
    )


def test_a_closed_stdin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(ValueError, match="there is no standard input"):
        read_stdin()
