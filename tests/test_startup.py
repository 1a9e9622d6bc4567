"""Start-up stays light (SPEC section 9: commands import only what they use).

Each case runs commctl's real entry point in a fresh interpreter and lists the heavy libraries that
were loaded by the time it ended. `--help` of every command loads none of them (beyond what Typer
itself loads to print a help); each real command loads only the ones its job needs.

The fresh interpreters are forked: a process that has imported `commctl.cli` (and nothing else of
commctl's), which `commctl.__main__.main` imports first for every command, forks one child per case,
or per group of cases that may not load the same modules (`Probe.loaded`). A child starts from
exactly the state every real run passes through, without paying for the interpreter start and that
import again (a third of a `--help`).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from commctl.cli import app

from .conftest import SAMPLES, Sandbox

HEAVY = ("httpx", "httpcore", "h11", "pydantic", "pydantic_core", "yaml", "rich")
HTTP = ("httpx", "httpcore", "h11")

PROBE = """
import json, sys
sys.argv = ["commctl", *json.loads(sys.argv[1])]
code = 0
try:
    {main}
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
sys.stdout.flush()
print("\\n" + json.dumps({{"code": code, "modules": sorted({{m.split(".")[0] for m in sys.modules}})}}), file=sys.stderr)
"""
COMMCTL_MAIN = "from commctl.__main__ import main; main()"


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def run_probe(args: list[str], main: str = COMMCTL_MAIN, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run ARGS under `main` in a new interpreter: (exit code, top-level modules loaded by the end)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(main=main), json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    report = json.loads(out.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


# Reads one request per line ([runs, environment], a run being one command's arguments); a child
# per request runs commctl's entry point once per run, in that order, with stdin and output on
# /dev/null, and writes the probe's report (each run's exit code, then the modules loaded by the
# end) on the server's stdout.
FORKSERVER = """
import json, os, sys
import commctl.cli
report = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    runs, env = json.loads(line)
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        continue
    codes = []
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.environ.clear()
        os.environ.update(env)
        from commctl.__main__ import main
        for args in runs:
            sys.argv = ["commctl", *args]
            try:
                main()
                codes.append(0)
            except SystemExit as e:
                codes.append(e.code if isinstance(e.code, int) else 1)
    except BaseException as e:
        codes.append(f"{type(e).__name__}: {e}")
    finally:
        modules = sorted(sys.modules)
        try:
            sys.stdout.flush()
        finally:
            report.write(json.dumps({"codes": codes, "modules": modules}) + "\\n")
            report.flush()
            os._exit(0)
