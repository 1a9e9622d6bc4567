"""Export fidelity: what `export` writes reads back byte for byte, line separators and YAML 1.2 look-alikes included."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commctl.export import export_doc, export_yaml
from commctl.loader import load
from commctl.models import Communication

from .conftest import Cli, Sandbox, write

# Characters that YAML writers and readers treat specially, mixed into arbitrary text.
AWKWARD = [
    "\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\t", " ", "  ", "\ufeff", "\x00", "\x1b", "\x7f", "\x9b",
    "#", ": ", "- ", "'", '"', "\\", "|", ">", "{{", "}}", "[", "&a", "*a", "!x", "%", "@", "`", "~", "null",
    "yes", "on", "010", "0o10", "0x1F", "1e3", ".inf", "1:30", "+1", "2026-11-27", "---", "...", "😀",
]  # fmt: skip
TEXT = st.lists(
    st.one_of(st.sampled_from(AWKWARD), st.text(st.characters(exclude_categories=["Cs"]), max_size=4)),
    max_size=10,
).map("".join)


def round_trip(tmp_path: Path, comms: list[Communication]) -> list[dict[str, object]]:
    path = tmp_path / "export.yaml"
    path.write_text(export_yaml(export_doc(4100, comms)), encoding="utf-8")
    return [d.fields for d in load([str(path)])]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sender=TEXT, subject=TEXT, message=TEXT)
def test_any_text_reads_back_exactly(tmp_path: Path, sender: str, subject: str, message: str) -> None:
    comm = Communication(
        targetId=5200, communicationType="START", channelId=2, sender=sender, subjectTemplate=subject,
        messageTemplate=message, offsetDays=3, active=False,
    )  # fmt: skip
    [fields] = round_trip(tmp_path, [comm])
    assert fields == {
        "sender": sender, "subjectTemplate": subject, "messageTemplate": message, "offsetDays": 3, "active": False,
    }  # fmt: skip


TRICKY = [
    "next\x85line",
    "line\u2028separator",
    "para\u2029graph",
    "lone\rcarriage return",
    "crlf\r\nand lf\nmixed\n",
    "\ttab first, trailing spaces   \n  indented\n\n",
    "1e3",
    "0o10",
    "010",
    "yes",
    "~",
    "",
    "multi\nline with NEL\x85 inside\n",
]


def test_export_of_awkward_text_then_diff_is_in_sync(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    slots = [(t, c) for t in ("START", "FINISH", "CHANGE", "REMINDER") for c in (1, 2, 3)]
    doc = {
        "targetGroupId": 4200,
        "targets": [
            {
                "targetId": target,
                "communications": [
                    {"communicationType": t, "channelId": c, "messageTemplate": m, "sender": m, "subjectTemplate": m}
                    for (t, c), m in zip(slots, texts, strict=False)
                ],
            }
            for target, texts in ((5300, TRICKY[:12]), (5301, TRICKY[12:]))
        ],
    }
    created = cli("upsert", "-f", str(write(tmp_path / "in.json", json.dumps(doc))))
    assert created.code == 0, created

    exported = cli("export", "-g", "4200")
    assert exported.code == 0, exported
    assert '"next\\Nline"' in exported.stdout and '"line\\Lseparator"' in exported.stdout
    assert "'1e3'" in exported.stdout and "'0o10'" in exported.stdout
    in_sync = cli("diff", "-f", str(write(tmp_path / "export.yaml", exported.stdout)), "-o", "json")
    assert in_sync.code == 0, in_sync
    assert in_sync.json()["summary"]["unchanged"] == len(TRICKY)
