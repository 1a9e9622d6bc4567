"""The less travelled paths: usage mistakes, broken config files and inputs, odd API replies.

Each test asserts what the user sees (exit code first, then stdout, then stderr). The API is the
in-process sandbox (`--host sandbox`, no server to start) or, for replies the sandbox never gives,
a scripted fake API on loopback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from commctl import __version__

from .conftest import SAMPLES, Cli, write
from .fake_api import Answer, FakeApi, envelope, fake_apis

SUMMER = str(SAMPLES / "summer-challenge.yaml")
HINT_FIX = "hint: fix the file(s) and run `commctl validate` to check them offline"
COMM = {
    "id": 9,
    "targetGroupId": 4100,
    "targetId": 5200,
    "communicationType": "START",
    "channelId": 2,
    "sender": "",
    "subjectTemplate": "",
    "messageTemplate": "Hello",
    "offsetDays": 0,
    "active": True,
    "attribution": {"createdOn": "2026-11-27T10:00:00.000+0000"},
}


@pytest.fixture
def fake_api() -> Iterator[Callable[[Callable[[str, str], Answer]], FakeApi]]:
    yield from fake_apis()


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    """commctl talks to the in-process sandbox, whose state lives in the test's own state dir."""
    monkeypatch.setenv("COMMCTL_HOST", "sandbox")


def comms_yaml(*comms: str, target: int = 5200) -> str:
    """A document of group 4100 giving one target these communications (YAML flow mappings)."""
    head = f"targetGroupId: 4100\ntargets:\n- targetId: {target}\n  communications:\n"
    return head + "".join(f"  - {c}\n" for c in comms)


def errors(out: Any) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith(("error:", "hint:"))]


# ---- entry points ----


def test_version_answers_from_both_entry_points(cli: Cli, monkeypatch: Any, capsys: Any) -> None:
    out = cli("--version")
    assert out.code == 0, out
    assert out.stdout == f"commctl {__version__}\n"

    from commctl.__main__ import main

    monkeypatch.setattr(sys, "argv", ["commctl", "--version"])
    main()
    assert capsys.readouterr().out == f"commctl {__version__}\n"
    monkeypatch.setattr(sys, "argv", ["commctl", "schema"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0
    assert '"$schema"' in capsys.readouterr().out


def test_sandbox_reset_forgets_the_state(cli: Cli, local: None) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("sandbox", "reset")
    assert out.code == 0, out
    assert out.stderr.startswith("sandbox state reset: ")
    shown = cli("show", "-g", "4100", "-o", "json")
    assert shown.code == 0, shown
    assert shown.json() == []


# ---- usage mistakes: exit 2, nothing sent ----


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "upsert",
                "-g",
                "4100",
                "-t",
                "5200",
                "--type",
                "START",
                "-c",
                "2",
                "--subject",
                "a",
                "--subject-file",
                "s",
            ],
            "error: give --subject or --subject-file, not both",
        ),
        (
            ["upsert", "-f", "-", "--password-stdin"],
            "error: standard input cannot carry both a file (-f -) and a secret",
        ),
        (
            ["activate", "-g", "4100", "-f", SUMMER],
            "error: --group/--target/--type/--channel cannot be combined with -f",
        ),
        (["deactivate", "-t", "5200"], "error: --group is required (or give -f FILE)"),
        (
            ["activate", "-g", "4100", "-c", "FAX"],
            "error: unknown channel 'FAX' (this org has: SMS, EMAIL, MOBILE PUSH)",
        ),
    ],
)
def test_usage_mistakes_are_exit_2(cli: Cli, local: None, args: list[str], message: str) -> None:
    out = cli(*args, input="")
    assert out.code == 2, out
    assert out.stdout == ""
    assert out.stderr.startswith(message), out


def test_a_misspelt_type_gets_a_did_you_mean(cli: Cli) -> None:
    out = cli("upsert", "-g", "1", "-t", "1", "--type", "strat", "-c", "1", "--message", "m")
    assert out.code == 2, out
    assert "'strat' is not one of START, FINISH, CHANGE, REMINDER (did you mean START?)" in out.stderr


