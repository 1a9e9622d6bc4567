"""Writes you can trust (SPEC 8.1-8.3): the journal, history, restore, saved plans, and honest early ends."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from commctl.sandbox.app import Faults

from .conftest import SAMPLES, Cli, Sandbox, ServeSandbox, write

SUMMER = str(SAMPLES / "summer-challenge.yaml")
ENV = {"COMMCTL_PASSWORD": "sandbox"}
REMINDER = ("upsert", "-g", "4100", "-t", "5200", "--type", "REMINDER", "-c", "SMS")


def live(cli: Cli, group: int = 4100) -> dict[tuple[int, str, int], dict[str, Any]]:
    out = cli("show", "-g", str(group), "-o", "json")
    assert out.code == 0, out
    return {(c["targetId"], c["communicationType"], c["channelId"]): c for c in out.json()}


def message(cli: Cli, key: tuple[int, str, int] = (5200, "REMINDER", 1)) -> str:
    return str(live(cli)[key]["messageTemplate"])


def edited(tmp_path: Path, *pairs: tuple[str, str]) -> Path:
    """A copy of the summer file (and its templates), with text replaced."""
    copy = tmp_path / "comms"
    if not copy.exists():
        shutil.copytree(SAMPLES, copy)
    text = Path(SUMMER).read_text()
    for old, new in pairs:
        text = text.replace(old, new)
    return write(copy / "summer-challenge.yaml", text)


def _group(tmp_path: Path, group: int, targets: range) -> tuple[Path, Path]:
    """A seed with one group of `targets` and a file giving each a START communication."""
    seed = write(
        tmp_path / "seed.yaml",
        f"channels: [{{id: 2, name: EMAIL}}]\ntargetGroups:\n- id: {group}\n  targets:\n"
        + "".join(f"  - {{id: {t}}}\n" for t in targets)
        + "credentials:\n  basic: [{username: sandbox, password: sandbox}]\n",
    )
    comms = write(
        tmp_path / "comms.yaml",
        f"targetGroupId: {group}\ndefaults: {{channelId: 2}}\ntargets:\n"
        + "".join(
            f"- targetId: {t}\n  communications: [{{communicationType: START, messageTemplate: 'Hi {t}'}}]\n"
            for t in targets
        ),
    )
    return seed, comms


def journal_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "commctl" / "journal").glob("*.jsonl"))


def test_a_write_is_journaled_before_and_after_and_reported_as_an_undo_record(
    cli: Cli, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    out = cli(*REMINDER, "--message", "Hurry up!", "-o", "json", "--report", str(tmp_path / "r.json"))
    assert out.code == 0, out
    doc = out.json()
    run = doc["run"]
    assert run["command"] == "upsert" and run["host"] == sandbox.url and run["id"] in out.stderr
    [row] = doc["results"]
    assert row["action"] == "updated"
    assert row["before"]["messageTemplate"] == "3 days left to reach your summer target!"
    assert row["changes"] == {
        "messageTemplate": {"from": "3 days left to reach your summer target!", "to": "Hurry up!"}
    }
    assert json.loads((tmp_path / "r.json").read_text()) == doc

    [newest] = [p for p in journal_files(tmp_path) if p.stem == run["id"]]
    assert stat.S_IMODE(newest.stat().st_mode) == 0o600
    intent, outcome = [json.loads(line) for line in newest.read_text().splitlines()]
    assert (intent["action"], outcome["action"]) == ("update", "updated")
    assert intent["before"]["messageTemplate"] == "3 days left to reach your summer target!"
    assert intent["after"]["messageTemplate"] == "Hurry up!"
    assert {k: intent[k] for k in ("run", "host", "targetGroupId", "targetId", "communicationType", "channelId")} == {
        "run": run["id"],
        "host": sandbox.url,
        "targetGroupId": 4100,
        "targetId": 5200,
        "communicationType": "REMINDER",
        "channelId": 1,
    }
    assert "sandbox" not in json.dumps([intent["before"], intent["after"]]).replace('"sandbox"', "")


def test_history_lists_writes_newest_first_with_filters(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    assert cli(*REMINDER, "--message", "one").code == 0
    out = cli("history", "-o", "json")
    assert out.code == 0, out
    entries = out.json()
    assert len(entries) == 6 and entries[0]["after"]["messageTemplate"] == "one"
    assert [e["action"] for e in entries] == ["updated", *["created"] * 5]
    only = cli("history", "-o", "json", "--type", "reminder", "-t", "5200", "-n", "1").json()
    assert [(e["communicationType"], e["action"]) for e in only] == [("REMINDER", "updated")]
    table = cli("history")
    assert table.code == 0 and "messageTemplate" in table.stdout, table


def test_restore_puts_back_what_a_run_replaced_and_deactivates_what_it_created(cli: Cli, sandbox: Sandbox) -> None:
    first = cli("upsert", "-f", SUMMER, "-o", "json").json()["run"]["id"]
    second = cli(*REMINDER, "--message", "oops", "-o", "json").json()["run"]["id"]
    assert message(cli) == "oops"

    dry = cli("restore", second, "--dry-run", "-o", "json")
    assert dry.code == 0, dry
    assert dry.json()["summary"]["would-update"] == 1 and message(cli) == "oops"

    undo = cli("restore", second, "-o", "json")
    assert undo.code == 0, undo
    assert message(cli) == "3 days left to reach your summer target!"
    assert undo.json()["run"]["command"] == "restore"
    assert cli("restore", second, "-o", "json").json()["summary"]["unchanged"] == 1  # done is done

    # the first run created everything: undoing it switches its communications off (there is no delete)
    off = cli("restore", first, "-o", "json")
    assert off.code == 0, off
    assert off.json()["summary"]["updated"] == 4  # the fifth was created switched off already
    assert not any(c["active"] for c in live(cli).values())

    # a restore is a run like any other: undo it
    undo_of_undo = cli("history", "-o", "json", "-n", "1").json()[0]["run"]
    assert cli("restore", undo_of_undo).code == 0
    assert all(c["active"] for k, c in live(cli).items() if k != (5201, "CHANGE", 2))


def test_restore_leaves_conflicts_alone_unless_forced(cli: Cli, sandbox: Sandbox) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    run = cli(*REMINDER, "--message", "ours", "-o", "json").json()["run"]["id"]
    assert cli(*REMINDER, "--message", "someone else's").code == 0

    out = cli("restore", run, "-o", "json")
    assert out.code == 5, out
    [row] = out.json()["results"]
    assert row["action"] == "conflict" and "changed since run" in row["error"]["message"]
    assert message(cli) == "someone else's"

    forced = cli("restore", run, "--force", "-o", "json")
    assert forced.code == 0, forced
    assert message(cli) == "3 days left to reach your summer target!"


def test_restore_from_a_report_and_filters(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    changed = edited(tmp_path, ("Your summer", "Our summer"))
    report = tmp_path / "apply.json"
    assert cli("upsert", "-f", str(changed), "--report", str(report)).code == 0
    subjects = {k: c["subjectTemplate"] for k, c in live(cli).items()}
    assert subjects[(5200, "START", 2)].startswith("Our") and subjects[(5200, "FINISH", 2)].startswith("Our")

    only = cli("restore", "--from", str(report), "--type", "FINISH", "-o", "json")
    assert only.code == 0, only
    subjects = {k: c["subjectTemplate"] for k, c in live(cli).items()}
    assert subjects[(5200, "START", 2)].startswith("Our") and subjects[(5200, "FINISH", 2)].startswith("Your")

    assert cli("restore", "--from", str(report)).code == 0
    assert live(cli)[(5200, "START", 2)]["subjectTemplate"] == "Your summer challenge has started"
    # the journal file itself works as --from too
    assert cli("restore", "--from", str(journal_files(tmp_path)[0]), "--dry-run").code == 0


def test_restore_usage_errors(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("restore").code == 2
    assert cli("restore", "20990101T000000Z-dead").code == 2
    junk = write(tmp_path / "junk.json", '{"hello": 1}\n')
    bad = cli("restore", "--from", str(junk))
    assert bad.code == 3, bad
    assert "Traceback" not in bad.stderr


def test_a_saved_plan_applies_exactly_and_refuses_what_moved(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    assert cli("upsert", "-f", SUMMER).code == 0
    files = edited(tmp_path, ("3 days left", "Only 3 days left"), ("is over", "has ended"))
    plan = tmp_path / "plan.json"
    review = cli("diff", "-f", str(files), "--plan-out", str(plan))
    assert review.code == 7, review
    saved = json.loads(plan.read_text())
    assert saved["host"] == sandbox.url and len(saved["items"]) == 2

    # after review, someone changes one planned communication and the files change again
    assert cli(*REMINDER, "--message", "someone else's").code == 0
    edited(tmp_path, ("Thanks for taking part", "Cheers"))

    out = cli("apply", str(plan), "-o", "json")
    assert out.code == 5, out
    by = {r["communicationType"]: r for r in out.json()["results"]}
    assert (by["REMINDER"]["action"], by["FINISH"]["action"]) == ("conflict", "updated")
    assert out.json()["summary"] == {"created": 0, "updated": 1, "unchanged": 0, "failed": 0, "conflict": 1}
    state = live(cli)
    assert state[(5200, "REMINDER", 1)]["messageTemplate"] == "someone else's"
    assert state[(5200, "FINISH", 2)]["subjectTemplate"] == "Your summer challenge has ended"
    assert "Cheers" not in json.dumps(list(state.values()))  # exactly the plan, not the files as they are now

    again = cli("apply", str(plan), "-o", "json")
    assert again.json()["summary"]["unchanged"] == 1  # what was applied stays applied


def test_apply_refuses_a_plan_for_another_host_or_a_broken_plan(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert cli("upsert", "-f", SUMMER, "--dry-run", "--plan-out", str(plan)).code == 0
    other = cli("apply", str(plan), "--host", "sandbox")
    assert other.code == 4, other
    assert "was made for" in other.stderr
    broken = write(tmp_path / "broken.json", plan.read_text().replace('"version": 1', '"version": 9'))
    assert cli("apply", str(broken)).code == 3
    doc = json.loads(plan.read_text())
    del doc["items"][0]["after"]["messageTemplate"]  # a hand-edited plan that could not be sent as is
    tampered = cli("apply", str(write(tmp_path / "tampered.json", json.dumps(doc))))
    assert tampered.code == 3, tampered
    assert "items.0.after" in tampered.stderr and "Traceback" not in tampered.stderr
    assert cli("upsert", "-f", SUMMER, "--plan-out", str(plan)).code == 2  # --plan-out needs --dry-run
    assert cli("apply", str(plan)).code == 0
    assert len(live(cli)) == 5


def test_a_crash_while_rendering_keeps_the_report_of_what_was_applied(
    cli: Cli, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commctl import render

    def broken(*args: Any) -> Any:
        raise RuntimeError("render bug")

    monkeypatch.setattr(render, "results_table", broken)
    report = tmp_path / "r.json"
    out = cli("upsert", "-f", SUMMER, "--report", str(report))
    assert out.code == 1, out
    doc = json.loads(report.read_text())
    assert doc["summary"]["created"] == 5 and doc["error"]["kind"] == "internal"
    assert len(live(cli)) == 5


def test_an_unwritable_report_is_exit_2_before_anything_is_sent(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    out = cli("upsert", "-f", SUMMER, "--report", str(tmp_path / "missing" / "r.json"))
    assert out.code == 2, out
    assert live(cli) == {}


def test_answers_lost_after_the_write_are_read_back_not_reported_failed(
    cli: Cli, serve_sandbox: ServeSandbox, tmp_path: Path
) -> None:
    seed, comms = _group(tmp_path, 700, range(7001, 7031))
    s = serve_sandbox(seed=seed, faults=Faults(drop_rate=0.3, seed=2))  # the same answers are lost every run
    out = cli("upsert", "-f", str(comms), "-o", "json", "--retries", "0", *s.args, env=ENV)
    assert out.code in (0, 5, 6), out
    stored = {r[0] for r in sqlite3.connect(s.db).execute("SELECT target_id FROM communications WHERE group_id = 700")}
    results = {r["targetId"]: r["action"] for r in out.json()["results"]}
    for target, action in results.items():
        if action == "failed":
            assert target not in stored, f"target {target} was applied but reported failed"
        if action == "created":
            assert target in stored
    assert set(results.values()) <= {"created", "failed", "unknown"}


SLOW_TARGETS = range(8001, 8061)


def _slow_batch(tmp_path: Path, serve: ServeSandbox) -> tuple[Sandbox, Path]:
    """Writes take 150 ms each, so a signal lands mid-batch; the reads before them answer at once."""
    seed, comms = _group(tmp_path, 800, SLOW_TARGETS)
    return serve(seed=seed, faults=Faults(latency_ms=150), slow=lambda method, _path: method != "GET"), comms


def _stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM communications WHERE group_id = 800").fetchone()[0])


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_mid_batch_stops_new_writes_and_reports_everything(
    serve_sandbox: ServeSandbox, tmp_path: Path, sig: str, code: int
) -> None:
    import signal

    s, comms = _slow_batch(tmp_path, serve_sandbox)
    report = tmp_path / "report.json"
    env = {**os.environ, "COMMCTL_PASSWORD": "sandbox", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "commctl", "upsert", "-f", str(comms), "--concurrency", "2", "-o", "json"]
    proc = subprocess.Popen(
        [*cmd, "--report", str(report), *s.args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while _stored(s.db) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    at_signal = _stored(s.db)
    proc.send_signal(getattr(signal, sig))
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    after = _stored(s.db)
    assert after - at_signal <= 2, f"{after - at_signal} writes started after {sig}"  # concurrency 2
    doc = json.loads(report.read_text())
    assert json.loads(stdout) == doc
    actions = [r["action"] for r in doc["results"]]
    assert len(actions) == len(SLOW_TARGETS)
    assert actions.count("created") == after and actions.count("skipped") == len(SLOW_TARGETS) - after
    assert doc["summary"]["skipped"] == len(SLOW_TARGETS) - after
    journal = [json.loads(line) for p in journal_files(tmp_path) for line in p.read_text().splitlines()]
    assert sum(e["action"] == "created" for e in journal) == after
    _journal_agrees(journal, doc)
    assert "interrupted" in stderr


def _journal_agrees(journal: list[dict[str, Any]], doc: dict[str, Any]) -> None:
    """Every item the report says was tried is in the journal, and every journaled one ends as reported
    (journaled ahead and never sent: `skipped` in both)."""
    journaled, reported = _latest_actions(journal), _report_actions(doc)
    assert journaled == {k: reported[k] for k in journaled}
    assert {k for k, action in reported.items() if action != "skipped"} <= set(journaled)


def _latest_actions(journal: list[dict[str, Any]]) -> dict[tuple[int, str], str]:
    return {(e["targetId"], e["communicationType"]): e["action"] for e in journal}


def _report_actions(doc: dict[str, Any]) -> dict[tuple[int, str], str]:
    return {(r["targetId"], r["communicationType"]): r["action"] for r in doc["results"]}


def test_a_401_from_the_kth_write_on_reports_what_was_applied_and_skips_the_rest(
    cli: Cli, serve_sandbox: ServeSandbox, tmp_path: Path
) -> None:
    from commctl.sandbox.app import Faults

    seed, comms = _group(tmp_path, 900, range(9001, 9011))
    # channels (1) and the ten reads (10) pass, then four writes; the fifth write meets revoked credentials
    s = serve_sandbox(seed=seed, faults=Faults(auth_fail_after=1 + 10 + 5))
    report = tmp_path / "r.json"
    out = cli("upsert", "-f", str(comms), "--concurrency", "1", "-o", "json", "--report", str(report), *s.args, env=ENV)
    assert out.code == 4, out
    doc = json.loads(report.read_text())
    assert out.json() == doc
    assert doc["error"]["kind"] == "auth"
    assert [r["action"] for r in doc["results"]] == ["created"] * 4 + ["failed"] + ["skipped"] * 5
    assert doc["summary"] == {"created": 4, "updated": 0, "unchanged": 0, "failed": 1, "skipped": 5}
    with sqlite3.connect(s.db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM communications").fetchone()[0] == 4
    [path] = journal_files(tmp_path)
    journal = [json.loads(line) for line in path.read_text().splitlines()]
    _journal_agrees(journal, doc)
    # what was journaled and never sent is neither history nor something to restore
    shown = cli("history", "--run", doc["run"]["id"], "-o", "json", env=ENV).json()
    assert sorted(e["action"] for e in shown) == ["created"] * 4 + ["failed"]
    from commctl.journal import undo_records

    assert [u.key[1] for u in undo_records(path)[2]] == list(range(9001, 9005))


def test_an_unwritable_journal_is_exit_2_before_anything_is_sent(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    blocker = write(tmp_path / "not-a-dir", "")
    out = cli("upsert", "-f", SUMMER, env={"COMMCTL_JOURNAL_DIR": str(blocker / "journal")})
    assert out.code == 2, out
    assert "COMMCTL_JOURNAL_DIR" in out.stderr
    assert live(cli) == {}


def test_a_second_ctrl_c_quits_at_once(serve_sandbox: ServeSandbox, tmp_path: Path) -> None:
    import signal

    seed, comms = _group(tmp_path, 800, SLOW_TARGETS)
    # the reads of targets take 2 s each (the channel list before them answers at once)
    s = serve_sandbox(seed=seed, faults=Faults(latency_ms=2000), slow=lambda _method, path: path.endswith("/communications"))
    env = {**os.environ, "COMMCTL_PASSWORD": "sandbox"}
    cmd = [sys.executable, "-m", "commctl", "upsert", "-f", str(comms), "--concurrency", "1", "--verbose", *s.args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    while "/communications" not in proc.stderr.readline():  # --verbose: the batch is reading targets
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    while "interrupted" not in proc.stderr.readline():  # the first asks to finish what is in flight...
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)  # ...the second does not wait for it
    proc.wait(timeout=1.5)
    assert proc.returncode == 130


def test_a_signal_ends_the_retry_backoffs_in_flight(serve_sandbox: ServeSandbox, tmp_path: Path) -> None:
    """A server answering 503 puts every read in a long backoff; SIGTERM ends them now (SPEC 8.3)."""
    import signal

    seed, comms = _group(tmp_path, 800, range(8001, 8004))
    s = serve_sandbox(seed=seed, faults=Faults(fail_rate=1.0))
    env = {**os.environ, "COMMCTL_PASSWORD": "sandbox", "COMMCTL_RETRY_BACKOFF": "60"}
    cmd = [sys.executable, "-m", "commctl", "upsert", "-f", str(comms), "-o", "json", "--verbose", *s.args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    while not proc.stderr.readline().startswith("< 503"):  # --verbose: a read failed and is backing off
        assert proc.poll() is None
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout = proc.stdout.read()
    proc.wait(timeout=10)
    assert time.monotonic() - signalled < 5  # not the 30-60 s backoff
    assert proc.returncode == 143
    summary = json.loads(stdout)["summary"]
    assert summary["failed"] == 0 and summary["skipped"] == 3, summary  # reads cut short: no write was tried


def test_only_intents_wait_for_the_disk_and_close_syncs_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC 8.1 needs what a write is about to do on disk before it is sent; outcomes ride along."""
    from commctl.domain import Action
    from commctl.journal import Journal, RunInfo
    from commctl.models import Item

    synced: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    journal = Journal(RunInfo("20261127T160255Z-3f9c", "2026-11-27T16:02:55Z", "sandbox", "upsert"), tmp_path)
    for target in (1, 2, 3):
        item = Item(4100, target, "START", 2, action=Action.CREATE)
        after = {"messageTemplate": f"m{target}"}
        journal.intend([(item, after)])
        size = journal.path.stat().st_size
        assert synced[-1] == size  # the intent was on disk before the write would be sent
        item.action, item.result = Action.CREATED, after
        journal.outcome([item])
    assert len(synced) == 3  # one sync per intent, none for the outcomes
    journal.close()
    assert len(synced) == 4 and synced[-1] == journal.path.stat().st_size  # close put the last outcome on disk
    actions = [json.loads(line)["action"] for line in journal.path.read_text().splitlines()]
    assert actions == ["create", "created"] * 3


