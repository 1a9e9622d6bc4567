"""One limiter shared by every request of a run: `--rate` as a token bucket, and adaptive slowing on 429.

SPEC section 9: against a server that allows R requests per second, a bulk run gets few 429 answers
and finishes close to the time the limit allows. Without `--rate` a run starts at full speed, and the
first 429 says what the server allows:

- every request waits until its `Retry-After` (a burst filled the server's window: one 429 pauses the
  whole run, not just the one request);
- the rate becomes a little under what the server accepted since the run started, per second of
  `max(span, Retry-After)`: one 429 finds a per-second limit and a per-minute one alike;
- the number of requests in flight halves.

A run that is already paced and still gets a 429 goes 7% slower (or down to what got through, when
that was measured over a whole window), pausing only when the server asks for a long wait. Then rate
and window recover while the server says nothing: the window by one request per window of answers,
the rate by a few percent a second up to just under the rate that was refused, and past it only
slowly after a long quiet spell; never above `--rate`.

Answers to requests sent before a slow-down carry no news (the server had not seen it yet), so only a
429 to a request started after the last slow-down slows the run down again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .errors import StoppedError

RETRY_AFTER_DEFAULT = 1.0  # seconds, when a 429 does not say
MARGIN = 0.95  # after the first 429, run a little under the rate the server was seen to accept
CUT = 0.93  # after a later one, a little slower than the rate that was refused
RECOVERY = 0.05  # then recover by 5% per quiet second...
NEAR = 0.97  # ...up to just under the rate that was refused,
PROBE_AFTER = 10.0  # and only after this many quiet seconds look for more,
PROBE = 0.005  # slowly (0.5% per second): each 429 costs the whole run a pause
QUIET = 1.0  # seconds without a 429 before the rate starts to recover
LONG_WAIT = 1.0  # a paced run pauses for a Retry-After longer than this (the server's window is full)
MIN_RATE = 0.1  # requests per second: even a tight limit lets the run finish
MAX_PAUSE = 120.0  # a longer Retry-After is past any request's retry budget: fail fast instead of waiting


class Limiter:
    """Thread-safe: `acquire()` before each request, `release(ticket, status, retry_after)` after it."""

    def __init__(
        self,
        rate: float | None = None,
        concurrency: int = 8,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
        self.ceiling = rate  # --rate: never exceeded
        self.rate = rate  # the current rate; None: as fast as the window allows
        self.max_window = max(1, concurrency)
        self.window = float(self.max_window)  # requests allowed in flight
        self.in_flight = 0
        # Once `stop` is set (a signal), a request still waiting for its slot is not sent (StoppedError).
        self.stop = stop or threading.Event()
        self.clock, self.sleep = clock, sleep or self.stop.wait
        self._cond = threading.Condition()
        self._next = -math.inf  # the earliest time the next request may start (virtual scheduling)
        self._paused_until = -math.inf
        self._span_start = -math.inf  # when the current measuring span began (start, or the end of a pause)
        self._accepted = 0  # answers other than 429 to requests started in this span
        self._started: float | None = None
        self._last_slowdown = -math.inf
        self._last_raise = -math.inf
        self._trouble: float | None = None  # the rate at which the last 429 came
        self.slowdowns = 0

    def acquire(self) -> float:
        """Wait for a place in the window and for the next slot of the rate; return the start time (ticket).

        StoppedError when the run was stopped meanwhile: the request must not be sent (and needs no release).
        """
        with self._cond:
            while self.in_flight >= max(1, int(self.window)):
                if self.stop.is_set():
                    raise StoppedError("not sent: the run was stopped")
                self._cond.wait(0.1)  # woken by a release; the timeout notices a stop
            self.in_flight += 1
            now = self.clock()
            if self._started is None:
                self._started = self._span_start = now
            at, slowdowns = self._slot(now), self.slowdowns
        while at > now:
            self.sleep(at - now)
            if self.stop.is_set():
                with self._cond:
                    self.in_flight -= 1
                    self._cond.notify_all()
                raise StoppedError("not sent: the run was stopped")
            now = self.clock()
            with self._cond:
                if self.slowdowns != slowdowns:  # slowed down meanwhile: take a slot of the new schedule
                    at, slowdowns = self._slot(now), self.slowdowns
        return now

    def _slot(self, now: float) -> float:
        at = max(now, self._paused_until)
        if self.rate is not None:
            at = max(at, self._next)
            self._next = at + 1.0 / self.rate
        return at

    def release(self, ticket: float, status: int | None, retry_after: float | None = None) -> None:
        """Record how a request started at `ticket` ended (status None: no answer)."""
        with self._cond:
            self.in_flight -= 1
            now = self.clock()
            if status == 429:
                if ticket >= self._last_slowdown:
                    self._slow_down(now, RETRY_AFTER_DEFAULT if retry_after is None else retry_after)
            elif status is not None:
                if ticket >= self._span_start:
                    self._accepted += 1
                self._recover(now)
            self._cond.notify_all()

    def _slow_down(self, now: float, retry_after: float) -> None:
        if retry_after > MAX_PAUSE:
            return  # refused for longer than any request would wait: nothing to pace, fail fast
        span = max(0.0, now - self._span_start)
        seen = max(self._accepted, 1) / max(span, retry_after, 0.001)  # what the server accepted, per second
        if self.rate is None:
            # The first 429 of a run at full speed: a burst filled the server's window. Wait until it
            # has drained, then go at a little under the rate the server let through.
            self._trouble = seen
            self.rate = MARGIN * seen
            pause = retry_after
        else:
            # Already paced and still refused: a little slower, or down to what got through when that
            # was measured over at least one of the server's windows (never below half at once).
            self._trouble = self.rate
            measured = seen if span >= max(retry_after, 1.0) else self.rate
            self.rate = max(self.rate / 2, min(self.rate * CUT, measured))
            pause = retry_after if retry_after > LONG_WAIT else 0.0  # a long wait: the window is full for a while
        self.rate = max(MIN_RATE, self.rate)
        self.window = max(1.0, self.window / 2)
        self._paused_until = max(self._paused_until, now + pause)
        self._next = max(self._next, self._paused_until)
        self._span_start = self._last_slowdown = self._last_raise = max(now, self._paused_until)
        self._accepted = 0
        self.slowdowns += 1

    def _recover(self, now: float) -> None:
        if self.window < self.max_window:
            self.window = min(float(self.max_window), self.window + 1.0 / self.window)
        rate = self.rate
        if rate is None or rate == self.ceiling or now - self._last_slowdown < QUIET:
            return
        quiet = now - max(self._last_raise, self._last_slowdown + QUIET)
        if quiet <= 0:
            return
        near = NEAR * (self._trouble or 0.0)
        if rate < near:
            rate = min(near, rate * (1.0 + RECOVERY * quiet))
        elif now - self._last_slowdown >= PROBE_AFTER:
            rate *= 1.0 + PROBE * quiet
        self.rate = rate if self.ceiling is None else min(self.ceiling, rate)
        self._last_raise = now
