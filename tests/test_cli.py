"""End-to-end: the CLI against `commctl sandbox serve` over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from .conftest import SAMPLES, Cli, Sandbox, ServeSandbox, write

SUMMER = str(SAMPLES / "summer-challenge.yaml")
ANSI = re.compile(r"\x1b\[")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def strip(comm: dict[str, Any]) -> dict[str, Any]:
    """A communication without its server-made fields (id, attribution, configs)."""
    return {k: v for k, v in comm.items() if k not in ("id", "attribution", "configs")}


def live(cli: Cli, group: int, *targets: int) -> list[dict[str, Any]]:
    args = ["show", "-g", str(group), "-o", "json"]
    for t in targets:
        args += ["-t", str(t)]
    out = cli(*args)
    assert out.code == 0, out
    rows: list[dict[str, Any]] = out.json()
    return rows


def posts(stderr: str) -> int:
    return len(re.findall(r"^> POST .*/upsert$", stderr, re.M))


def test_upsert_files_then_rerun_sends_nothing(cli: Cli, sandbox: Sandbox) -> None:
    first = cli("upsert", "-f", str(SAMPLES), "-o", "json", "--verbose")
    assert first.code == 0, first
    doc = first.json()
    assert doc["summary"] == {"created": 9, "updated": 0, "unchanged": 0, "failed": 0}
    assert posts(first.stderr) == 4  # one request per target
    row = next(r for r in doc["results"] if r["targetId"] == 5200 and r["communicationType"] == "REMINDER")
    assert {k: v for k, v in row.items() if k != "communication"} == {
        "targetGroupId": 4100,
        "targetId": 5200,
        "communicationType": "REMINDER",
        "channelId": 1,
        "action": "created",
        "before": None,
        "changes": {
            "sender": {"from": None, "to": "BRANDSMS"},
            "subjectTemplate": {"from": None, "to": ""},
            "messageTemplate": {"from": None, "to": "3 days left to reach your summer target!"},
            "offsetDays": {"from": None, "to": 3},
            "active": {"from": None, "to": True},
        },
        "error": None,
    }
    assert strip(row["communication"]) == {
        "targetId": 5200,
        "targetGroupId": 4100,
        "communicationType": "REMINDER",
        "channelId": 1,
        "subjectTemplate": "",
        "messageTemplate": "3 days left to reach your summer target!",
        "sender": "BRANDSMS",
        "offsetDays": 3,
        "active": True,
    }
    assert STAMP.match(row["communication"]["attribution"]["createdOn"])

    again = cli("upsert", "-f", str(SAMPLES), "-o", "json", "--verbose")
    assert again.code == 0, again
    assert again.json()["summary"] == {"created": 0, "updated": 0, "unchanged": 9, "failed": 0}
    assert posts(again.stderr) == 0


def test_template_file_arrives_byte_for_byte(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    start = next(c for c in live(cli, 4100, 5200) if c["communicationType"] == "START")
    assert start["messageTemplate"] == (SAMPLES / "templates" / "start.html").read_text(encoding="utf-8")


def test_upsert_from_flags_merges_over_the_live_value(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    missing = cli("upsert", "-g", "4100", "-t", "5200", "--type", "finish", "-c", "EMAIL", "--sender", "a@b")
    assert missing.code == 3, missing
    assert "messageTemplate (or messageTemplateFile) is required to create it" in missing.stderr

    msg = write(tmp_path / "m.txt", "Bye {{first_name}}\n")
    created = cli(
        "upsert",
        "-g",
        "4100",
        "-t",
        "5200",
        "--type",
        "FINISH",
        "-c",
        "email",
        "--message-file",
        str(msg),
        "--offset-days",
        "2",
        "-o",
        "json",
    )
    assert created.code == 0, created
    assert created.json()["summary"]["created"] == 1

    updated = cli("upsert", "-g", "4100", "-t", "5200", "--type", "FINISH", "-c", "2", "--inactive", "-o", "json")
    assert updated.code == 0, updated
    [row] = updated.json()["results"]
    assert row["action"] == "updated"
    assert strip(row["communication"]) == {
        "targetId": 5200,
        "targetGroupId": 4100,
        "communicationType": "FINISH",
        "channelId": 2,
        "subjectTemplate": "",
        "messageTemplate": "Bye {{first_name}}\n",
        "sender": "",
        "offsetDays": 2,
        "active": False,
    }
    assert row["communication"]["id"] == created.json()["results"][0]["communication"]["id"]


def test_dry_run_sends_nothing(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("upsert", "-f", SUMMER, "--dry-run", "-o", "json", "--verbose")
    assert out.code == 0, out
    assert out.json()["summary"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "would-create": 5}
    assert posts(out.stderr) == 0
    assert live(cli, 4100) == []


def test_force_sends_unchanged_items(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("upsert", "-f", SUMMER, "--force", "-o", "json", "--verbose")
    assert out.code == 0, out
    assert out.json()["summary"]["updated"] == 5
    assert posts(out.stderr) == 2


def test_show_table_and_yaml(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    table = cli("show", "-g", "4100")
    assert table.code == 0, table
    header, *rows = [line.split("\t") for line in table.stdout.splitlines()]
    assert header == [
        "group",
        "target",
        "id",
        "type",
        "channel",
        "sender",
        "subject",
        "message",
        "offset",
        "active",
        "updated",
    ]
    assert len(rows) == 5 and {len(row) for row in rows} == {len(header)}
    assert STAMP.match(rows[0][-1])  # piped: the API's full timestamp
    assert "1 SMS" in table.stdout and "BRANDSMS" in table.stdout
    assert not ANSI.search(table.stdout)
    as_yaml = cli("show", "-g", "4100", "-t", "5201", "-o", "yaml")
    assert as_yaml.code == 0
    import yaml

    assert [c["communicationType"] for c in yaml.safe_load(as_yaml.stdout)] == ["START", "CHANGE"]


def test_show_files_offline_needs_no_host(cli: Cli, monkeypatch: Any) -> None:
    out = cli("show", "-f", SUMMER, "-o", "json")
    assert out.code == 0, out
    assert out.json()[2] == {
        "targetGroupId": 4100,
        "targetId": 5200,
        "communicationType": "REMINDER",
        "channel": "SMS",
        "sender": "BRANDSMS",
        "messageTemplate": "3 days left to reach your summer target!",
        "offsetDays": 3,
    }


def test_deactivate_then_activate(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    guarded = cli("deactivate", "-g", "4100", "-o", "json")
    assert guarded.code == 2, guarded  # a whole group needs --all
    assert "--all" in guarded.stderr
    assert [c["active"] for c in live(cli, 4100)].count(True) == 4

    off = cli("deactivate", "-g", "4100", "--all", "-o", "json")
    assert off.code == 0, off
    assert off.json()["summary"] == {"created": 0, "updated": 4, "unchanged": 1, "failed": 0}
    assert [c["active"] for c in live(cli, 4100)] == [False] * 5

    on = cli("activate", "-g", "4100", "-t", "5200", "--type", "start", "--type", "REMINDER", "-c", "SMS", "-o", "json")
    assert on.code == 0, on
    [row] = on.json()["results"]
    assert (row["communicationType"], row["channelId"], row["action"]) == ("REMINDER", 1, "updated")
    state = {(c["targetId"], c["communicationType"]): c["active"] for c in live(cli, 4100)}
    assert state == {
        (5200, "START"): False,
        (5200, "FINISH"): False,
        (5200, "REMINDER"): True,
        (5201, "START"): False,
        (5201, "CHANGE"): False,
    }


def test_activate_from_files(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("activate", "-f", SUMMER, "-o", "json")
    assert out.code == 0, out
    assert out.json()["summary"] == {"created": 0, "updated": 1, "unchanged": 4, "failed": 0}
    assert all(c["active"] for c in live(cli, 4100))
    before = live(cli, 4200)
    missing = cli("deactivate", "-f", str(SAMPLES / "monthly-visits.yaml"), "-o", "json", "--verbose")
    assert missing.code == 5, missing
    assert missing.json()["summary"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 3}
    assert "does not exist on the server" in missing.json()["results"][0]["error"]["message"]
    assert posts(missing.stderr) == 0 and live(cli, 4200) == before == []


def test_discovery_commands_print_api_objects(cli: Cli, sandbox: Sandbox) -> None:
    channels = cli("channels", "-o", "json")
    assert channels.code == 0, channels
    assert channels.json() == [{"id": 1, "name": "SMS"}, {"id": 2, "name": "EMAIL"}, {"id": 3, "name": "MOBILE PUSH"}]
    groups = cli("groups", "-o", "json").json()
    assert [g["id"] for g in groups] == [4100, 4200] and groups[0]["name"] == "Summer challenge"
    targets = cli("targets", "-g", "4200", "-o", "json").json()
    assert [(t["id"], t["targetGroupId"]) for t in targets] == [(5300, 4200), (5301, 4200)]
    table = cli("targets", "-g", "4100")
    assert "Spend 5000 online" in table.stdout


def test_unknown_target_in_a_batch_fails_that_target_only(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    text = (SAMPLES / "summer-challenge.yaml").read_text().replace("targetId: 5201", "targetId: 9999")
    path = write(tmp_path / "c.yaml", text)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "start.html").write_text("hi")
    report = tmp_path / "report.json"
    out = cli("upsert", "-f", str(path), "-o", "json", "--report", str(report))
    assert out.code == 5, out
    doc = out.json()
    assert doc == json.loads(report.read_text())
    assert doc["summary"] == {"created": 3, "updated": 0, "unchanged": 0, "failed": 2}
    failed = [r for r in doc["results"] if r["action"] == "failed"]
    assert {r["targetId"] for r in failed} == {9999}
    assert failed[0]["error"]["status"] == 404 and failed[0]["error"]["code"] == 310902
    assert "target 9999 not found in target group 4100" in failed[0]["error"]["message"]
    assert "error: group 4100 target 9999 START/2: HTTP 404" in out.stderr
    assert len(live(cli, 4100, 5200)) == 3


def test_a_target_that_cannot_be_read_is_named_without_an_empty_type(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("deactivate", "-g", "4100", "-t", "9999")
    assert out.code == 5, out
    assert "error: group 4100 target 9999: HTTP 404" in out.stderr and " /:" not in out.stderr


def test_unknown_channel_name_is_invalid_input(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    out = cli("upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "FAX", "--message", "m", "--verbose")
    assert out.code == 3, out
    assert "unknown channel 'FAX' (this org has: SMS, EMAIL, MOBILE PUSH)" in out.stderr
    assert posts(out.stderr) == 0


def test_wrong_password_is_exit_4(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("channels", env={"COMMCTL_PASSWORD": "wrong"})
    assert out.code == 4, out
    assert "HTTP 401" in out.stderr and "hint: check the credentials" in out.stderr


def test_oauth_against_the_sandbox(cli: Cli, sandbox: Sandbox, monkeypatch: Any) -> None:
    monkeypatch.delenv("COMMCTL_USERNAME")
    monkeypatch.delenv("COMMCTL_PASSWORD")
    out = cli("channels", "--client-key", "sandbox", "--client-secret-stdin", "-o", "json", input="sandbox\n")
    assert out.code == 0, out
    bad = cli("channels", "--client-key", "sandbox", "--client-secret-stdin", input="nope\n")
    assert bad.code == 4, bad
    assert "nope" not in bad.stderr + bad.stdout


def test_missing_group_is_exit_5(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("show", "-g", "1", "-o", "json")
    assert out.code == 5, out
    assert out.json()["error"]["kind"] == "api"
    assert "target group 1 not found" in out.json()["error"]["message"]


def test_unreachable_host_is_exit_6(cli: Cli, serve_sandbox: ServeSandbox) -> None:
    s = serve_sandbox()
    s.stop()  # nothing listens on its port any more
    out = cli("channels", "--host", s.url, "--username", "u", "--retries", "1", env={"COMMCTL_PASSWORD": "p"})
    assert out.code == 6, out
    assert "cannot reach 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_host_is_exit_4_with_a_hint(cli: Cli) -> None:
    out = cli("channels")
    assert out.code == 4, out
    assert out.stderr.splitlines() == [
        "error: no API host configured",
        "hint: pass --host eu|in|apac2|us|cn|URL|sandbox, set COMMCTL_HOST, or add "
        "`host:` to a profile (try `--host sandbox` for the local emulator)",
    ]


def test_no_credentials_is_exit_4(cli: Cli) -> None:
    out = cli("channels", "--host", "eu", "-o", "json")
    assert out.code == 4, out
    assert out.json()["error"]["kind"] == "auth"


def test_plain_http_refused_off_loopback(cli: Cli) -> None:
    out = cli("channels", "--host", "http://example.com", "--username", "u", env={"COMMCTL_PASSWORD": "p"})
    assert out.code == 2, out  # a flag value: usage error
    assert "refusing plain http:// to example.com" in out.stderr
    env = {"COMMCTL_HOST": "http://example.com", "COMMCTL_PASSWORD": "p"}
    assert cli("channels", "--username", "u", env=env).code == 4  # from the environment: configuration error


def test_secrets_never_printed(cli: Cli, sandbox: Sandbox) -> None:
    digest = hashlib.md5(b"sandbox").hexdigest()
    out = cli("upsert", "-f", SUMMER, "--verbose", "-o", "json")
    assert out.code == 0
    assert "authorization: <redacted>" in out.stderr
    assert digest not in out.stderr + out.stdout
    shown = cli("config", "show", "-o", "json")
    assert shown.json()["password"] == {"value": "****", "source": "env COMMCTL_PASSWORD"}
    assert "sandbox" not in json.dumps(shown.json()["password"])


def test_usage_errors_are_exit_2(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-g", "4100").code == 2
    assert cli("upsert", "-f", SUMMER, "-g", "4100").code == 2
    assert cli("upsert", "-g", "x").code == 2
    assert cli("upsert", "-g", "1", "-t", "1", "--type", "START", "-c", "1", "--offset-days", "-1").code == 2
    assert cli("show", "-g", "4100", "-o", "markdown").code == 2
    assert cli("nope").code == 2


def test_stdin_input(cli: Cli, sandbox: Sandbox) -> None:
    text = (
        "targetGroupId: 4200\ntargets:\n- targetId: 5300\n  communications:\n  - {communicationType: START, "
        "channelId: 1, messageTemplate: hi}\n"
    )
    out = cli("upsert", "-f", "-", "-o", "json", input=text)
    assert out.code == 0, out
    assert out.json()["summary"]["created"] == 1


def test_in_process_sandbox_keeps_state_in_the_state_dir(cli: Cli, isolated: Path) -> None:
    out = cli("upsert", "-f", SUMMER, "--host", "sandbox", "-o", "json")
    assert out.code == 0, out
    assert (isolated / "state" / "commctl" / "sandbox.db").exists()
    again = cli("show", "-g", "4100", "--host", "sandbox", "-o", "json")
    assert len(again.json()) == 5


def test_strict_turns_warnings_into_exit_3(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communications:\n"
        "  - {communicationType: REMINDER, channel: SMS, messageTemplate: 'Hi {{name', offsetDays: 0}\n",
    )
    loose = cli("upsert", "-f", str(path), "-o", "json")
    assert loose.code == 0, loose
    assert "unbalanced placeholder braces" in loose.stderr
    strict = cli("upsert", "-f", str(path), "--strict", "--verbose")
    assert strict.code == 3, strict
    assert posts(strict.stderr) == 0


def test_undecodable_command_line_text_is_a_usage_error(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "2", "--message", "bad \udcff byte")
    assert out.code == 2, out
    assert "error: --message: the value is not valid UTF-8 text" in out.stderr


def test_quiet_keeps_only_data(cli: Cli, sandbox: Sandbox) -> None:
    out = cli("upsert", "-f", SUMMER, "-q")
    assert out.code == 0, out
    assert out.stderr == ""
    assert out.stdout.splitlines()[0].split()[0] == "action"


def test_progress_bar_only_at_a_terminal() -> None:
    import io

    from commctl.plan import run_all
    from commctl.runtime import Run

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    run = Run()
    run.err_stream = Tty()
    with run.progress("sending", 40) as tick:
        assert run_all(lambda n: n * 2, range(40), 4, tick) == [n * 2 for n in range(40)]
    assert "sending" in run.err_stream.getvalue()

    for stream, total in ((io.StringIO(), 40), (Tty(), 3)):
        run.err_stream = stream
        with run.progress("sending", total) as tick:
            run_all(lambda n: n, range(total), 4, tick)
        assert stream.getvalue() == ""


def test_unwritable_report_or_out_fails_before_sending(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    blocker = write(tmp_path / "file", "x")
    out = cli("upsert", "-f", SUMMER, "--report", str(blocker / "r.json"), "--verbose")
    assert out.code == 2, out
    assert f"error: --report {blocker / 'r.json'}: Not a directory" in out.stderr
    assert "> " not in out.stderr and live(cli, 4100) == []
    exported = cli("export", "-g", "4100", "--out", str(blocker / "dir"))
    assert exported.code == 2, exported
    assert "cannot write group-4100.yaml" in exported.stderr


def test_a_fatal_error_stops_the_batch() -> None:
    import time

    import pytest

    from commctl.errors import AuthError
    from commctl.plan import run_all

    started: list[int] = []

    def one(n: int) -> int:
        started.append(n)
        if n == 0:
            raise AuthError("HTTP 401")
        time.sleep(0.01)
        return n

    with pytest.raises(AuthError):
        run_all(one, range(200), 4)
    assert len(started) < 50
    assert run_all(lambda n: n, range(5), 4) == [0, 1, 2, 3, 4]