def test_intents_are_on_disk_before_each_write_and_share_syncs(monkeypatch: pytest.MonkeyPatch) -> None:
    """One sync covers a window of targets (SPEC 9), and still no write leaves before its intent (SPEC 8.1)."""
    import threading
    from collections.abc import Iterable, Mapping

    from commctl import plan
    from commctl.domain import Action
    from commctl.models import CREATE_DEFAULTS, Item

    class Recorder:
        def __init__(self) -> None:
            self.on_disk: set[int] = set()
            self.syncs = 0
            self.skipped: list[int] = []
            self.lock = threading.Lock()

        def intend(self, items: Iterable[tuple[Item, Mapping[str, Any]]]) -> None:
            with self.lock:
                self.on_disk |= {i.target for i, _ in items}
                self.syncs += 1

        def outcome(self, items: Iterable[Item]) -> None:
            with self.lock:
                self.skipped += [i.target for i in items if i.action is Action.SKIPPED]

    sent: list[int] = []
    stop = threading.Event()

    class Client:
        def upsert(self, group: int, target: int, body: list[dict[str, Any]]) -> list[Any]:
            assert target in recorder.on_disk, f"target {target} was sent before its intent was on disk"
            sent.append(target)
            if len(sent) == 150:
                stop.set()  # a signal: nothing new starts
            return []

    def items(n: int) -> list[Item]:
        return [
            Item(4100, t, "START", 2, action=Action.CREATE, desired={"messageTemplate": f"m{t}", **CREATE_DEFAULTS})
            for t in range(1, n + 1)
        ]

    recorder = Recorder()
    done = plan.apply(Client(), items(200), concurrency=8, journal=recorder)  # type: ignore[arg-type]
    assert sorted(sent) == list(range(1, 201))
    assert recorder.syncs == 13  # ceil(200 / 16), not one per target
    assert recorder.skipped == [] and {i.action for i in done} == {Action.CREATED}

    recorder, sent = Recorder(), []
    done = plan.apply(Client(), items(300), concurrency=4, journal=recorder, stop=stop)  # type: ignore[arg-type]
    skipped = sorted(i.target for i in done if i.action is Action.SKIPPED)
    assert len(sent) + len(skipped) == 300 and len(sent) <= 150 + 4
    # every target journaled and never sent has its `skipped` line; none past the last window was journaled
    assert sorted(recorder.skipped) == [t for t in skipped if t in recorder.on_disk]
    assert len(recorder.on_disk) < 300


