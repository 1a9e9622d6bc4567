"""Loading files: every bad input gets FILE:LINE:COL, the field path, and exit 3 - never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commctl.errors import InputError
from commctl.loader import load

from .conftest import SAMPLES, Cli, write

GOOD = """\
targetGroupId: 4100
defaults:
  channelId: 2
  sender: loyalty@brand.example
targets:
  - targetId: 5200
    communications:
      - communicationType: START
        subjectTemplate: Hello
        messageTemplate: "Started"
      - communicationType: REMINDER
        channel: SMS
        sender: BRANDSMS
        messageTemplate: "3 days left"
        offsetDays: 3
        active: false
"""


def problems(tmp_path: Path, text: str | bytes, name: str = "comms.yaml") -> list[str]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load([str(path)])
    return info.value.problems


def test_good_file_merges_defaults_under_each_communication(tmp_path: Path) -> None:
    items = load([str(write(tmp_path / "c.yaml", GOOD))])
    assert [(d.group, d.target, d.type, d.channel) for d in items] == [
        (4100, 5200, "START", 2),
        (4100, 5200, "REMINDER", "SMS"),
    ]
    assert items[0].fields == {
        "sender": "loyalty@brand.example",
        "subjectTemplate": "Hello",
        "messageTemplate": "Started",
    }
    assert items[1].fields == {"sender": "BRANDSMS", "messageTemplate": "3 days left", "offsetDays": 3, "active": False}
    assert items[1].where.endswith("c.yaml:11:9: targets[0].communications[1]")


def test_every_sample_config_validates(cli: Cli) -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    assert files
    for f in files:
        out = cli("validate", str(f), "--strict")
        assert out.code == 0, f"{f}: {out}"


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    lines = problems(tmp_path, "targetGroupId: 4100\ntargets: [\n  - targetId: 1\n")
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 'comms.yaml'}:3:")
    assert "invalid YAML" in lines[0]


def test_wrong_type(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("offsetDays: 3", "offsetDays: three"))
    assert line == (
        f"{tmp_path / 'comms.yaml'}:15:21: targets[0].communications[1].offsetDays: "
        "Input should be a valid integer, got 'three'"
    )


def test_number_as_text_is_refused_with_a_quoting_hint(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("sender: BRANDSMS", "sender: 12345"))
    assert ":13:17: targets[0].communications[1].sender: Input should be a valid string, got 12345; quote it" in line


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("offsetDays: 3", "offsetDay: 3"))
    assert line.endswith(
        ":15:9: targets[0].communications[1].offsetDay: unknown field 'offsetDay' (did you mean 'offsetDays'?)"
    )


def test_duplicate_mapping_key(tmp_path: Path) -> None:
    [line] = problems(
        tmp_path, GOOD.replace("        offsetDays: 3\n", "        offsetDays: 3\n        offsetDays: 4\n")
    )
    assert ":16:9: invalid YAML: duplicate key 'offsetDays' (first defined at line 15, column 9)" in line


def test_duplicate_natural_key_names_both_places(tmp_path: Path) -> None:
    text = GOOD + "      - communicationType: START\n        messageTemplate: again\n"
    [line] = problems(tmp_path, text)
    assert ":17:9: targets[0].communications[2]: duplicate communication group 4100 target 5200 START/2" in line
    assert "first declared at " in line and ":8:9: targets[0].communications[0]" in line


def test_duplicate_natural_key_across_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", GOOD)
    b = write(tmp_path / "b.yaml", GOOD)
    with pytest.raises(InputError) as info:
        load([str(a), str(b)])
    assert len(info.value.problems) == 2
    assert all("duplicate communication" in p and str(a) in p for p in info.value.problems)


def test_empty_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == [
        f"{tmp_path / 'comms.yaml'}: empty: no documents (expected targetGroupId and targets)"
    ]


def test_comment_only_file_is_empty(tmp_path: Path) -> None:
    assert "empty: no documents" in problems(tmp_path, "# nothing here\n")[0]


def test_directory_without_yaml(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "notes.txt", "hello")
    with pytest.raises(InputError) as info:
        load([str(tmp_path / "d")])
    assert info.value.problems == [f"{tmp_path / 'd'}: directory has no *.yaml, *.yml or *.json files"]


def test_directory_is_read_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "d" / "b.yaml", GOOD.replace("5200", "5202"))
    write(tmp_path / "d" / "a" / "x.yml", GOOD.replace("5200", "5201"))
    write(
        tmp_path / "d" / "c.json",
        '{"targetGroupId": 4100, "targets": [{"targetId": 5203, "communications": '
        '[{"communicationType": "START", "channelId": 2, "messageTemplate": "m"}]}]}',
    )
    items = load([str(tmp_path / "d")])
    assert [d.target for d in items] == [5201, 5201, 5202, 5202, 5203]


def test_binary_file(tmp_path: Path) -> None:
    assert problems(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00") == [
        f"{tmp_path / 'comms.yaml'}: not a text file (binary content)"
    ]


def test_not_utf8(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("Hello", "H\xe9llo").encode("latin-1"))
    assert line == f"{tmp_path / 'comms.yaml'}: not valid UTF-8 (byte 0xe9 at line 9, column 27)"


def test_huge_number(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("offsetDays: 3", "offsetDays: 99999999999999999999999"))
    assert ":15:21: targets[0].communications[1].offsetDays: Input should be less than or equal to 2147483647" in line


def test_negative_offset_days(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("offsetDays: 3", "offsetDays: -1"))
    assert "targets[0].communications[1].offsetDays: Input should be greater than or equal to 0, got -1" in line


def test_unknown_communication_type(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("communicationType: START", "communicationType: STRAT"))
    assert line.endswith(
        ":8:28: targets[0].communications[0].communicationType: expected one of START, FINISH, "
        "CHANGE, REMINDER, got 'STRAT' (did you mean 'START'?)"
    )


def test_missing_channel(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("  channelId: 2\n", ""))
    assert line.endswith(
        ":7:9: targets[0].communications[0]: one of channelId or channel is required (here or in defaults)"
    )


def test_both_channel_and_channel_id(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("        channel: SMS\n", "        channel: SMS\n        channelId: 1\n"))
    assert "targets[0].communications[1]: give either channelId or channel, not both" in line


def test_missing_required_fields(tmp_path: Path) -> None:
    lines = problems(tmp_path, "targetGroupId: 4100\ntargets:\n  - communications: []\n")
    assert lines == [
        f"{tmp_path / 'comms.yaml'}:3:5: targets[0].targetId: required field is missing",
        f"{tmp_path / 'comms.yaml'}:3:21: targets[0].communications: List should have at least 1 item after "
        "validation, not 0",
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "just text\n") == [
        f"{tmp_path / 'comms.yaml'}:1:1: expected a mapping with targetGroupId and targets, got str"
    ]


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        bomb.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    [line] = problems(tmp_path, "\n".join(bomb) + "\n")
    assert (
        line
        == f"{tmp_path / 'comms.yaml'}:8:8: invalid YAML: aliases expand the input past 32 MiB of text (alias bomb?)"
    )


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    [line] = problems(tmp_path, '{\n  "targetGroupId": 4100,\n}\n', name="c.json")
    assert line == f"{tmp_path / 'c.json'}:3:1: invalid JSON: Expecting property name enclosed in double quotes"


def test_template_file_is_read_byte_for_byte_relative_to_the_yaml(tmp_path: Path) -> None:
    raw = "Line one  \r\n\tline two\n\n"
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "msg.txt").write_bytes(raw.encode())
    text = GOOD.replace('messageTemplate: "Started"', "messageTemplateFile: t/msg.txt")
    items = load([str(write(tmp_path / "c.yaml", text))])
    assert items[0].fields["messageTemplate"] == raw


def test_missing_template_file_names_the_yaml_location(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace('messageTemplate: "Started"', "messageTemplateFile: nope.html"))
    assert line.endswith(
        ":10:30: targets[0].communications[0].messageTemplateFile: cannot read nope.html: no such file"
    )


def test_template_file_not_utf8_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "bad.html").write_bytes(b"caf\xe9")
    [line] = problems(tmp_path, GOOD.replace('messageTemplate: "Started"', "messageTemplateFile: bad.html"))
    assert "cannot read bad.html: not valid UTF-8 (byte 0xe9 at line 1, column 4)" in line


def test_stdin(tmp_path: Path) -> None:
    import io

    items = load(["-"], stdin=io.BytesIO(GOOD.encode()))
    assert items[0].where.startswith("<stdin>:8:9")


def test_multi_document_and_merge_keys(tmp_path: Path) -> None:
    text = (
        GOOD + "---\ntargetGroupId: 4200\ntargets:\n  - targetId: 5300\n    communications:\n"
        "      - &c {communicationType: START, channelId: 1, messageTemplate: hi}\n"
        "      - {<<: *c, communicationType: FINISH}\n"
    )
    items = load([str(write(tmp_path / "c.yaml", text))])
    assert [(d.group, d.type, d.channel, d.fields.get("messageTemplate")) for d in items][2:] == [
        (4200, "START", 1, "hi"),
        (4200, "FINISH", 1, "hi"),
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load([str(tmp_path / "nope.yaml")])
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file or directory"]


def test_cli_reports_problems_with_exit_3_and_no_traceback(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", GOOD.replace("offsetDays: 3", "offsetDays: -3").replace("START", "BEGIN"))
    out = cli("validate", str(path))
    assert out.code == 3, out
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"error: {path}:8:28: targets[0].communications[0].communicationType: expected one of")
    assert lines[1].startswith(f"error: {path}:15:21: targets[0].communications[1].offsetDays:")
    assert lines[2].startswith("hint: ")
    assert "Traceback" not in out.stderr


def test_cli_validate_json_error_shape(cli: Cli, tmp_path: Path) -> None:
    out = cli("validate", str(write(tmp_path / "c.yaml", "")), "-o", "json")
    assert out.code == 3, out
    assert out.json() == {
        "error": {
            "kind": "input",
            "message": f"{tmp_path / 'c.yaml'}: empty: no documents (expected targetGroupId and targets)",
            "hint": "fix the file(s) and run `commctl validate` to check them offline",
        }
    }


def test_escaped_surrogate_pairs_in_json_are_joined_and_lone_halves_refused(tmp_path: Path) -> None:
    doc = {
        "targetGroupId": 1,
        "targets": [
            {
                "targetId": 2,
                "communications": [{"communicationType": "START", "channelId": 1, "messageTemplate": "smile 😀"}],
            }
        ],
    }
    items = load([str(write(tmp_path / "c.json", json.dumps(doc)))])
    assert "\\ud83d" in json.dumps(doc) and items[0].fields["messageTemplate"] == "smile 😀"
    lone = json.dumps(doc).replace("\\ude00", "")
    [line] = problems(tmp_path, lone, name="c.json")
    column = lone.index("\\ud83d") + 1  # the escape itself, not the string that holds it
    assert line.endswith(f":1:{column}: invalid JSON: text contains a lone UTF-16 surrogate escape")
    [line] = problems(tmp_path, GOOD.replace('"Started"', '"half \\ud83d"'))
    assert ":10:" in line and "invalid YAML" in line


def test_json_list_of_documents_keeps_locations(tmp_path: Path) -> None:
    doc = {
        "targetGroupId": 1,
        "targets": [
            {"targetId": 2, "communications": [{"communicationType": "START", "channelId": 1, "messageTemplate": "m"}]}
        ],
    }
    text = json.dumps([doc, {**doc, "targetGroupId": 3, "extra": 1}], indent=1)
    [line] = problems(tmp_path, text, name="c.json")
    assert (
        line
        == f"{tmp_path / 'c.json'}:31:3: extra: unknown field 'extra' (expected one of: targetGroupId, defaults, targets)"
    )
    items = load([str(write(tmp_path / "ok.json", json.dumps([doc, {**doc, "targetGroupId": 3}])))])
    assert [d.group for d in items] == [1, 3]