def test_an_unreadable_message_file_is_invalid_input(cli: Cli, local: None, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    out = cli("upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "2", "--message-file", str(missing))
    assert out.code == 3, out
    assert errors(out) == [
        f"error: {missing}: --message-file: no such file",
        "hint: check the path given to --message-file / --subject-file",  # a flag, not a file to validate
    ]


# ---- broken config files: exit 4 ----


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles: {a: [1}\n", "{path}:1:17: invalid YAML: expected ',' or ']', but got '}'"),
        ("- 1\n", "{path}: expected a mapping of settings and `profiles:`, got a list"),
        ("profiles: [a]\n", "{path}: profiles: expected a mapping of profile names to settings, got a list"),
        ("profiles:\n  a: 5\n", "{path}: profiles.a: expected a mapping of settings, got a number (5)"),
        ("profiles:\n  a: {hots: eu}\n", "{path}: profiles.a.hots: unknown key (did you mean host?)"),
        ("hots: eu\n", "{path}: hots: unknown key (did you mean host?)"),
    ],
)
def test_a_broken_config_file_is_exit_4_naming_the_problem(
    cli: Cli, local: None, tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "config.yaml", text)
    out = cli("channels", "--config", str(path))
    assert out.code == 4, out
    assert out.stderr.splitlines()[0] == "error: " + message.replace("{path}", str(path))


def test_a_config_path_that_is_a_directory_is_refused(cli: Cli, local: None, tmp_path: Path) -> None:
    out = cli("channels", "--config", str(tmp_path))
    assert out.code == 2, out  # a bad flag value
    assert out.stderr.startswith(f"error: --config: {tmp_path} is not a regular file"), out
    out = cli("channels", env={"COMMCTL_CONFIG": str(tmp_path)})
    assert out.code == 4, out  # the same from the environment
    assert out.stderr.startswith(f"error: COMMCTL_CONFIG: {tmp_path} is not a regular file"), out


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COMMCTL_CLIENT_KEY": "k"}, "error: OAuth needs both a client key and a client secret"),
        ({"COMMCTL_USERNAME": "till"}, "error: Basic auth needs both a username and a password"),
    ],
)
def test_half_a_credential_is_exit_4_with_a_hint(cli: Cli, env: dict[str, str], message: str) -> None:
    out = cli("channels", "--host", "eu", env=env)
    assert out.code == 4, out
    first, hint = out.stderr.splitlines()
    assert first == message
    assert hint.startswith("hint: set COMMCTL_")


# ---- broken input files: exit 3 with FILE:LINE:COL ----


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "targetGroupId: 4100\ntargets:\n- targetId: 5200\n  communications:\n  - <<: 5\n    communicationType: START\n",
            "c.yaml:5:9: invalid YAML: a merge key (<<) needs a mapping or a list of mappings",
        ),
        ("targetGroupId: 4100\n? [a, b]\n: 1\n", "c.yaml:2:3: invalid YAML: mapping keys must be plain values"),
        (
            comms_yaml("{communicationType: START, channelId: 2, messageTemplateFile: templates}"),
            "c.yaml:5:67: targets[0].communications[0].messageTemplateFile: cannot read templates: not a regular file "
            "(a directory); only regular files and - (standard input) are read",
        ),
        ("# nothing here\n", "c.yaml: empty: no documents (expected targetGroupId and targets)"),
    ],
)
def test_broken_input_is_exit_3_at_its_place(
    cli: Cli, tmp_path: Path, monkeypatch: Any, text: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "templates").mkdir()
    write(tmp_path / "c.yaml", text)
    out = cli("validate", "c.yaml")
    assert out.code == 3, out
    assert errors(out) == [f"error: {problem}", HINT_FIX]


def test_deep_nesting_is_refused_without_a_traceback(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "deep.yaml", "targetGroupId: " + "[" * 5000 + "]" * 5000 + "\n")
    out = cli("validate", str(path))
    assert out.code == 3, out
    assert out.stderr.startswith(f"error: {path}:1:"), out
    assert "Traceback" not in out.stderr