def test_what_a_stop_cuts_short_before_any_write_is_skipped_not_failed() -> None:
    """A read or the channel list failing once the run is stopped is not retried, and the items whose
    writes were never attempted end `skipped` (SPEC 8.3), not `failed` (found by review)."""
    import threading

    import httpx

    from commctl import plan
    from commctl.client import Client
    from commctl.domain import Action
    from commctl.models import Desired

    stop = threading.Event()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if len(calls) == 1:
            stop.set()  # the signal comes while the first read is in flight, and that read fails
            return httpx.Response(503, json={"data": None, "errors": [], "warnings": []})
        return httpx.Response(200, json={"data": [], "errors": [], "warnings": []})

    client = Client("http://127.0.0.1:9", None, transport=httpx.MockTransport(handler), backoff=0.001, stop=stop)
    desired = [Desired(9000, 1, "START", 2, {"messageTemplate": "hi"}, where="f.yaml:1:1")]
    live = plan.fetch_live(client, [(9000, 1)], 1, stop=stop)
    items = plan.apply(client, plan.plan(desired, live), stop=stop)
    assert calls == ["GET /v3/targetGroups/9000/targets/1/communications"]  # no retry, no write
    assert [i.action for i in items] == [Action.SKIPPED]

    from commctl.errors import StoppedError, UnavailableError

    lost = UnavailableError("GET /v3/targetGroups/channels: no answer")
    assert [i.action for i in plan.failed_items(desired, lost, stop)] == [Action.SKIPPED]
    assert [i.action for i in plan.failed_items(desired, lost)] == [Action.FAILED]
    assert [i.action for i in plan.failed_items(desired, StoppedError("not sent"))] == [Action.SKIPPED]


