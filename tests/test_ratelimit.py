"""Rate limits (SPEC section 9): `--rate`, adaptive slowing on 429, and a bulk run against a limited server.

The limiter's own tests run on a fake clock, so they assert schedules, not timings.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from commctl.ratelimit import MARGIN, NEAR, Limiter

from .conftest import Cli, Sandbox, start_sandbox


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(rate: float | None = None, concurrency: int = 8) -> tuple[Limiter, FakeClock]:
    clock = FakeClock()
    return Limiter(rate, concurrency, clock=clock, sleep=clock.sleep), clock


def test_rate_spaces_requests_evenly() -> None:
    lim, _clock = limiter(rate=5)
    starts = []
    for _ in range(6):
        starts.append(lim.acquire())
        lim.release(starts[-1], 200)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.2] * 5


def test_without_rate_nothing_waits() -> None:
    lim, clock = limiter()
    for _ in range(50):
        lim.release(lim.acquire(), 200)
    assert clock.slept == [] and lim.rate is None


def test_the_first_429_pauses_everyone_and_sets_the_rate_the_server_let_through() -> None:
    lim, clock = limiter(concurrency=8)
    for _ in range(40):  # a burst: 40 accepted within 0.4 s, then a 429 asking for 1 s
        lim.release(lim.acquire(), 200)
        clock.now += 0.01
    refused = lim.acquire()
    lim.release(refused, 429, retry_after=1.0)
    assert lim.rate == pytest.approx(MARGIN * 40 / 1.0)  # 40 accepted over a 1 s window
    assert lim.window == 4
    start = lim.acquire()
    assert start == pytest.approx(refused + 1.0)  # nobody starts before Retry-After


def test_a_per_minute_limit_is_found_from_one_429() -> None:
    lim, _clock = limiter()
    for _ in range(120):
        lim.release(lim.acquire(), 200)
    lim.release(lim.acquire(), 429, retry_after=60.0)
    assert lim.rate == pytest.approx(MARGIN * 120 / 60)


def test_answers_to_requests_sent_before_a_slowdown_do_not_slow_again() -> None:
    lim, _clock = limiter(concurrency=12)
    tickets = [lim.acquire() for _ in range(8)]  # eight in flight when the server starts refusing
    for _ in range(3):
        lim.release(lim.acquire(), 200)
    lim.release(tickets[0], 429, retry_after=1.0)
    rate, window = lim.rate, lim.window
    for t in tickets[1:]:
        lim.release(t, 429, retry_after=1.0)
    assert (lim.rate, lim.window, lim.slowdowns) == (rate, window, 1)


def test_a_paced_run_that_is_refused_goes_slower_without_pausing_for_a_short_wait() -> None:
    lim, clock = limiter(rate=100)
    for _ in range(5):
        lim.release(lim.acquire(), 200)
    ticket = lim.acquire()
    lim.release(ticket, 429, retry_after=1.0)
    assert lim.rate == pytest.approx(93)
    before = clock.now
    lim.release(lim.acquire(), 200)
    assert clock.now - before < 0.05  # paced, not paused
    lim.release(lim.acquire(), 429, retry_after=30.0)  # a long wait: the server's window is full
    assert lim.acquire() >= clock.now and sum(clock.slept) >= 30.0


def test_the_rate_recovers_gradually_and_never_above_the_flag() -> None:
    lim, _clock = limiter(rate=50)
    lim.release(lim.acquire(), 429, retry_after=1.0)
    cut = lim.rate
    assert cut is not None and cut < 50
    rates: list[float] = []
    for _ in range(3000):  # 60 s of answers at 50 per second
        lim.release(lim.acquire(), 200)
        assert lim.rate is not None
        rates.append(lim.rate)
    assert rates == sorted(rates)  # only up while the server says nothing
    assert rates[-1] == 50  # back to the flag, never past it
    assert lim.window == 8


def test_recovery_stops_just_under_the_refused_rate_for_a_while() -> None:
    lim, clock = limiter()
    for _ in range(100):
        lim.release(lim.acquire(), 200)
    lim.release(lim.acquire(), 429, retry_after=1.0)
    trouble = 100 / 1.0
    for _ in range(200):  # ~4 s at under 50 per second
        lim.release(lim.acquire(), 200)
        clock.now += 0.02
    assert lim.rate is not None and lim.rate <= NEAR * trouble + 1e-9


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_a_rate_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        Limiter(bad)


# ---- the setting ----


def test_rate_comes_from_flag_env_or_config(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config" / "commctl" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("rate: 12.5\n")
    out = cli("config", "show", "-o", "json")
    assert out.code == 0, out
    assert out.json()["rate"] == {"value": "12.5", "source": f"config {config}"}
    monkeypatch.setenv("COMMCTL_RATE", "3")
    assert cli("config", "show", "-o", "json").json()["rate"] == {"value": "3.0", "source": "env COMMCTL_RATE"}


@pytest.mark.parametrize("bad", ["abc", "0", "-2", "nan", "inf", "true"])
def test_a_bad_rate_from_the_environment_is_exit_4(cli: Cli, bad: str, sandbox: Sandbox) -> None:
    out = cli("show", "-g", "4100", "-o", "json", env={"COMMCTL_RATE": bad})
    assert out.code == 4, out
    assert out.json()["error"]["message"].startswith("COMMCTL_RATE: ")


def test_a_bad_rate_flag_is_exit_2(cli: Cli) -> None:
    out = cli("upsert", "-f", "x.yaml", "--rate", "0")
    assert out.code == 2, out


def test_a_rate_in_a_config_file_that_is_a_boolean_is_exit_4(cli: Cli, tmp_path: Path, sandbox: Sandbox) -> None:
    config = tmp_path / "config" / "commctl" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("rate: true\n")
    out = cli("show", "-g", "4100", "-o", "json")
    assert out.code == 4, out


# ---- against a rate-limited sandbox ----

TARGETS, LIMIT = 150, 75  # 301 requests against 75 per second: about four seconds, most of them waited out beside
# other tests (`waits`). Fewer windows let a client that ignores 429s pass: it meets the limit too seldom.


@pytest.mark.waits
def test_a_bulk_run_against_a_per_second_limit_gets_few_429s_and_completes(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "channels: [{id: 1, name: SMS}, {id: 2, name: EMAIL}]\ntargetGroups:\n- id: 900\n  targets:\n"
        + "".join(f"  - {{id: {t}}}\n" for t in range(1, TARGETS + 1))
        + "credentials:\n  basic: [{username: sandbox, password: sandbox}]\n"
    )
    comms = tmp_path / "comms.yaml"
    comms.write_text(
        "targetGroupId: 900\ntargets:\n"
        + "".join(
            f"- targetId: {t}\n  communications:\n  - {{communicationType: START, channelId: 2, messageTemplate: m{t}}}\n"
            for t in range(1, TARGETS + 1)
        )
    )
    server = start_sandbox(tmp_path / "limited.db", "--seed", str(seed), "--rate-limit", f"{LIMIT}/s", "--verbose")
    assert server.process is not None and server.process.stderr is not None
    stream, lines = server.process.stderr, list[str]()
    # Read its request log as it comes: a full pipe would stall the server.
    reader = threading.Thread(target=lines.extend, args=(iter(stream.readline, ""),), daemon=True)
    reader.start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "commctl", "upsert", "-f", str(comms), *server.args, "-o", "json", "--retries", "8"],
            capture_output=True,
            text=True,
            env={**os.environ, "COMMCTL_PASSWORD": "sandbox"},
            timeout=300,
        )
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
        reader.join(timeout=10)
        server.stop()
    log = "".join(lines)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["summary"] == {"created": TARGETS, "updated": 0, "unchanged": 0, "failed": 0}
    statuses = re.findall(r" /v3/\S* (\d{3})\b", log)
    assert len(statuses) >= 2 * TARGETS + 1, log[-2000:]  # the server's log saw every request
    refused = statuses.count("429")
    assert refused >= 1, "the run never met the limit: nothing was tested"
    assert refused <= 0.05 * len(statuses), f"{refused} of {len(statuses)} requests answered 429"


def test_a_wait_longer_than_any_retry_budget_is_not_waited_for() -> None:
    lim, clock = limiter()
    for _ in range(10):
        lim.release(lim.acquire(), 200)
    lim.release(lim.acquire(), 429, retry_after=3600.0)
    lim.release(lim.acquire(), 429, retry_after=3600.0)  # fails fast (reported), rather than a run stuck for an hour
    assert sum(clock.slept) < 1.0
    assert lim.rate is None and lim.window == 8


def test_a_stop_ends_the_wait_for_a_slot_and_nothing_is_sent() -> None:
    """After SIGINT/SIGTERM no new request starts (SPEC 8.3), even one already waiting for its slot."""
    import time

    from commctl.errors import StoppedError

    stop = threading.Event()
    limiter = Limiter(0.2, 2, stop=stop)  # one request every 5 s
    limiter.release(limiter.acquire(), 200)  # the first slot is now; the next one 5 s away
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StoppedError):
        limiter.acquire()
    assert time.monotonic() - started < 2 and limiter.in_flight == 0
    with pytest.raises(StoppedError):  # a full window does not wait for a release either
        full = Limiter(None, 1, stop=threading.Event())
        full.acquire()
        full.stop.set()
        full.acquire()