def test_many_problems_are_capped_with_a_count(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", comms_yaml(*["{communicationType: START, channelId: 2, offsetDays: -1}"] * 60))
    out = cli("validate", str(path))
    assert out.code == 3, out
    problems = errors(out)
    assert len(problems) == 50 + 2
    assert problems[-2:] == ["error: ... and 10 more problems", HINT_FIX]


def test_a_quoted_channel_number_is_a_channel_id(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", comms_yaml("{communicationType: START, channel: '2', messageTemplate: hi}"))
    out = cli("show", "-f", str(path), "-o", "json")
    assert out.code == 0, out
    assert out.json() == [
        {"targetGroupId": 4100, "targetId": 5200, "communicationType": "START", "channelId": 2, "messageTemplate": "hi"}
    ]


# ---- reading commands ----


def test_validate_json_reports_files_counts_and_warnings(cli: Cli, tmp_path: Path) -> None:
    comm = "{communicationType: REMINDER, channelId: 2, messageTemplate: 'Hi {{name', offsetDays: 0}"
    path = write(tmp_path / "c.yaml", comms_yaml(comm))
    out = cli("validate", str(path), "-o", "json")
    assert out.code == 0, out
    where = f"{path}:5:"
    assert out.json() == {
        "valid": True,
        "files": [str(path)],
        "communications": 1,
        "warnings": [
            f"{where}66: targets[0].communications[0].messageTemplate: unbalanced placeholder braces: "
            "'{{' is never closed",
            f"{where}91: targets[0].communications[0].offsetDays: a REMINDER with offsetDays 0 is sent on the "
            "last day, not before it",
        ],
    }


def test_show_of_an_empty_group_says_so_on_stderr(cli: Cli, local: None) -> None:
    out = cli("show", "-g", "4100")
    assert out.code == 0, out
    assert out.stderr == "no communications in target group 4100\n"
    assert out.stdout == "group\ttarget\tid\ttype\tchannel\tsender\tsubject\tmessage\toffset\tactive\tupdated\n"


def test_export_json_is_the_file_format(cli: Cli, local: None) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("export", "-g", "4100", "-t", "5201", "-o", "json")
    assert out.code == 0, out
    start = (SAMPLES / "templates" / "start.html").read_text(encoding="utf-8")
    assert out.json() == {
        "targetGroupId": 4100,
        "targets": [
            {
                "targetId": 5201,
                "communications": [
                    {
                        "communicationType": "START",
                        "channelId": 2,
                        "sender": "loyalty@brand.example",
                        "subjectTemplate": "Your online summer challenge has started",
                        "messageTemplate": start,
                        "offsetDays": 0,
                        "active": True,
                    },
                    {
                        "communicationType": "CHANGE",
                        "channelId": 2,
                        "sender": "loyalty@brand.example",
                        "subjectTemplate": "Your target has changed",
                        "messageTemplate": "Good news, {{first_name}}: your new target is {{target_value}}.",
                        "offsetDays": 0,
                        "active": False,
                    },
                ],
            }
        ],
    }


def test_show_without_the_channel_list_still_shows_ids(
    cli: Cli, fake_api: Callable[[Callable[[str, str], Answer]], FakeApi]
) -> None:
    def answer(method: str, path: str) -> Answer:
        if path.endswith("/channels"):
            return 503, {}, envelope(None, [{"code": 1, "message": "channels are down"}])
        return 200, {}, envelope([COMM])

    api = fake_api(answer)
    out = cli(
        "show",
        "-g",
        "4100",
        "-t",
        "5200",
        "--host",
        api.url,
        "--username",
        "u",
        "--retries",
        "0",
        env={"COMMCTL_PASSWORD": "p"},
    )
    assert out.code == 0, out
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("group")
    assert lines[1].split()[:6] == ["4100", "5200", "9", "START", "2", "Hello"]


# ---- writing commands ----


def test_upsert_by_channel_id_goes_on_without_the_channel_list(
    cli: Cli, fake_api: Callable[[Callable[[str, str], Answer]], FakeApi]
) -> None:
    def answer(method: str, path: str) -> Answer:
        if path.endswith("/channels"):
            return 503, {}, envelope(None, [{"code": 1, "message": "channels are down"}])
        if method == "POST":
            return 200, {}, envelope([{**COMM, "messageTemplate": "Bye"}])
        return 200, {}, envelope([COMM])

    api = fake_api(answer)
    args = [
        "-g",
        "4100",
        "-t",
        "5200",
        "--type",
        "START",
        "--host",
        api.url,
        "--username",
        "u",
        "-o",
        "json",
        "--retries",
        "0",
    ]
    out = cli("upsert", *args, "-c", "2", "--message", "Bye", env={"COMMCTL_PASSWORD": "p"})
    assert out.code == 0, out
    doc = out.json()
    assert (doc.pop("run")["command"], doc.pop("summary")) == (
        "upsert",
        {"created": 0, "updated": 1, "unchanged": 0, "failed": 0},
    )
    assert doc == {
        "results": [
            {
                "targetGroupId": 4100,
                "targetId": 5200,
                "communicationType": "START",
                "channelId": 2,
                "action": "updated",
                "communication": {**COMM, "messageTemplate": "Bye"},
                "before": COMM,
                "changes": {"messageTemplate": {"from": "Hello", "to": "Bye"}},
                "error": None,
            }
        ],
    }
    by_name = cli("upsert", *args, "-c", "EMAIL", "--message", "Bye", env={"COMMCTL_PASSWORD": "p"})
    assert by_name.code == 6, by_name  # a name cannot be resolved without the list: every item fails with its error
    assert by_name.json()["summary"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 1}


def test_a_refused_upsert_fails_its_target_only_with_the_apis_reason(cli: Cli, local: None, tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "targetGroupId: 4100\ntargets:\n"
        "- targetId: 5200\n  communications:\n  - {communicationType: START, channelId: 99, messageTemplate: a}\n"
        "- targetId: 5201\n  communications:\n  - {communicationType: START, channelId: 2, messageTemplate: b}\n",
    )
    out = cli("upsert", "-f", str(path), "-o", "json")
    assert out.code == 5, out
    doc = out.json()
    assert doc["summary"] == {"created": 1, "updated": 0, "unchanged": 0, "failed": 1}
    refused, created = doc["results"]
    error = refused.pop("error")
    assert {k: v for k, v in refused.items() if k != "changes"} == {
        "targetGroupId": 4100,
        "targetId": 5200,
        "communicationType": "START",
        "channelId": 99,
        "action": "failed",
        "communication": None,
        "before": None,
    }
    assert (error["status"], error["code"]) == (400, 300004)
    assert error["message"].startswith(
        "HTTP 400 Bad Request from POST /v3/targetGroups/4100/targets/5200/communications/upsert: "
        "item 0: unknown channelId 99 (code 300004)"
    )
    assert (created["targetId"], created["action"], created["error"]) == (5201, "created", None)
    assert f"error: group 4100 target 5200 START/99: {error['message']}" in out.stderr.splitlines()
    shown = cli("show", "-g", "4100", "-o", "json")
    assert [(c["targetId"], c["messageTemplate"]) for c in shown.json()] == [(5201, "b")]


def test_switching_a_group_with_an_unknown_target_fails_that_target_only(cli: Cli, local: None) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("deactivate", "-g", "4100", "-t", "5200", "-t", "9999", "--type", "START", "-c", "2", "-o", "json")
    assert out.code == 5, out
    results = out.json()["results"]
    assert [(r["targetId"], r["communicationType"], r["action"]) for r in results] == [
        (5200, "START", "updated"),
        (9999, None, "failed"),
    ]
    assert results[0]["communication"]["active"] is False
    assert {k: v for k, v in results[1]["error"].items() if k != "message"} == {"status": 404, "code": 310902}
    assert out.json()["summary"] == {"created": 0, "updated": 1, "unchanged": 0, "failed": 1}


def test_switching_nothing_that_matches_sends_nothing(cli: Cli, local: None) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli("activate", "-g", "4100", "--type", "CHANGE", "-c", "SMS", "-o", "json")
    assert out.code == 0, out
    doc = out.json()
    assert doc.pop("run")["command"] == "activate"
    assert doc == {"results": [], "summary": {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}}
    assert "nothing matched: no live communication has the given target, type and channel\n" in out.stderr


def test_diff_markdown_when_in_sync_and_when_a_target_fails(cli: Cli, local: None, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    same = cli("diff", "-f", SUMMER, "-o", "markdown")
    assert same.code == 0, same
    assert same.stdout == "### commctl diff\n\n**5** unchanged\n\nNo changes.\n"

    path = write(
        tmp_path / "c.yaml", comms_yaml("{communicationType: START, channelId: 2, messageTemplate: 'a|b'}", target=9999)
    )
    failed = cli("diff", "-f", str(path), "-o", "markdown")
    assert failed.code == 5, failed
    lines = failed.stdout.splitlines()
    assert lines[:5] == [
        "### commctl diff",
        "",
        "**1** failed",
        "",
        "| action | group | target | type | channel | fields |",
    ]
    assert lines[6].startswith("| failed | 4100 | 9999 | START | 2 | `HTTP 404 Not Found from GET ")
    table = cli("diff", "-f", str(path))
    assert table.code == 5, table
    assert table.stdout.splitlines()[1].split()[:8] == ["failed", "4100", "9999", "START", "2", "EMAIL", "HTTP", "404"]


# ---- odd API replies ----


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            400,
            envelope(None, [{"code": 300004, "message": "Invalid input"}, {"code": 300005, "message": "more"}]),
            5,
            "error: HTTP 400 Bad Request from GET /v3/targetGroups: Invalid input (code 300004) (+1 more)",
        ),
        (
            200,
            {"data": [], "errors": "not a list"},
            5,
            "error: unexpected reply from GET /v3/targetGroups: errors is a string, expected a list",
        ),
        (
            200,
            [{"id": 1}],
            5,
            "error: unexpected reply from GET /v3/targetGroups: expected a JSON object with data and errors, got a list",
        ),
        (502, ["not", "an", "envelope"], 6, "error: HTTP 502 Bad Gateway from GET /v3/targetGroups"),
    ],
)
def test_odd_replies_are_errors_not_tracebacks(
    cli: Cli,
    fake_api: Callable[[Callable[[str, str], Answer]], FakeApi],
    status: int,
    body: Any,
    code: int,
    message: str,
) -> None:
    api = fake_api(lambda method, path: (status, {}, body))
    out = cli("groups", "--host", api.url, "--username", "u", "--retries", "0", env={"COMMCTL_PASSWORD": "p"})
    assert out.code == code, out
    assert out.stderr.startswith(message), out
    assert "Traceback" not in out.stderr


