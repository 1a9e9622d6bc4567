"""What a team adopts commctl with: the GitHub Action, the pre-commit hook, the container, the
licence and the dependency floors. The action's and the hook's commands are run for real; the
Dockerfile is checked statically (no container engine on the CI machines)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .conftest import ROOT, SAMPLES, write

PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Tests that install from the package index (a venv, a wheel build) run where CI is set: .ci/run.
needs_index = pytest.mark.skipif(not os.environ.get("CI"), reason="installs from the package index; CI runs it")


def load_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A `commctl` executable running this source tree's console-script target, as pip would install it."""
    module, func = PYPROJECT["project"]["scripts"]["commctl"].split(":")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "commctl"
    code = f"import sys; from {module} import {func}; sys.argv[0] = 'commctl'; sys.exit({func}())"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} "$@"\n')
    script.chmod(0o755)
    return script


# --- licence, changelog, typing marker, dependency floors -------------------------------------


def test_licence_changelog_and_typing_marker() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n") and "Copyright (c) 2026 the commctl authors" in licence
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert (ROOT / "src" / "commctl" / "py.typed").is_file()
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]


def floors() -> dict[str, Version]:
    found = {}
    for text in PYPROJECT["project"]["dependencies"]:
        req = Requirement(text)
        lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{text}: every runtime dependency needs one >= floor"
        found[req.name.lower()] = lower[0]
    return found


def lowest_pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            [spec] = list(req.specifier)
            assert spec.operator == "==", line
            pins[req.name.lower()] = Version(spec.version)
    return pins


def test_ci_tests_exactly_the_dependency_floors() -> None:
    assert lowest_pins() == floors()
    for text in PYPROJECT["project"]["dependencies"]:  # each pin is allowed by its own requirement
        req = Requirement(text)
        assert lowest_pins()[req.name.lower()] in req.specifier, text


def test_the_documented_python_is_the_one_required() -> None:
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    versions = [
        c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if re.search(r"Python :: 3\.\d+$", c)
    ]
    assert versions and all(Version(v) in requires for v in versions)
    assert load_yaml("action.yml")["inputs"]["python-version"]["default"] in versions


def test_ci_runs_the_readme_test_command_and_quickstart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    quickstart = re.search(r"^## Quickstart\n.*?^```sh\n(.*?)^```", readme, re.S | re.M)
    assert quickstart
    install, _, test_command = quickstart.group(1).splitlines()[1].partition(" && ")
    assert install == "pip install -e '.[test]'" and test_command.startswith("python -m pytest")
    assert f"suite {test_command}\n" in ci  # the README's test command is CI's, word for word
    assert re.search(r"^suite \S+ -m pytest -q --cov=commctl --cov-branch$", ci, re.M)  # and CI measures coverage
    development = readme[readme.index("## Development") :]
    assert f"\n{test_command}  " in development
    for command in ("ruff check src tests benchmarks", "mypy"):
        assert f"\n{command}\n" in ci and f"\n{command} " in development
    steps = [ci.index(f"\n{c}") for c in ("ruff check", "mypy", f"suite {test_command}")]
    assert steps == sorted(steps)  # lint, types, then the suite
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        from quickstart import quickstart_commands  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / ".ci"))
    assert quickstart_commands(readme) == [
        "commctl upsert -f sample-configs/ --host sandbox",
        "commctl show -g 4100 --host sandbox",
    ]


# --- pre-commit hook --------------------------------------------------------------------------


def hook() -> dict[str, Any]:
    hooks = load_yaml(".pre-commit-hooks.yaml")
    assert isinstance(hooks, list)
    [found] = [h for h in hooks if h["id"] == "commctl-validate"]
    assert isinstance(found, dict)
    return found


def test_hook_declares_a_python_hook_on_yaml_and_json() -> None:
    h = hook()
    assert {"id", "name", "entry", "language", "files"} <= h.keys()
    assert h["language"] == "python"  # pre-commit installs this repository at the rev the user pinned
    assert shlex.split(h["entry"]) == ["commctl", "validate", "--strict"]
    assert shlex.split(h["entry"])[0] in PYPROJECT["project"]["scripts"]
    assert h.get("pass_filenames", True) is True
    assert h["require_serial"] is True  # one run sees every file: duplicates across files are caught
    matches = re.compile(h["files"]).search
    for name in ("comms/a.yaml", "comms/b.yml", "c.json"):
        assert matches(name), name
    for name in ("README.md", "templates/start.html", "a.yaml.bak", "src/commctl/cli.py"):
        assert not matches(name), name


