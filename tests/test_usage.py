"""Mistakes get a clear answer: the right exit code for where the value came from, and a did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SAMPLES, Cli, write

SUMMER = str(SAMPLES / "summer-challenge.yaml")


def test_a_mistyped_command_gets_a_suggestion(cli: Cli) -> None:
    out = cli("shwo")
    assert out.code == 2, out
    assert "No such command 'shwo'. Did you mean 'show'?" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "-f", SUMMER, "-o", "jsn"], "'jsn' is not one of table, json, yaml (did you mean json?)"),
        (["show", "-f", SUMMER, "-o", "markdown"], "'markdown' is not one of table, json, yaml"),
        (["diff", "-f", SUMMER, "-o", "markdwn"], "'markdwn' is not one of table, json, yaml, markdown (did you mean markdown?)"),
        (["upsert", "--type", "REMINDR"], "'REMINDR' is not one of START, FINISH, CHANGE, REMINDER (did you mean REMINDER?)"),
    ],
)  # fmt: skip
def test_bad_flag_values_are_exit_2(cli: Cli, args: list[str], message: str) -> None:
    out = cli(*args)
    assert out.code == 2, out
    assert message in out.stderr
    assert "commctl validate" not in out.stderr


def test_bad_output_from_the_environment_or_config_is_exit_4(cli: Cli, isolated: Path) -> None:
    env = cli("show", "-g", "4100", "--host", "sandbox", env={"COMMCTL_OUTPUT": "jsn"})
    assert env.code == 4, env
    assert env.stderr.splitlines() == [
        "error: COMMCTL_OUTPUT: unknown output format 'jsn' (did you mean json?)",
        "hint: fix COMMCTL_OUTPUT: this command offers: table, json, yaml",
    ]
    markdown = cli("show", "-g", "4100", "--host", "sandbox", "--verbose", env={"COMMCTL_OUTPUT": "markdown"})
    assert markdown.code == 4, markdown
    assert "> GET" not in markdown.stderr  # checked before any request
    write(isolated / "config" / "commctl" / "config.yaml", "output: yml\n")
    config = cli("validate", SUMMER)
    assert config.code == 4, config
    assert "config.yaml: output: unknown output format 'yml' (did you mean yaml?)" in config.stderr, config
    assert cli("validate", SUMMER, "-o", "json").code == 0  # the flag wins over the config file


def test_flag_mistakes_do_not_send_people_to_validate_files(cli: Cli, tmp_path: Path) -> None:
    missing = cli("upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "2", "--message-file",
                  str(tmp_path / "nope.html"), "--host", "sandbox")  # fmt: skip
    assert missing.code == 3, missing
    assert "commctl validate" not in missing.stderr
    assert "hint: check the path given to --message-file / --subject-file" in missing.stderr
    channel = cli("upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "EMIAL", "--message", "m",
                  "--host", "sandbox")  # fmt: skip
    assert channel.code == 3, channel
    assert "unknown channel 'EMIAL' (did you mean 'EMAIL'? this org has: SMS, EMAIL, MOBILE PUSH)" in channel.stderr
    assert "commctl validate" not in channel.stderr and "`commctl channels` lists" in channel.stderr
    switch = cli("deactivate", "-g", "4100", "-c", "sms2", "--host", "sandbox")
    assert switch.code == 2, switch
    assert "(did you mean 'SMS'?" in switch.stderr


def test_file_mistakes_still_point_at_validate(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "targetGroupId: x\n")
    out = cli("upsert", "-f", str(path), "--host", "sandbox")
    assert out.code == 3, out
    assert "hint: fix the file(s) and run `commctl validate` to check them offline" in out.stderr


def test_commands_take_only_the_options_they_use(cli: Cli) -> None:
    for args in (["schema", "-o", "json"], ["sandbox", "serve", "-o", "json"], ["validate", SUMMER, "--no-headers"]):
        out = cli(*args)
        assert out.code == 2, (args, out)
        assert "No such option" in out.stderr