def test_a_token_reply_without_a_token_is_an_unexpected_reply(
    cli: Cli, fake_api: Callable[[Callable[[str, str], Answer]], FakeApi], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    api = fake_api(lambda method, path: (200, {}, envelope({"ttlSeconds": 60})))
    out = cli("channels", "--host", api.url, "--client-key", "k", env={"COMMCTL_CLIENT_SECRET": "s"})
    assert out.code == 5, out
    assert out.stderr.startswith(
        "error: unexpected reply from POST /v3/oauth/token/generate: data.accessToken: Field required"
    ), out
    assert [p for _, p, _ in api.requests] == ["/v3/oauth/token/generate"]


# ---- shell completion ----


def complete(cli: Cli, line: str) -> list[str]:
    """What bash completion offers for the last word of `line` (as `commctl completion bash` asks it)."""
    words = line.split(" ")
    out = cli(env={"_COMMCTL_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)})
    assert out.code == 0, out
    return out.stdout.splitlines()


def test_completion_offers_hosts_types_and_the_config_files_profiles(cli: Cli, isolated: Path, tmp_path: Path) -> None:
    write(isolated / "config" / "commctl" / "config.yaml", "profiles:\n  eu-prod: {host: eu}\n  staging: {}\n")
    other = write(tmp_path / "other.yaml", "profiles:\n  qa: {}\n")
    assert complete(cli, "commctl show --host a") == ["apac", "apac2", "asia"]
    assert complete(cli, "commctl deactivate -g 1 --type RE") == ["REMINDER"]
    assert complete(cli, "commctl show --profile ") == ["eu-prod", "staging"]
    assert complete(cli, "commctl show --profile s") == ["staging"]
    assert complete(cli, f"commctl show --config {other} --profile ") == ["qa"]
    broken = write(tmp_path / "broken.yaml", "profiles: [\n")
    assert complete(cli, f"commctl show --config {broken} --profile ") == [""]  # quietly nothing, no traceback
