"""Shared fixtures: an isolated environment, a CLI runner, and the sandbox on a free loopback port (thread or process)."""

from __future__ import annotations

import compileall
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

import commctl
from commctl.cli import app
from commctl.domain import COMM_TYPES
from commctl.sandbox.app import Faults, SandboxApp, open_store
from commctl.sandbox.store import Store

from .hostile import hostile  # noqa: F401  (the hostile-server fixture, for every test module)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-configs"


@pytest.hookimpl(optionalhook=True, wrapper=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """`-n auto` (pyproject's addopts) is a worker per core plus one.

    About a third of the suite's time is spent waiting (rate limits, token lifetimes, injected
    latency, subprocesses): one more worker than cores keeps the cores busy meanwhile.
    PYTEST_XDIST_AUTO_NUM_WORKERS, when set, is taken as it is.
    """
    cores = yield
    return cores if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else cores + 1


def pytest_configure(config: pytest.Config) -> None:
    """Compile once, here, what every process of the run would otherwise compile for itself.

    Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE) or on a fresh clone, each worker
    and each `commctl` subprocess compiled commctl's modules again, and each worker rewrote every test
    module's assertions (most of a second of CPU per worker, more under coverage). Cached bytecode is
    read whether or not it may be written, so it is written once: commctl's and the test helpers' as
    `pip install` would (compileall; only in this checkout's own tree, and only where it may write),
    the test modules' as pytest does. The assertion rewriting uses pytest's own (private) functions:
    if they change shape, nothing is cached and each worker rewrites as before.
    """
    if hasattr(config, "workerinput"):
        return
    here = Path(__file__).parent
    for directory in (Path(commctl.__file__).resolve().parent, here):
        if directory.is_relative_to(ROOT) and os.access(directory, os.W_OK):
            compileall.compile_dir(directory, quiet=1, rx=re.compile(r"(^|/)(test_|conftest)[^/]*$"))
    if not config.getoption("numprocesses", None):
        return
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        for source in [here / "conftest.py", *sorted(here.glob("test_*.py"))]:
            pyc = rewrite.get_cache_dir(source) / (source.stem + rewrite.PYC_TAIL)
            if rewrite._read_pyc(source, pyc) is None:
                pyc.parent.mkdir(exist_ok=True)
                stamp, code = rewrite._rewrite_test(source, config)
                rewrite._write_pyc(state, code, stamp, pyc)
    except (ImportError, AttributeError, KeyError, TypeError, OSError):
        return


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, then the rest in file order, with the tests that wait on timers spread among them.

    Slow tests first: workers then end together instead of one finishing a long test alone. Waiting
    tests (rate-limit windows, token lifetimes, timeouts) use next to no CPU: spread over the first
    two thirds of the run, about one worker waits at a time while the others keep the cores busy.
    """
    waits = [item for item in items if item.get_closest_marker("waits")]
    others = [item for item in items if not item.get_closest_marker("waits")]
    ordered = sorted(others, key=lambda item: not item.get_closest_marker("slow"))
    gap = len(ordered) * 2 // 3 // max(1, len(waits))
    for n, item in enumerate(waits):
        ordered.insert(n * (gap + 1), item)
    items[:] = ordered


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config, no user state, no stray COMMCTL_* settings, a fixed terminal width."""
    for name in list(os.environ):
        if name.startswith("COMMCTL_") or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("COMMCTL_RETRY_BACKOFF", "0.01")
    return tmp_path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


Cli = Callable[..., Outcome]


@pytest.fixture(autouse=True, scope="session")
def command_built_once() -> Iterator[None]:
    """typer.testing turns the Typer app into a command on every invoke, 4/5 of an in-process run: once is enough."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", functools.cache(typer.main.get_command))
        yield


@pytest.fixture
def cli() -> Cli:
    """Run commctl in process: cli("show", "-g", "4100", input=...)."""

    def invoke(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Outcome:
        result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return invoke


@dataclass
class Sandbox:
    """A running sandbox, in a thread of this process or as `commctl sandbox serve`; `stop()` ends it."""

    url: str
    db: Path
    stop: Callable[[], None]
    process: subprocess.Popen[str] | None = None  # only for `sandbox serve` started as a process

    @property
    def args(self) -> list[str]:
        return ["--host", self.url, "--username", "sandbox"]

    @property
    def env(self) -> dict[str, str]:
        return {"COMMCTL_HOST": self.url, "COMMCTL_USERNAME": "sandbox", "COMMCTL_PASSWORD": "sandbox"}


class SlowOnly(SandboxApp):
    """The sandbox with its injected latency on the requests `slow(method, path)` picks; the rest answer at once."""

    def __init__(self, store: Store, faults: Faults | None, slow: Callable[[str, str], bool]) -> None:
        super().__init__(store, faults)
        self.slow = slow

    def delay(self, environ: dict[str, Any]) -> float:
        picked = self.slow(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        return super().delay(environ) if picked else 0.0


def serve_in_thread(
    db: Path, seed: Path | None = None, faults: Faults | None = None, slow: Callable[[str, str], bool] | None = None
) -> Sandbox:
    """The sandbox over real loopback HTTP, served by the project's own server from a thread of this process.

    With `slow`, only the requests it picks wait the latency of `faults` (a test reaches the part
    that matters without waiting on every request before it).
    """
    from commctl.sandbox.server import Server, url_of

    store = open_store(db, seed)
    server = Server(("127.0.0.1", 0), SandboxApp(store, faults) if slow is None else SlowOnly(store, faults, slow))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="sandbox", daemon=True)
    thread.start()

    def stop() -> None:
        if thread.is_alive():
            server.shutdown()
            thread.join()
            server.server_close()
            store.close()

    return Sandbox(url_of(*server.server_address), db, stop)


def start_sandbox(db: Path, *flags: str) -> Sandbox:
    """`commctl sandbox serve` as a process: for tests (and benchmarks) where the process or its flags matter."""
    cmd = [sys.executable, "-m", "commctl", "sandbox", "serve", "--port", "0", "--db", str(db), *flags]
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    line = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0]
            return Sandbox(url, db, lambda: stop_process(process), process)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"sandbox did not start: {line}")


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    if process.stderr:
        process.stderr.close()


def stop_sandbox(sandbox: Sandbox) -> None:
    sandbox.stop()


class ServeSandbox(Protocol):
    def __call__(
        self,
        *,
        seed: Path | None = None,
        db: Path | None = None,
        faults: Faults | None = None,
        slow: Callable[[str, str], bool] | None = None,
    ) -> Sandbox: ...


@pytest.fixture
def serve_sandbox(tmp_path: Path) -> Iterator[ServeSandbox]:
    """Serve the sandbox from a thread (optionally with a seed, a state file, faults); all stopped afterwards."""
    started: list[Sandbox] = []

    def serve(
        *,
        seed: Path | None = None,
        db: Path | None = None,
        faults: Faults | None = None,
        slow: Callable[[str, str], bool] | None = None,
    ) -> Sandbox:
        sandbox = serve_in_thread(db or tmp_path / f"sandbox{len(started)}.db", seed, faults, slow)
        started.append(sandbox)
        return sandbox

    yield serve
    for s in started:
        s.stop()


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Start `commctl sandbox serve` as a process with extra flags; every one started is stopped afterwards."""
    started: list[Sandbox] = []

    def start(*flags: str, db: Path | None = None) -> Sandbox:
        sandbox = start_sandbox(db or tmp_path / f"process{len(started)}.db", *flags)
        started.append(sandbox)
        return sandbox

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def sandbox(serve_sandbox: ServeSandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A fault-free sandbox served from a thread; the environment points commctl at it."""
    s = serve_sandbox()
    for name, value in s.env.items():
        monkeypatch.setenv(name, value)
    return s


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def communications(directory: Path, total: int, files: int = 10) -> Path:
    """`total` new communications, four per target, in `files` files (group 900, targets from 1): the
    inputs tests/test_memory.py traces and benchmarks/run.py measures."""
    per_file = total // len(COMM_TYPES) // files
    for f in range(files):
        lines = ["targetGroupId: 900", "defaults: {channelId: 2, sender: loyalty@brand.example}", "targets:"]
        for t in range(f * per_file + 1, (f + 1) * per_file + 1):
            lines.append(f"- targetId: {t}\n  communications:")
            lines += [
                f"  - {{communicationType: {c}, subjectTemplate: 'Target {t} {c.lower()}', "
                f"messageTemplate: 'Hello {{{{name}}}}, target {t} is {c.lower()}', offsetDays: {i}}}"
                for i, c in enumerate(COMM_TYPES, start=1)
            ]
        write(directory / f"comms-{f:02d}.yaml", "\n".join(lines) + "\n")
    return directory