def run_hook(shim: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the hook's entry with the file names, as pre-commit does (names relative to the repo)."""
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    argv = shlex.split(hook()["entry"]) + files
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_hook_passes_the_samples(shim: Path) -> None:
    matches = re.compile(hook()["files"]).search
    files = sorted(str(p.relative_to(ROOT)) for p in SAMPLES.rglob("*") if p.is_file() and matches(str(p)))
    assert len(files) == 3, files  # the two YAML files and the JSON one; not the HTML template
    out = run_hook(shim, files)
    assert out.returncode == 0, out
    assert "9 communications in 3 file(s)" in out.stderr + out.stdout


@pytest.mark.slow
def test_hook_fails_a_broken_file_and_a_warning(shim: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "targetGroupId: 4100\ntargets:\n  - targetId: 5200\n    comunications: []\n")
    out = run_hook(shim, [str(bad)])
    assert out.returncode == 3, out
    assert f"{bad}:4:" in out.stderr and "communications" in out.stderr  # FILE:LINE and the did-you-mean

    warned = write(
        tmp_path / "warned.yaml",
        "targetGroupId: 4100\ntargets:\n  - targetId: 5200\n    communications:\n"
        "      - {communicationType: REMINDER, channelId: 2, messageTemplate: 'Last day!', offsetDays: 0}\n",
    )
    out = run_hook(shim, [str(warned)])
    assert out.returncode == 3, out  # --strict: a REMINDER with offsetDays 0 fails the commit
    relaxed = subprocess.run([str(shim), "validate", str(warned)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert relaxed.returncode == 0, relaxed  # ... which plain validate only warns about


# --- GitHub Action ----------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def action() -> dict[str, Any]:
    doc = load_yaml("action.yml")
    assert isinstance(doc, dict)
    return doc


def test_action_is_a_composite_with_the_documented_inputs() -> None:
    doc = action()
    assert doc["runs"]["using"] == "composite"
    inputs = doc["inputs"]
    assert inputs["command"]["required"] is True
    assert {"args", "python-version", "summary", "allowed-exit-codes"} <= inputs.keys()
    assert all("description" in spec for spec in inputs.values())
    assert {"exit-code", "output-file"} <= doc["outputs"].keys()
    steps = doc["runs"]["steps"]
    [setup] = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert setup["with"]["update-environment"] is False  # the job's own Python is left alone
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"
            # Inputs reach scripts only through env: an expression pasted into a script is injectable.
            assert "${{" not in step["run"], step["id"]
    install = next(s for s in steps if s.get("id") == "install")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert 'pip install --quiet --disable-pip-version-check "$ACTION_PATH"' in install["run"]


def run_step(step: dict[str, Any], context: dict[str, str], runner: Path) -> tuple[int, str, dict[str, str]]:
    """Run one `shell: bash` step the way the runner does; returns exit code, output and step outputs."""

    def evaluate(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"this test does not know the expression {match.group(0)}"
        return context[match.group(1)]

    outputs = runner / f"output-{step['id']}"
    outputs.write_text("")
    script = runner / f"step-{step['id']}.sh"
    script.write_text(step["run"])
    env = {**os.environ, "RUNNER_TEMP": str(runner), "GITHUB_OUTPUT": str(outputs)}
    env.update({k: EXPRESSION.sub(evaluate, str(v)) for k, v in step.get("env", {}).items()})
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],  # GitHub's `shell: bash`
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return proc.returncode, proc.stdout + proc.stderr, values


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RUNNER_TEMP plus the job summary and PATH files GitHub gives every step."""
    path = tmp_path / "runner"
    path.mkdir()
    for name, file in (("GITHUB_STEP_SUMMARY", "summary.md"), ("GITHUB_PATH", "path.txt")):
        (path / file).write_text("")
        monkeypatch.setenv(name, str(path / file))
    return path


@pytest.fixture
def run_action(runner: Path, shim: Path) -> Any:
    """Run the action's command step with the given inputs, commctl being this source tree."""
    doc = action()
    step = next(s for s in doc["runs"]["steps"] if s.get("id") == "run")

    def run(**given: str) -> tuple[int, str, dict[str, str]]:
        inputs = {name: str(spec.get("default", "")) for name, spec in doc["inputs"].items()}
        inputs.update({k.replace("_", "-"): v for k, v in given.items()})
        context = {f"inputs.{k}": v for k, v in inputs.items()}
        context["steps.install.outputs.commctl"] = str(shim)
        context["steps.install.outputs.python"] = sys.executable
        return run_step(step, context, runner)

    return run


@pytest.mark.slow
def test_action_applies_and_writes_the_job_summary(run_action: Any, runner: Path) -> None:
    code, log, outputs = run_action(command="upsert", args="-f sample-configs/ --host sandbox", summary="true")
    assert code == 0, log
    assert outputs["exit-code"] == "0"
    summary = (runner / "summary.md").read_text()
    assert summary.startswith("### commctl upsert\n") and "**9** created" in summary
    assert "| created | 4100 | 5200 | START |" in summary
    assert Path(outputs["output-file"]).read_text() + "\n" == summary
    assert "**9** created" in log  # the output is in the log too

    code, log, outputs = run_action(command="upsert", args="-f sample-configs/ --host sandbox")
    assert code == 0, log
    assert (runner / "summary.md").read_text() == summary  # summary: false appends nothing


@pytest.mark.slow
def test_action_exit_codes_pass_through_unless_allowed(run_action: Any) -> None:
    code, log, outputs = run_action(command="diff", args="-f sample-configs/ --host sandbox -o json")
    assert code == 7, log  # an empty sandbox differs from the files
    assert outputs["exit-code"] == "7"
    assert "::error::commctl diff exited 7" in log
    assert json.loads(Path(outputs["output-file"]).read_text())["summary"]["would-create"] == 9

    code, log, outputs = run_action(
        command="diff", args="-f sample-configs/ --host sandbox", allowed_exit_codes="0, 7", summary="true"
    )
    assert code == 0, log
    assert outputs["exit-code"] == "7" and "::error::" not in log


def test_action_inputs_are_split_like_a_shell_but_never_run(run_action: Any, runner: Path) -> None:
    marker = runner / "pwned"
    code, log, _ = run_action(command="validate", args=f"'sample-configs/' \"$(touch {marker})\" `touch {marker}`")
    assert code == 3, log  # the odd words reached commctl as file names that do not exist
    assert not marker.exists()
    assert "$(touch" in log

    code, log, outputs = run_action(command="validate", args="'sample-configs/")
    assert code == 2 and "cannot split" in log and outputs == {}, log
    code, log, _ = run_action(command="  ")
    assert code == 2 and "command input is empty" in log, log


@pytest.mark.slow
@needs_index
def test_action_install_step_installs_this_checkout(runner: Path, tmp_path: Path) -> None:
    doc = action()
    step = next(s for s in doc["runs"]["steps"] if s.get("id") == "install")
    context = {"github.action_path": str(ROOT), "steps.python.outputs.python-path": sys.executable}
    code, log, outputs = run_step(step, context, runner)
    assert code == 0, log
    assert re.search(r"^commctl \d+\.\d+\.\d+$", log, re.M), log
    commctl = Path(outputs["commctl"])
    assert commctl.is_file() and commctl.is_relative_to(runner)
    on_path = Path((runner / "path.txt").read_text().strip())
    assert sorted(p.name for p in on_path.iterdir()) == ["commctl"]  # not the venv's python or pip
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "fresh")}
    out = subprocess.run(
        [str(on_path / "commctl"), "show", "-g", "4100", "--host", "sandbox", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out
    assert json.loads(out.stdout) == []


# --- Dockerfile (static: no container engine here) --------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def test_dockerfile_pins_its_base_runs_as_non_root_and_enters_commctl() -> None:
    steps = dockerfile()
    bases = [args.split()[0] for ins, args in steps if ins == "FROM"]
    assert bases
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    for base in bases:
        m = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", base)
        assert m, f"{base}: pin an exact Python and Debian release of the slim image"
        assert Version(m.group(1)) in requires
    final = steps[max(i for i, (ins, _) in enumerate(steps) if ins == "FROM") :]
    users = [i for i, (ins, _) in enumerate(final) if ins == "USER"]
    assert users, "the image must not run as root"
    user = final[users[-1]][1].split(":")[0]
    assert user.isdigit() and int(user) != 0  # numeric, so runAsNonRoot can verify it
    assert all(ins != "RUN" for ins, _ in final[users[-1] :]), "nothing runs as root after USER"
    [entrypoint] = [args for ins, args in final if ins == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["commctl"]


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes):
            ignored = not negate
    return ignored


def copied_sources() -> list[str]:
    sources = []
    for ins, args in dockerfile():
        if ins == "COPY" and "--from=" not in args:
            sources += args.split()[:-1]
    return sources


def test_dockerfile_copies_files_that_exist_and_are_sent_to_the_build() -> None:
    sources = copied_sources()
    assert {"pyproject.toml", "README.md", "LICENSE", "src"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), f"{source} is excluded by .dockerignore"
    for excluded in (".git", ".venv", "tests", "src/commctl/__pycache__", ".ci/run"):
        assert dockerignored(excluded), excluded
    assert not dockerignored("src/commctl/cli.py")


@pytest.mark.slow
@needs_index
def test_dockerfile_build_stage_makes_a_wheel_from_what_it_copies(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for source in copied_sources():
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / source)
    [run] = [args for ins, args in dockerfile() if ins == "RUN" and "pip wheel" in args]
    argv = shlex.split(run.replace("--wheel-dir /dist", f"--wheel-dir {tmp_path / 'dist'}"))
    assert argv[:4] == ["python", "-m", "pip", "wheel"]
    out = subprocess.run([sys.executable, *argv[1:]], cwd=context, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out
    assert [p.name.split("-")[0] for p in (tmp_path / "dist").iterdir()] == ["commctl"]