def test_a_write_waiting_for_its_rate_slot_at_the_stop_is_not_sent() -> None:
    import threading

    import httpx

    from commctl import plan
    from commctl.client import Client
    from commctl.domain import Action
    from commctl.models import CREATE_DEFAULTS, Item
    from commctl.ratelimit import Limiter

    stop = threading.Event()
    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request.url.path)
        stop.set()  # the signal comes with the first answer; the next write waits for its slot (every 5 s)
        return httpx.Response(200, json={"data": [], "errors": [], "warnings": []})

    limiter = Limiter(0.2, 1, stop=stop)
    client = Client("http://127.0.0.1:9", None, transport=httpx.MockTransport(handler), limiter=limiter, stop=stop)
    items = [
        Item(9000, t, "START", 2, action=Action.CREATE, desired={**CREATE_DEFAULTS, "messageTemplate": "hi"})
        for t in (1, 2)
    ]
    class Recorder:
        def __init__(self) -> None:
            self.lines: list[tuple[int, str]] = []

        def intend(self, intents: Any) -> None:
            self.lines += [(i.target, "create" if i.live is None else "update") for i, _ in intents]

        def outcome(self, outcomes: Any) -> None:
            self.lines += [(i.target, i.action.value) for i in outcomes]

    journal = Recorder()
    started = time.monotonic()
    plan.apply(client, items, concurrency=2, journal=journal)  # both start before the stop; one waits for a slot
    assert time.monotonic() - started < 3
    assert len(posts) == 1 and sorted(i.action.value for i in items) == ["created", "skipped"]
    sent = int(posts[0].split("/")[5])
    assert sorted(journal.lines) == sorted([(1, "create"), (2, "create"), (sent, "created"), (3 - sent, "skipped")])


