"""Which speech server gets the next request, and how many each may have in flight.

A fleet is a handful of OpenAI-compatible speech servers that speak the same
model. Each request goes to the server with the fewest requests outstanding
(relative to what it may have), among those that are up: a fast server drains
its requests sooner and so gets more of them, without any speed estimate.

How many requests a server may have in flight is its *window*. A fixed window
comes from ``[remote] max_in_flight``; by default it adapts, because what a
server can take depends on its GPU, its model and its batching and nobody
knows it up front: it starts small, doubles while the audio-seconds per second
it serves grow by a tenth or more (and quadruples while they nearly double),
settles on the best size once two doublings
in a row brought nothing (more in flight would only queue on the server and
risk timeouts), and
halves at once when the server says it is overloaded (429, 503) or a request
times out. It never exceeds :data:`CEILING`. A size's throughput is measured
on the requests sent while it held, each by its own latency: with ``L`` requests
always in flight a server serves ``L x (audio / latency)`` summed over them, an
estimate that neither the requests still running from the size before nor the
moment a round happens to end can skew. A settled window tries doubling again
now and then, since a server's load changes (another client leaves, a model
warms up).

A server that refuses connections, fails or times out is *down* for a back-off
that doubles with each failure in a row (1 s up to a minute); once it has passed,
the next request goes to it as a probe. A server that asks to be left alone
(429/503 with ``Retry-After``) is *cooling* for that long but not counted as a
failure. All of this is bookkeeping under one lock, with the clock injected, so
it can be tested without servers or sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: The most requests voxd keeps in flight on one server (vLLM-Omni batches 64 by default).
CEILING = 64
#: Where an adaptive window starts.
START = 4
#: A doubled window must bring this much more throughput to be kept...
GAIN = 0.10
#: ...and one that brings this much more (nearly twice as much: far from the top) is doubled
#: twice at once, so a server that can take many reaches its size in fewer rounds.
LEAP = 0.60
#: A measuring round lasts at least this many answers, and this many per request in flight...
ROUND_ANSWERS, ROUND_PER_SLOT = 4, 0.5
#: Doublings in a row that may bring no gain before the window settles: throughput often
#: grows in steps (a lockstep server gains little from 4 over 2, much from 16 over 8, as a
#: deeper queue lets it batch texts of like lengths), so one flat step is not yet the top.
PATIENCE = 2
#: ...and once settled, the window tries doubling again after this many rounds (servers change).
PROBE_ROUNDS = 8
#: Back-off for a server that failed, doubling per failure in a row, up to the maximum.
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0


@dataclass(frozen=True, slots=True)
class Slot:
    """One request's place on a server: which, under which window, since when."""

    endpoint: Endpoint
    epoch: int
    started: float


@dataclass(slots=True)
class Endpoint:
    url: str
    limit: int
    adaptive: bool
    outstanding: int = 0
    down_until: float = 0.0  # failed: no requests before this (then one probe)
    cooling_until: float = 0.0  # asked to wait (Retry-After): no requests before this
    failures: int = 0  # in a row
    reason: str = ""  # why it is down, for the log and the job's error
    # The adaptive window's measurement, over requests sent since the window last changed.
    epoch: int = 0
    round_audio: float = 0.0
    round_latency: float = 0.0
    round_done: int = 0
    best_rate: float = 0.0
    best_limit: int = 0
    settled: bool = False
    settled_rounds: int = 0
    misses: int = 0  # doublings in a row that brought no gain
    served: int = field(default=0)  # requests answered well, for the summary

    def up(self, now: float) -> bool:
        return now >= self.down_until

    def free(self, now: float) -> int:
        """Requests it may take now."""
        if not self.up(now) or now < self.cooling_until:
            return 0
        if self.failures:  # a probe: one request until it answers
            return 1 - self.outstanding
        return self.limit - self.outstanding


