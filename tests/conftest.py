"""Shared fixtures: an isolated environment, a CLI runner, and `sandbox serve` on a free loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commctl.cli import app

from .hostile import hostile  # noqa: F401  (the hostile-server fixture, for every test module)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-configs"


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


@pytest.fixture
def cli() -> Cli:
    """Run commctl in process: cli("show", "-g", "4100", input=...)."""

    def invoke(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Outcome:
        result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return invoke


@dataclass
class Sandbox:
    url: str
    db: Path
    process: subprocess.Popen[str]

    @property
    def args(self) -> list[str]:
        return ["--host", self.url, "--username", "sandbox"]

    @property
    def env(self) -> dict[str, str]:
        return {"COMMCTL_HOST": self.url, "COMMCTL_USERNAME": "sandbox", "COMMCTL_PASSWORD": "sandbox"}


def start_sandbox(db: Path, *flags: str) -> Sandbox:
    cmd = [sys.executable, "-m", "commctl", "sandbox", "serve", "--port", "0", "--db", str(db), *flags]
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    line = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0]
            return Sandbox(url, db, process)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"sandbox did not start: {line}")


def stop_sandbox(sandbox: Sandbox) -> None:
    sandbox.process.terminate()
    try:
        sandbox.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sandbox.process.kill()
    if sandbox.process.stderr:
        sandbox.process.stderr.close()


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Start `commctl sandbox serve` with extra flags; every server started is stopped afterwards."""
    started: list[Sandbox] = []

    def start(*flags: str, db: Path | None = None) -> Sandbox:
        sandbox = start_sandbox(db or tmp_path / f"sandbox{len(started)}.db", *flags)
        started.append(sandbox)
        return sandbox

    yield start
    for s in started:
        stop_sandbox(s)


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A fault-free sandbox; the environment points commctl at it."""
    s = sandbox_factory()
    for name, value in s.env.items():
        monkeypatch.setenv(name, value)
    return s


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