def test_history_marks_an_intent_with_no_outcome(cli: Cli, tmp_path: Path) -> None:
    """After a hard kill the journal holds intents without outcomes: history must not pass them off as writes."""
    directory = tmp_path / "state" / "commctl" / "journal"
    directory.mkdir(parents=True)
    line = {
        "run": "20261127T160255Z-3f9c", "at": "2026-11-27T16:02:55.000Z", "host": "sandbox",
        "targetGroupId": 4100, "targetId": 5200, "communicationType": "START", "channelId": 2,
        "before": {"messageTemplate": "a"}, "after": {"messageTemplate": "b"},
    }  # fmt: skip
    (directory / "20261127T160255Z-3f9c.jsonl").write_text(
        json.dumps({**line, "action": "update"}) + "\n" + json.dumps({**line, "targetId": 5201, "action": "update"})
        + "\n" + json.dumps({**line, "targetId": 5201, "action": "updated"}) + "\n"
    )  # fmt: skip
    out = cli("history")
    assert out.code == 0, out
    actions = {row.split("\t")[3]: row.split("\t")[6] for row in out.stdout.splitlines()[1:]}
    assert actions == {"5200": "update (no outcome)", "5201": "updated"}


@pytest.mark.parametrize("where", ["reading back a lost answer", "taking in the answer"])
def test_a_bug_after_a_write_was_sent_leaves_it_unknown_not_skipped(
    cli: Cli, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A write that may have landed is never recorded `skipped` (restore passes those by): when
    commctl breaks once it has sent it (a bug), the run ends with an internal error, the write is
    `unknown` in the journal, and restore puts back what it replaced."""
    from commctl.client import Client
    from commctl.errors import UnavailableError

    assert cli("upsert", "-f", SUMMER).code == 0
    real_upsert, real_read = Client.upsert, Client.communications
    reads: list[int] = []

    def upsert(self: Client, group: int, target: int, items: list[dict[str, Any]]) -> Any:
        real_upsert(self, group, target, items)  # the write lands
        if where == "taking in the answer":
            raise RuntimeError("a bug taking in the answer")
        raise UnavailableError("the connection closed before the answer came", status=None)

    def communications(self: Client, group: int, target: int) -> Any:
        reads.append(target)
        if len(reads) > 1:
            raise RuntimeError("a bug reading back")
        return real_read(self, group, target)

    with monkeypatch.context() as patch:
        patch.setattr(Client, "upsert", upsert)
        patch.setattr(Client, "communications", communications)
        out = cli(*REMINDER, "--message", "Hurry up!", "-o", "json")
    assert out.code == 1, out
    assert "internal error: RuntimeError: a bug" in out.stderr
    [newest] = [p for p in journal_files(tmp_path) if p.stem in out.stderr]
    entries = [json.loads(line) for line in newest.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["update", "unknown"]

    assert message(cli) == "Hurry up!"
    restored = cli("restore", newest.stem)
    assert restored.code == 0, restored
    assert message(cli) == "3 days left to reach your summer target!"


@pytest.mark.parametrize("landed", [True, False], ids=["landed", "not-landed"])
def test_a_write_answered_with_what_the_api_never_sends_is_read_back(
    cli: Cli, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, landed: bool
) -> None:
    """A 2xx answer that is not the API's (a proxy's page, a body that does not validate) may follow a
    write that landed: the target is read again; what is live as intended is applied, the rest failed."""
    from commctl.client import Client
    from commctl.errors import ApiError

    assert cli("upsert", "-f", SUMMER).code == 0
    real_upsert = Client.upsert

    def upsert(self: Client, group: int, target: int, items: list[dict[str, Any]]) -> Any:
        if landed:
            real_upsert(self, group, target, items)
        raise ApiError("unexpected reply from POST /v3/...: not JSON (text/html)", status=200)

    with monkeypatch.context() as patch:
        patch.setattr(Client, "upsert", upsert)
        out = cli(*REMINDER, "--message", "Hurry up!", "-o", "json")
    [row] = out.json()["results"]
    assert (out.code, row["action"]) == ((0, "updated") if landed else (5, "failed")), out
    assert message(cli) == ("Hurry up!" if landed else "3 days left to reach your summer target!")