class Fleet:
    """The servers of one remote engine; thread-safe."""

    def __init__(self, urls: list[str], *, max_in_flight: int = 0, clock: Callable[[], float] = time.monotonic):
        if not urls:
            raise ValueError("a fleet needs at least one URL")
        self._clock = clock
        self._cond = threading.Condition()
        adaptive = max_in_flight <= 0
        first = START if adaptive else min(max_in_flight, CEILING)
        self.endpoints = [Endpoint(url=u, limit=first, adaptive=adaptive, best_limit=first) for u in urls]

    # -- choosing ------------------------------------------------------------------

    def acquire(self, timeout: float) -> Slot | None:
        """A slot on the server for the next request; None if none frees up within
        ``timeout`` seconds (all down, cooling or full). Every slot is given back through
        exactly one of the outcomes below."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                now = self._clock()
                ready = [e for e in self.endpoints if e.free(now) > 0]
                if ready:
                    best = min(ready, key=lambda e: (e.outstanding / max(e.limit, 1), e.outstanding))
                    best.outstanding += 1
                    return Slot(best, best.epoch, now)
                left = deadline - now
                if left <= 0:
                    return None
                self._cond.wait(min(left, max(0.01, self._next_change(now) - now), 0.5))

    def _next_change(self, now: float) -> float:
        times = [t for e in self.endpoints for t in (e.down_until, e.cooling_until) if t > now]
        return min(times, default=now + 0.5)

    def window(self) -> int:
        """Requests worth keeping in flight across the fleet now (at least 1)."""
        with self._cond:
            now = self._clock()
            total = sum(e.limit for e in self.endpoints if e.up(now))
            return max(1, total)

    def all_down(self) -> bool:
        with self._cond:
            now = self._clock()
            return all(not e.up(now) or e.failures for e in self.endpoints)

    def reasons(self) -> str:
        """Why each server is down, one clause each."""
        with self._cond:
            return "; ".join(f"{e.url}: {e.reason}" for e in self.endpoints if e.reason) or "no server answered"

    # -- outcomes ------------------------------------------------------------------

    def succeeded(self, slot: Slot, audio_seconds: float) -> None:
        with self._cond:
            ep = slot.endpoint
            ep.outstanding -= 1
            ep.failures = 0
            ep.reason = ""
            ep.down_until = 0.0
            ep.served += 1
            if ep.adaptive and slot.epoch == ep.epoch:
                self._measure(ep, audio_seconds, self._clock() - slot.started)
            self._cond.notify_all()

    def released(self, slot: Slot) -> None:
        """The request ended without saying anything about the server (a bad take, a rejected text)."""
        with self._cond:
            slot.endpoint.outstanding -= 1
            self._cond.notify_all()

    def failed(self, slot: Slot, reason: str, *, timed_out: bool = False) -> bool:
        """The server refused, failed or timed out: down for a back-off; a timeout also halves its
        window. True when this is news: the server was up until now (the other requests it had in
        flight fail too, a moment later, and are not news)."""
        with self._cond:
            ep = slot.endpoint
            news = ep.down_until <= self._clock()
            ep.outstanding -= 1
            ep.failures += 1
            ep.reason = reason
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (ep.failures - 1))
            ep.down_until = self._clock() + backoff
            if timed_out:
                self._shrink(ep)
            self._cond.notify_all()
            return news

    def others_usable(self, endpoint: Endpoint) -> bool:
        """Whether a server besides ``endpoint`` may still get work (down for a while counts)."""
        with self._cond:
            return any(e is not endpoint and e.down_until != float("inf") for e in self.endpoints)

    def exclude(self, slot: Slot, reason: str) -> None:
        """The server answers but must not get work (it serves another model): down for good."""
        with self._cond:
            ep = slot.endpoint
            ep.outstanding -= 1
            ep.reason = reason
            ep.down_until = float("inf")
            self._cond.notify_all()

    def overloaded(self, slot: Slot, retry_after: float | None, reason: str = "busy") -> None:
        """429/503: the server is alive but full; wait as it asks (or a second) and halve the window."""
        with self._cond:
            ep = slot.endpoint
            ep.outstanding -= 1
            ep.cooling_until = self._clock() + (retry_after if retry_after is not None else 1.0)
            ep.reason = reason
            self._shrink(ep)
            self._cond.notify_all()

    # -- the adaptive window ---------------------------------------------------------

    def _shrink(self, ep: Endpoint) -> None:
        if not ep.adaptive:  # a window the user fixed stays; cooling alone holds requests back
            return
        ep.limit = max(1, ep.limit // 2)
        ep.best_rate, ep.best_limit, ep.settled, ep.settled_rounds, ep.misses = 0.0, ep.limit, False, 0, 0
        self._new_round(ep)

    def _new_round(self, ep: Endpoint) -> None:
        ep.epoch += 1
        ep.round_audio, ep.round_latency, ep.round_done = 0.0, 0.0, 0

    def _measure(self, ep: Endpoint, audio_seconds: float, latency: float) -> None:
        ep.round_audio += audio_seconds
        ep.round_latency += max(latency, 1e-6)
        ep.round_done += 1
        if ep.round_done < max(ROUND_ANSWERS, int(ROUND_PER_SLOT * ep.limit)):
            return
        rate = ep.limit * ep.round_audio / ep.round_latency
        before = ep.limit
        if ep.settled:
            ep.settled_rounds += 1
            if ep.settled_rounds >= PROBE_ROUNDS and ep.limit < CEILING:  # try more again, from today's rate
                ep.settled, ep.settled_rounds = False, 0
                ep.best_rate, ep.best_limit = rate, ep.limit
                ep.limit = min(CEILING, ep.limit * 2)
        elif rate >= ep.best_rate * (1.0 + GAIN):
            leap = ep.best_rate > 0 and rate >= ep.best_rate * (1.0 + LEAP)
            ep.best_rate, ep.best_limit, ep.misses = rate, ep.limit, 0
            if ep.limit >= CEILING:
                ep.settled = True
            else:
                ep.limit = min(CEILING, ep.limit * (4 if leap else 2))
        elif ep.misses + 1 < PATIENCE and ep.limit < CEILING:  # flat: one more doubling to be sure
            ep.misses += 1
            ep.limit = min(CEILING, ep.limit * 2)
        else:  # more in flight brought no more audio: go back to the best size and stay
            ep.limit, ep.settled, ep.settled_rounds, ep.misses = ep.best_limit, True, 0, 0
        if ep.limit != before:
            log.debug("%s: %.1f audio-s/s with %d in flight (best %.1f with %d): now %d",
                      ep.url, rate, before, ep.best_rate, ep.best_limit, ep.limit)
        self._new_round(ep)
