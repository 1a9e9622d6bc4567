"""Injected faults: survived by retries (final state = desired), or reported precisely (exit 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commctl.sandbox.app import Faults

from .conftest import Cli, ServeSandbox, write

TARGETS = range(6001, 6021)


@pytest.fixture
def many(tmp_path: Path) -> tuple[Path, Path]:
    """A seed with 20 targets and a file giving each of them two communications."""
    seed = write(
        tmp_path / "seed.yaml",
        "channels: [{id: 1, name: SMS}, {id: 2, name: EMAIL}]\n"
        "targetGroups:\n- id: 600\n  targets:\n"
        + "".join(f"  - {{id: {t}}}\n" for t in TARGETS)
        + "credentials:\n  basic: [{username: sandbox, password: sandbox}]\n",
    )
    comms = write(
        tmp_path / "comms.yaml",
        "targetGroupId: 600\ndefaults: {channel: EMAIL}\ntargets:\n"
        + "".join(
            f"- targetId: {t}\n  communications:\n"
            f"  - {{communicationType: START, messageTemplate: 'Start {t}'}}\n"
            f"  - {{communicationType: FINISH, messageTemplate: 'End {t}', offsetDays: 1}}\n"
            for t in TARGETS
        ),
    )
    return seed, comms


def in_sync(cli: Cli, serve: ServeSandbox, db: Path, comms: Path) -> None:
    """A second, fault-free server on the same state: the desired state must be there exactly."""
    calm = serve(db=db)
    out = cli("diff", "-f", str(comms), "-o", "json", *calm.args, env={"COMMCTL_PASSWORD": "sandbox"})
    assert out.code == 0, out
    assert out.json()["summary"] == {"created": 0, "updated": 0, "unchanged": 40, "failed": 0}


@pytest.mark.parametrize("faults", [Faults(fail_rate=0.25, seed=1), Faults(drop_rate=0.25, seed=1)], ids=["503", "drop"])
def test_faults_are_survived(
    cli: Cli, serve_sandbox: ServeSandbox, many: tuple[Path, Path], tmp_path: Path, faults: Faults
) -> None:
    seed, comms = many
    db = tmp_path / "faulty.db"
    s = serve_sandbox(seed=seed, faults=faults, db=db)
    out = cli(
        "upsert",
        "-f",
        str(comms),
        "-o",
        "json",
        "--retries",
        "12",
        "--concurrency",
        "6",
        *s.args,
        env={"COMMCTL_PASSWORD": "sandbox"},
    )
    assert out.code == 0, out
    assert out.json()["summary"]["failed"] == 0
    in_sync(cli, serve_sandbox, db, comms)


@pytest.mark.waits
def test_rate_limit_is_survived_by_honouring_retry_after(
    cli: Cli, serve_sandbox: ServeSandbox, many: tuple[Path, Path], tmp_path: Path
) -> None:
    seed, comms = many
    db = tmp_path / "limited.db"
    # 41 requests (the channel list, 20 reads, 20 upserts) against 25 a second: the first second's
    # burst meets 429s, the rest waits for Retry-After (about 2 s in all)
    s = serve_sandbox(seed=seed, faults=Faults(rate_limit=25, rate_window=1), db=db)
    out = cli(
        "upsert",
        "-f",
        str(comms),
        "-o",
        "json",
        "--retries",
        "10",
        "--verbose",
        *s.args,
        env={"COMMCTL_PASSWORD": "sandbox"},
    )
    assert out.code == 0, out
    assert "< 429 Too Many Requests" in out.stderr
    in_sync(cli, serve_sandbox, db, comms)


def test_unavailable_api_is_exit_6_with_a_report_of_every_failed_target(
    cli: Cli, serve_sandbox: ServeSandbox, many: tuple[Path, Path], tmp_path: Path
) -> None:
    seed, comms = many
    s = serve_sandbox(seed=seed)
    report = tmp_path / "report.json"
    assert cli("upsert", "-f", str(comms), *s.args, env={"COMMCTL_PASSWORD": "sandbox"}).code == 0
    changed = write(tmp_path / "changed.yaml", comms.read_text().replace("End ", "Finished "))
    down = serve_sandbox(faults=Faults(fail_rate=1), db=s.db)
    out = cli(
        "upsert",
        "-f",
        str(changed),
        "--retries",
        "1",
        "--report",
        str(report),
        *down.args,
        env={"COMMCTL_PASSWORD": "sandbox"},
    )
    assert out.code == 6, out
    doc = json.loads(report.read_text())
    assert doc["summary"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 40}
    assert {r["targetId"] for r in doc["results"]} == set(TARGETS)
    assert all(r["error"]["status"] == 503 for r in doc["results"])
    assert out.stderr.count("error: group 600 target") == 40


def test_partial_outage_applies_what_it_can(
    cli: Cli, serve_sandbox: ServeSandbox, many: tuple[Path, Path], tmp_path: Path
) -> None:
    seed, comms = many
    s = serve_sandbox(seed=seed)
    assert cli("upsert", "-f", str(comms), *s.args, env={"COMMCTL_PASSWORD": "sandbox"}).code == 0
    changed = write(tmp_path / "changed.yaml", comms.read_text().replace("End ", "Finished "))
    # Deterministic partial outage: the server takes 31 requests an hour (the channel list, 20 reads,
    # 10 of the 20 upserts), then answers 429; with no retries exactly 10 targets fail, every run.
    # (An hour: a Retry-After that long is past any retry budget, so the run does not wait for it.)
    flaky = serve_sandbox(faults=Faults(rate_limit=31, rate_window=3600), db=s.db)
    out = cli(
        "upsert", "-f", str(changed), "-o", "json", "--retries", "0", *flaky.args, env={"COMMCTL_PASSWORD": "sandbox"}
    )
    assert out.code == 6, out
    doc = out.json()
    assert doc["summary"] == {"created": 0, "updated": 10, "unchanged": 20, "failed": 10}
    failed = {r["targetId"] for r in doc["results"] if r["action"] == "failed"}
    updated = {r["targetId"] for r in doc["results"] if r["action"] == "updated"}
    assert len(failed) == 10 and failed.isdisjoint(updated) and failed | updated == set(TARGETS)
    for r in doc["results"]:
        if r["action"] == "failed":
            assert (r["communicationType"], r["error"]["status"]) == ("FINISH", 429), r
    assert out.stderr.count("error: group 600 target") == 10

    # what was reported applied is applied: a fault-free rerun sends only the targets that failed
    again = cli("upsert", "-f", str(changed), "-o", "json", *s.args, env={"COMMCTL_PASSWORD": "sandbox"})
    assert again.code == 0, again
    assert again.json()["summary"] == {"created": 0, "updated": 10, "unchanged": 30, "failed": 0}
    assert {r["targetId"] for r in again.json()["results"] if r["action"] == "updated"} == failed


def test_timeout_is_exit_6(cli: Cli, serve_sandbox: ServeSandbox) -> None:
    s = serve_sandbox(faults=Faults(latency_ms=500))
    out = cli("channels", "--timeout", "0.1", "--retries", "0", *s.args, env={"COMMCTL_PASSWORD": "sandbox"})
    assert out.code == 6, out
    assert "timed out" in out.stderr