"""


class Probe:
    """`commctl ARGS` in a fresh interpreter, forked from one that has imported only `commctl.cli`."""

    def __init__(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-c", FORKSERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def __call__(self, args: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
        """(exit code, top-level modules loaded by the end); the environment is this process's plus `env`."""
        code, modules = self.modules(args, env)
        return code, {m.split(".")[0] for m in modules}

    def modules(self, args: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
        """(exit code, every module loaded by the end, by its full name)."""
        [code], modules = self.runs([args], env)
        return code, modules

    def runs(self, runs: list[list[str]], env: dict[str, str] | None = None) -> tuple[list[int], set[str]]:
        """Several commands, one after the other in one fresh interpreter: (exit codes, modules loaded by the end)."""
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(json.dumps([runs, {**os.environ, **(env or {})}]) + "\n")
        self.server.stdin.flush()
        report = json.loads(self.server.stdout.readline())
        assert len(report["codes"]) == len(runs), report["codes"]
        return report["codes"], set(report["modules"])

    def loaded(
        self, cases: list[tuple[list[str], set[str]]], env: dict[str, str] | None = None
    ) -> tuple[dict[str, int], dict[str, set[str]]]:
        """Each command's exit code, and the forbidden modules each loads: cases are (args, forbidden top-level modules).

        Commands with the same forbidden set run one after the other in one interpreter: what they
        load together is what each loads and more, so when the whole loads nothing forbidden, no
        command does. When it does, each of them runs alone, to name the one.
        """
        groups: dict[frozenset[str], list[list[str]]] = {}
        for args, forbidden in cases:
            groups.setdefault(frozenset(forbidden), []).append(args)
        codes: dict[str, int] = {}
        found: dict[str, set[str]] = {}
        for barred, runs in groups.items():
            got, modules = self.runs(runs, env)
            codes.update(zip((" ".join(args) for args in runs), got, strict=True))
            if {m.split(".")[0] for m in modules} & barred:
                for args in runs:
                    if alone := self(args, env)[1] & barred:
                        found[" ".join(args)] = alone
        return codes, found

    def close(self) -> None:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.close()
        self.server.wait(timeout=10)
        self.server.stdout.close()


@pytest.fixture(scope="session")
def probe() -> Iterator[Probe]:
    """One fork server per test process (xdist may interleave these tests with others)."""
    p = Probe()
    yield p
    p.close()


def heavy(modules: set[str]) -> set[str]:
    return modules & set(HEAVY)


@functools.cache
def typer_help_baseline() -> set[str]:
    """What Typer itself loads to print a subcommand's help (typer 0.29 loads pydantic for that)."""
    bare = (
        "import typer; app = typer.Typer(); app.command()(lambda x: None); "
        "app.command('other')(lambda y: None); app(prog_name='bare')"
    )
    code, modules = run_probe(["<lambda>", "--help"], main=bare)
    assert code == 0
    return heavy(modules)


def every_command(group: typer.core.TyperGroup | None = None, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    group = group or typer.main.get_group(app)
    out: list[tuple[str, ...]] = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, typer.core.TyperGroup):
            out += every_command(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert heavy(loaded_after("import commctl.cli")) == set()


def test_version_does_not_even_import_typer() -> None:
    loaded = loaded_after("import sys; sys.argv = ['commctl', '--version']\nfrom commctl.__main__ import main; main()")
    assert "typer" not in loaded and "click" not in loaded


def test_version_output() -> None:
    out = subprocess.run([sys.executable, "-m", "commctl", "--version"], capture_output=True, text=True, check=True)
    from commctl import __version__

    assert out.stdout == f"commctl {__version__}\n"


def test_top_level_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "commctl", "--help"], capture_output=True, text=True, check=True)
    for name in (
        "upsert",
        "activate",
        "deactivate",
        "show",
        "validate",
        "diff",
        "export",
        "channels",
        "groups",
        "targets",
        "schema",
        "sandbox",
        "config",
    ):
        assert f"  {name} " in out.stdout, name
    assert "\x1b[" not in out.stdout


def test_the_command_list_is_complete() -> None:
    names = {c[0] for c in every_command()}
    assert {"upsert", "show", "validate", "diff", "sandbox", "config"} <= names, names


def test_help_loads_no_heavy_module(probe: Probe) -> None:
    light = set(HEAVY) - typer_help_baseline()
    codes, loaded = probe.loaded([([*command, "--help"], light) for command in [*every_command(), ()]])
    assert set(codes.values()) == {0}, codes
    assert loaded == {}


def test_typer_is_a_version_that_keeps_help_light() -> None:
    """pyproject pins typer to 0.28: 0.29 builds pydantic adapters for every parameter, older ones load Rich."""
    import re

    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    pin = re.search(r'"typer([^"]*)"', text)
    assert pin is not None and pin.group(1).startswith(">=0.28,<0.29"), pin


# Offline commands: (args, what they may not load). Files need yaml and the input models; no HTTP,
# and Rich only for tables.
OFFLINE = [
    (["validate", str(SAMPLES)], {*HTTP, "rich"}),
    (["validate", str(SAMPLES), "-o", "json"], {*HTTP, "rich"}),
    (["show", "-f", str(SAMPLES), "-o", "json"], {*HTTP, "rich"}),
    (["schema"], {*HTTP, "rich", "yaml"}),
    (["config", "show", "-o", "json"], {*HTTP, "rich", "yaml"}),
]


