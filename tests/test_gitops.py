"""The GitOps workflow: diff exit codes, export round trips, reports, markdown, template checks, schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from commctl.templates import sms_length, unbalanced_braces

from .conftest import ROOT, SAMPLES, Cli, Sandbox, write

SUMMER = str(SAMPLES / "summer-challenge.yaml")


def changed_copy(tmp_path: Path) -> Path:
    """The summer sample with one subject and one template line changed, and one new communication."""
    text = (SAMPLES / "summer-challenge.yaml").read_text()
    text = text.replace('"Your summer challenge is over"', '"Your summer challenge has ended"')
    text = text.replace("messageTemplateFile: templates/start.html", "messageTemplateFile: start.html", 1)
    text += "      - communicationType: FINISH\n        messageTemplate: Bye\n"
    write(tmp_path / "start.html", (SAMPLES / "templates" / "start.html").read_text().replace("5000", "6000"))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "start.html").write_text((SAMPLES / "templates" / "start.html").read_text())
    return write(tmp_path / "summer.yaml", text)


def test_diff_exit_codes_and_json_changes(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    in_sync = cli("diff", "-f", SUMMER)
    assert in_sync.code == 0, in_sync
    assert (in_sync.stdout, in_sync.stderr) == ("", "in sync: 5 unchanged\n")

    path = changed_copy(tmp_path)
    report = tmp_path / "diff.json"
    out = cli("diff", "-f", str(path), "-o", "json", "--report", str(report), "--verbose")
    assert out.code == 7, out
    assert "> POST" not in out.stderr
    doc = out.json()
    assert doc == json.loads(report.read_text())
    assert doc["summary"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "failed": 0,
        "would-create": 1,
        "would-update": 2,
    }
    by = {(r["targetId"], r["communicationType"], r["channelId"]): r for r in doc["results"]}
    assert by[(5200, "FINISH", 2)]["changes"] == {
        "subjectTemplate": {"from": "Your summer challenge is over", "to": "Your summer challenge has ended"}
    }
    start = by[(5200, "START", 2)]["changes"]["messageTemplate"]
    assert "5000" in start["from"] and "6000" in start["to"]
    assert by[(5201, "FINISH", 2)]["action"] == "would-create" and by[(5201, "FINISH", 2)]["before"] is None
    assert by[(5201, "FINISH", 2)]["changes"]["messageTemplate"] == {"from": None, "to": "Bye"}
    assert by[(5201, "START", 2)] == {**by[(5201, "START", 2)], "action": "unchanged", "changes": {}}


def test_diff_table_shows_a_unified_diff_of_long_templates(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("diff", "-f", str(changed_copy(tmp_path)))
    assert out.code == 7, out
    assert "--- live" in out.stdout and "+++ desired" in out.stdout
    assert "-    <p>Spend 5000 before" in out.stdout and "+    <p>Spend 6000 before" in out.stdout
    lines = out.stdout.splitlines()
    assert "-Your summer challenge is over" in lines and "+Your summer challenge has ended" in lines
    assert "1 would-create, 2 would-update" in out.stderr


def test_markdown_summary_for_pull_requests(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("diff", "-f", str(changed_copy(tmp_path)), "-o", "markdown")
    assert out.code == 7, out
    lines = out.stdout.splitlines()
    assert lines[0] == "### commctl diff"
    assert lines[2] == "**3** unchanged · **1** would-create · **2** would-update"
    assert lines[4] == "| action | group | target | type | channel | fields |"
    assert len([line for line in lines if line.startswith("| would-")]) == 3
    assert "`subjectTemplate`: `Your summer challenge is over` → `Your summer challenge has end…`" in out.stdout
    assert all(len(line) < 300 for line in lines)
    # the long template change also as a unified diff, old and new lines apart
    diff = lines[lines.index("```diff") + 1 : -1]
    assert diff[:2] == [
        "--- live: group 4100 target 5200 START messageTemplate",
        "+++ desired: group 4100 target 5200 START messageTemplate",
    ]
    assert "-    <p>Spend 5000 before the end of August and earn 500 bonus points.</p>" in diff
    assert "+    <p>Spend 6000 before the end of August and earn 500 bonus points.</p>" in diff
    assert lines[-1] == "```"
    applied = cli("upsert", "-f", str(changed_copy(tmp_path / "again")), "-o", "markdown")
    assert applied.code == 0, applied
    assert applied.stdout.splitlines()[2] == "**1** created · **2** updated · **3** unchanged"


def test_export_then_upsert_is_a_no_op_and_reexport_is_identical(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    tricky = [
        "line one\nline two\n",
        "no trailing newline\nsecond",
        "  leading spaces\n",
        "trailing spaces   \nx\n",
        "windows\r\nline\r\n",
        "yes",
        "123",
        "Ünïcödé 😀 {{first_name}}",
        "",
        "tab\tinside",
        "- dash",
        "#hash",
    ]
    comms = "".join(
        f"  - {{communicationType: {t}, channelId: {c}, messageTemplate: {json.dumps(m, ensure_ascii=False)}}}\n"
        for (t, c), m in zip(
            [(t, c) for t in ("START", "FINISH", "CHANGE", "REMINDER") for c in (1, 2, 3)], tricky, strict=True
        )
    )
    source = write(
        tmp_path / "in.yaml",
        f"targetGroupId: 4200\ntargets:\n- targetId: 5301\n  communications:\n{comms}"
        "- targetId: 5300\n  communications:\n  - {communicationType: START, channelId: 2, "
        "messageTemplate: m, offsetDays: 4, active: false, sender: s, subjectTemplate: j}\n",
    )
    assert cli("upsert", "-f", str(source)).code == 0

    first = cli("export", "-g", "4200")
    assert first.code == 0, first
    exported = write(tmp_path / "export.yaml", first.stdout)
    assert "messageTemplate: |\n" in first.stdout and "messageTemplate: |-\n" in first.stdout
    assert [t["targetId"] for t in yaml.safe_load(first.stdout)["targets"]] == [5300, 5301]

    again = cli("upsert", "-f", str(exported), "-o", "json", "--verbose")
    assert again.code == 0, again
    assert again.json()["summary"] == {"created": 0, "updated": 0, "unchanged": 13, "failed": 0}
    assert "> POST" not in again.stderr

    out_dir = tmp_path / "out"
    second = cli("export", "-g", "4200", "--out", str(out_dir))
    assert second.code == 0, second
    assert (out_dir / "group-4200.yaml").read_text(encoding="utf-8") == first.stdout
    live_templates = {c["messageTemplate"] for c in json.loads(cli("show", "-g", "4200", "-o", "json").stdout)}
    assert set(tricky) <= live_templates


def test_export_output_validates(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", str(SAMPLES)).code == 0
    exported = write(tmp_path / "e.yaml", cli("export", "-g", "4100").stdout)
    assert cli("validate", str(exported)).code == 0


def test_report_on_fatal_error_says_why(cli: Cli, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out = cli("upsert", "-f", SUMMER, "--report", str(report))
    assert out.code == 4, out
    assert json.loads(report.read_text())["error"]["kind"] == "config"


def test_deactivate_report(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    report = tmp_path / "r.json"
    out = cli("deactivate", "-g", "4100", "-t", "5201", "--report", str(report))
    assert out.code == 0, out
    assert json.loads(report.read_text())["summary"] == {"created": 0, "updated": 1, "unchanged": 1, "failed": 0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", (5, 160, "GSM-7")),
        ("a€b", (4, 160, "GSM-7")),
        ("{[]}~^|\\", (16, 160, "GSM-7")),
        ("Ünïcödé", (7, 70, "UCS-2")),
        ("😀", (2, 70, "UCS-2")),
        ("x" * 160, (160, 160, "GSM-7")),
    ],
)
def test_sms_length(text: str, expected: tuple[int, int, str]) -> None:
    assert sms_length(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{{a}} {{b}}", None),
        ("{a} }", None),
        ("{{a", "'{{' is never closed"),
        ("a}}", "'}}' without a matching '{{'"),
        ("{{a {{b}}", "'{{' opened again before '}}'"),
    ],
)
def test_unbalanced_braces(text: str, problem: str | None) -> None:
    assert unbalanced_braces(text) == problem


def test_template_warnings_name_file_and_line(cli: Cli, tmp_path: Path) -> None:
    long_sms = "x" * 150 + "€" * 6
    path = write(
        tmp_path / "w.yaml",
        "targetGroupId: 1\ntargets:\n- targetId: 2\n  communications:\n"
        f"  - communicationType: REMINDER\n    channel: sms\n    offsetDays: 0\n"
        f"    messageTemplate: '{long_sms}'\n"
        "  - communicationType: START\n    channelId: 2\n    subjectTemplate: 'Hi {{name'\n"
        "    messageTemplate: ok\n",
    )
    out = cli("validate", str(path))
    assert out.code == 0, out
    assert out.stderr.splitlines() == [
        f"warning: {path}:8:22: targets[0].communications[0].messageTemplate: SMS text is 162 GSM-7 characters, "
        "more than one segment (160)",
        f"warning: {path}:7:17: targets[0].communications[0].offsetDays: a REMINDER with offsetDays 0 is sent on the "
        "last day, not before it",
        f"warning: {path}:11:22: targets[0].communications[1].subjectTemplate: unbalanced placeholder braces: "
        "'{{' is never closed",
    ]
    assert out.stdout == "valid: 2 communications in 1 file(s), 3 warning(s)\n"
    strict = cli("validate", str(path), "--strict", "-o", "json")
    assert strict.code == 3, strict
    assert strict.json()["error"]["kind"] == "input"


def test_schema_is_2020_12_and_matches_the_committed_copy(cli: Cli) -> None:
    out = cli("schema")
    assert out.code == 0, out
    schema = out.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert (ROOT / "commctl.schema.json").read_text() == out.stdout, "run `commctl schema > commctl.schema.json`"


def test_schema_accepts_the_samples_and_rejects_mistakes(cli: Cli) -> None:
    validator = jsonschema.Draft202012Validator(cli("schema").json())
    for path in sorted(SAMPLES.glob("*.y*ml")) + sorted(SAMPLES.glob("*.json")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not list(validator.iter_errors(doc)), path
    bad = {
        "targetGroupId": 1,
        "targets": [
            {
                "targetId": 2,
                "communications": [{"communicationType": "SOON", "channelId": 1, "channel": "SMS", "offsetDay": 1}],
            }
        ],
    }
    messages = " ".join(e.message for e in validator.iter_errors(bad))
    assert "'SOON' is not one of" in messages and "offsetDay" in messages
    assert len(list(validator.iter_errors(bad))) >= 3


def test_sample_configs_carry_the_schema_modeline() -> None:
    for path in SAMPLES.glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../commctl.schema.json"), path


def test_the_ci_recipe_end_to_end(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    """The commands of the README's GitHub/GitLab recipes, in the order a pipeline runs them."""
    repo = tmp_path / "comms"
    repo.mkdir()
    for f in ("summer-challenge.yaml", "monthly-visits.yaml"):
        (repo / f).write_text((SAMPLES / f).read_text())
    (repo / "templates").mkdir()
    (repo / "templates" / "start.html").write_text((SAMPLES / "templates" / "start.html").read_text())

    assert cli("validate", str(repo), "--strict").code == 0  # pull request: validate
    plan = cli("diff", "-f", str(repo), "-o", "markdown", "--report", str(tmp_path / "diff.json"))
    assert plan.code == 7, plan  # pull request: changes pending, posted as markdown
    assert plan.stdout.startswith("### commctl diff\n\n**8** would-create\n")
    assert json.loads((tmp_path / "diff.json").read_text())["summary"]["would-create"] == 8

    apply = cli("upsert", "-f", str(repo), "--report", str(tmp_path / "apply.json"), "-o", "markdown")
    assert apply.code == 0, apply  # merge: apply
    assert json.loads((tmp_path / "apply.json").read_text())["summary"]["created"] == 8

    assert cli("diff", "-f", str(repo), "--report", str(tmp_path / "drift.json")).code == 0  # nightly: in sync
    # someone edits by hand; a field the files leave out (here `active`) is not theirs to restore
    assert cli("upsert", "-g", "4200", "-t", "5300", "--type", "START", "-c", "3", "--message", "by hand").code == 0
    assert cli("deactivate", "-g", "4200", "-t", "5300", "--type", "START").code == 0
    drift = cli("diff", "-f", str(repo), "-o", "markdown")
    assert drift.code == 7, drift  # nightly: drift found
    assert (
        "| would-update | 4200 | 5300 | START | 3 | `messageTemplate`: `by hand` → `Visit us 3 times this month t…` |"
        in drift.stdout.splitlines()
    )