def test_offline_commands_load_only_what_they_use(probe: Probe, tmp_path: Path) -> None:
    codes, loaded = probe.loaded(OFFLINE, env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert set(codes.values()) == {0}, codes
    assert loaded == {}


def live_cases(comms: Path) -> list[tuple[list[str], set[str]]]:
    """Live commands: HTTP always; yaml only to read or write files; Rich only for tables."""
    one = ["upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "2", "--message", "hi"]
    return [
        (["show", "-g", "4100", "-o", "json"], {"yaml", "rich"}),
        (["show", "-g", "4100", "-t", "5200"], {"yaml"}),
        (["channels", "-o", "json"], {"yaml", "rich"}),
        (["groups", "-o", "json"], {"yaml", "rich"}),
        (["targets", "-g", "4100", "-o", "json"], {"yaml", "rich"}),
        ([*one, "-o", "json"], {"yaml", "rich"}),
        ([*one, "--dry-run", "-o", "json"], {"yaml", "rich"}),
        (["deactivate", "-g", "4100", "-t", "5200", "--dry-run", "-o", "json"], {"yaml", "rich"}),
        (["diff", "-f", str(comms), "-o", "json"], {"rich"}),
        (["upsert", "-f", str(comms), "-o", "json"], {"rich"}),
        (["export", "-g", "4100"], {"rich"}),
    ]


@pytest.mark.slow
def test_live_commands_load_only_what_they_use(probe: Probe, sandbox: Sandbox, tmp_path: Path) -> None:
    comms = tmp_path / "comms.yaml"
    comms.write_text(
        "targetGroupId: 4100\ntargets:\n- targetId: 5201\n  communications:\n"
        "  - {communicationType: FINISH, channelId: 2, messageTemplate: bye}\n"
    )
    env = {**sandbox.env, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    codes, loaded = probe.loaded(live_cases(comms), env=env)
    # Each ran to its end against the server (without one they exit 6); 7 is diff's "differences found".
    assert set(codes.values()) <= {0, 7}, codes
    assert loaded == {}


def test_the_channel_list_is_read_together_with_the_targets() -> None:
    """One round trip less before planning: the channel list does not wait for the reads, nor they for it.

    The mock server answers the channel list only once a target's read has arrived; read in series,
    the list would come back empty (after the guard's wait) and the channel name would be unknown.
    """
    import io
    import threading

    import httpx

    from commctl.client import BasicAuth, Client
    from commctl.commands import write
    from commctl.models import Desired
    from commctl.options import OutputOptions
    from commctl.runtime import Run

    read_arrived = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/channels"):
            together = read_arrived.wait(timeout=10)
            return httpx.Response(200, json={"data": [{"id": 2, "name": "EMAIL"}] if together else [], "errors": None})
        read_arrived.set()
        return httpx.Response(200, json={"data": [], "errors": None})

    run = Run(OutputOptions(output="json"))
    run.out_stream, run.err_stream = io.StringIO(), io.StringIO()
    run._client = Client("https://api.test", BasicAuth("u", "p"), transport=httpx.MockTransport(handler))
    wanted = Desired(4100, 5200, "START", "EMAIL", {"messageTemplate": "hi"}, where="flags", channel_name="EMAIL")
    code = write.apply_desired(run, [wanted], "commctl diff", diff=True)
    assert code == 7, run.err_stream.getvalue()
    [result] = json.loads(run.out_stream.getvalue())["results"]
    assert (result["channelId"], result["action"]) == (2, "would-create")


def test_show_reads_the_channel_names_together_with_the_targets() -> None:
    """`show` as a table names channels: the list travels with the reads, not after them.

    The mock answers a target's read only once the channel list has been asked for; read in series
    (targets first), the read would come back empty after the guard's wait.
    """
    import io
    import threading

    import httpx

    from commctl.client import BasicAuth, Client
    from commctl.commands import read
    from commctl.options import OutputOptions
    from commctl.runtime import Run

    list_asked = threading.Event()
    comm = {"id": 1, "communicationType": "START", "channelId": 2, "messageTemplate": "hi"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/channels"):
            list_asked.set()
            return httpx.Response(200, json={"data": [{"id": 2, "name": "EMAIL"}], "errors": None})
        together = list_asked.wait(timeout=10)
        return httpx.Response(200, json={"data": [comm] if together else [], "errors": None})

    run = Run(OutputOptions(output="table"))
    run.out_stream, run.err_stream = io.StringIO(), io.StringIO()
    run._client = Client("https://api.test", BasicAuth("u", "p"), transport=httpx.MockTransport(handler))
    assert read.show_live(run, 4100, [5200]) == 0
    assert "2 EMAIL" in run.out_stream.getvalue(), run.out_stream.getvalue()


def test_reading_commands_leave_the_write_machinery_unloaded(probe: Probe, sandbox: Sandbox, tmp_path: Path) -> None:
    """`validate` and `show` load neither the journal, saved plans nor the write commands (SPEC 9)."""
    writing = {"commctl.journal", "commctl.plans", "commctl.commands.write"}
    env = {**sandbox.env, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for args, forbidden in (
        (["validate", str(SAMPLES)], writing | {"commctl.client"}),
        (["show", "-g", "4100", "-t", "5200"], writing | {"commctl.loader", "commctl.templates"}),
    ):
        code, modules = probe.modules(args, env)
        assert code == 0, args
        assert "commctl.commands.read" in modules, args
        assert forbidden & modules == set(), args
