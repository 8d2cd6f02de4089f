"""Which server gets the next request, and the adaptive window (voxd/tts/fleet.py), on a hand-driven clock."""

from __future__ import annotations

import pytest

from voxd.tts.fleet import BACKOFF_MAX, CEILING, PROBE_ROUNDS, ROUND_ANSWERS, ROUND_PER_SLOT, START, Fleet


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fleet(*urls: str, max_in_flight: int = 0) -> tuple[Fleet, Clock]:
    clock = Clock()
    return Fleet(list(urls) or ["http://a/v1"], max_in_flight=max_in_flight, clock=clock), clock


def test_requests_go_to_the_server_with_the_fewest_outstanding():
    f, _ = fleet("http://a/v1", "http://b/v1", max_in_flight=4)
    slots = [f.acquire(0) for _ in range(6)]
    got = [slot.endpoint.url for slot in slots]
    assert got.count("http://a/v1") == 3 and got.count("http://b/v1") == 3
    for slot in slots:
        if slot.endpoint.url == "http://a/v1":
            f.succeeded(slot, 1.0)  # a answers fast: its slots free up, so it gets the next ones
    assert [f.acquire(0).endpoint.url for _ in range(2)] == ["http://a/v1", "http://a/v1"]


def test_a_full_fleet_gives_no_slot_until_one_is_freed():
    f, _ = fleet(max_in_flight=2)
    first, second = f.acquire(0), f.acquire(0)
    assert f.acquire(0) is None
    assert first.endpoint is second.endpoint is f.endpoints[0]
    f.succeeded(first, 1.0)
    assert f.acquire(0).endpoint is first.endpoint
    assert first.endpoint.outstanding == 2


def test_a_server_going_down_is_news_once_not_once_per_request_it_had():
    # A server dies with four requests in flight: the log says so once, not four times.
    f, clock = fleet(max_in_flight=4)
    slots = [f.acquire(0) for _ in range(4)]
    assert [f.failed(slot, "refused the connection") for slot in slots] == [True, False, False, False]
    clock.now += BACKOFF_MAX + 1  # its back-off over, the probe fails too: news again, once per back-off
    assert f.failed(f.acquire(0), "refused the connection") is True


def test_a_failed_server_backs_off_doubling_then_gets_one_probe():
    f, clock = fleet(max_in_flight=4)
    a = f.endpoints[0]
    for expected in (1.0, 2.0, 4.0):
        f.failed(f.acquire(0), "refused the connection")
        assert a.down_until == pytest.approx(clock.now + expected)
        assert not a.up(clock.now) and a.reason == "refused the connection"
        assert f.acquire(0) is None
        clock.now = a.down_until
    assert a.free(clock.now) == 1  # after the back-off: one probe request, not a full window
    probe = f.acquire(0)
    assert probe.endpoint is a and a.free(clock.now) == 0
    f.succeeded(probe, 1.0)
    assert a.failures == 0 and a.reason == "" and a.free(clock.now) == a.limit


def test_while_one_server_is_down_the_others_carry_on():
    f, clock = fleet("http://a/v1", "http://b/v1", max_in_flight=2)
    a, b = f.endpoints
    f.failed(f.acquire(0), "refused the connection")  # a, the first with nothing outstanding
    assert [getattr(f.acquire(0), "endpoint", None) for _ in range(3)] == [b, b, None]


def test_the_back_off_is_capped():
    f, clock = fleet()
    a = f.endpoints[0]
    for _ in range(12):
        a.down_until = 0.0  # past its back-off, at once
        f.failed(f.acquire(0), "down")
    assert a.down_until - clock.now == BACKOFF_MAX


def test_every_server_down_is_seen_and_explained():
    f, clock = fleet("http://a/v1", "http://b/v1")
    for _ in f.endpoints:
        slot = f.acquire(0)
        f.failed(slot, f"{slot.endpoint.url} refused")
    assert f.all_down()
    assert "http://a/v1: http://a/v1 refused" in f.reasons() and "http://b/v1" in f.reasons()
    assert f.acquire(0) is None
    assert f.window() == 1  # the renderer still keeps one request going, to find the first that returns


def test_overloaded_server_cools_for_retry_after_and_halves_its_adaptive_window():
    f, clock = fleet()
    a = f.endpoints[0]
    a.limit = 16
    ep = f.acquire(0)
    f.overloaded(ep, 3.0)
    assert a.limit == 8 and a.failures == 0 and a.up(clock.now)
    assert f.acquire(0) is None  # cooling
    clock.now += 3.0
    assert f.acquire(0).endpoint is a


def test_a_fixed_window_is_kept_when_a_server_is_busy():
    f, clock = fleet(max_in_flight=6)
    a = f.endpoints[0]
    f.overloaded(f.acquire(0), None)
    assert a.limit == 6 and a.cooling_until == clock.now + 1.0  # no Retry-After: a second


def test_a_timeout_halves_the_window_and_backs_off():
    f, clock = fleet()
    a = f.endpoints[0]
    a.limit = 8
    f.failed(f.acquire(0), "gave no answer in 60 s", timed_out=True)
    assert a.limit == 4 and not a.up(clock.now)


def complete_round(f: Fleet, clock: Clock, audio_per_second: float) -> None:
    """One measuring round on the first server: a second of audio per request, each taking as long
    as it would with the window full and the server serving ``audio_per_second`` in all."""
    a = f.endpoints[0]
    limit = a.limit
    for _ in range(max(ROUND_ANSWERS, int(ROUND_PER_SLOT * limit))):
        slot = f.acquire(0)
        clock.now += limit / audio_per_second
        f.succeeded(slot, 1.0)


def test_the_adaptive_window_doubles_while_throughput_grows_then_settles_on_the_best():
    f, clock = fleet()
    a = f.endpoints[0]
    assert a.limit == START
    a.limit = a.best_limit = 2  # the steps below are the same from any start
    complete_round(f, clock, 10.0)  # the first measurement
    assert a.limit == 4
    complete_round(f, clock, 15.0)  # +50 %: worth it
    assert a.limit == 8
    complete_round(f, clock, 16.0)  # +7 %: flat, but throughput often grows in steps...
    assert a.limit == 16 and not a.settled
    complete_round(f, clock, 16.2)  # ...flat twice: back to the best size, and stay
    assert a.limit == 4 and a.settled
    complete_round(f, clock, 30.0)
    assert a.limit == 4  # settled: it stays...
    for _ in range(PROBE_ROUNDS - 2):
        complete_round(f, clock, 15.0)
    assert a.limit == 4
    complete_round(f, clock, 15.0)
    assert a.limit == 8 and not a.settled  # ...until it tries more again
    complete_round(f, clock, 15.5)
    complete_round(f, clock, 15.5)
    assert a.limit == 4 and a.settled  # and nothing more came of it


def test_a_window_that_nearly_doubles_the_throughput_leaps():
    f, clock = fleet()
    a = f.endpoints[0]
    a.limit = a.best_limit = 2
    complete_round(f, clock, 10.0)
    assert a.limit == 4
    complete_round(f, clock, 19.0)  # +90 %: far from the top
    assert a.limit == 16


def test_a_flat_step_does_not_stop_the_growth_when_the_next_one_gains():
    f, clock = fleet()
    a = f.endpoints[0]
    a.limit = a.best_limit = 2
    for rate, then in ((10.0, 4), (10.5, 8), (14.0, 16)):
        complete_round(f, clock, rate)
        assert a.limit == then
    assert a.best_limit == 8 and not a.settled


def test_the_adaptive_window_grows_again_after_an_overload_and_never_passes_the_ceiling():
    f, clock = fleet()
    a = f.endpoints[0]
    a.limit, a.settled = 8, True
    f.overloaded(f.acquire(0), 0.0)
    assert a.limit == 4 and not a.settled
    rate, limits = 1.0, []
    for _ in range(12):  # bounded: a window that never settles fails here instead of hanging the suite
        if a.settled:
            break
        rate *= 2
        complete_round(f, clock, rate)
        limits.append(a.limit)
    assert a.settled and a.limit == CEILING, limits
    assert limits == sorted(limits) and max(limits) == CEILING and len(limits) <= 6, limits  # it grew, to the top


def test_requests_sent_under_the_old_window_do_not_count_for_the_new_one():
    f, clock = fleet()
    a = f.endpoints[0]
    old = f.acquire(0)  # sent under the first window
    complete_round(f, clock, 10.0)
    assert a.limit == 2 * START and a.round_done == 0
    clock.now += 1000.0  # it comes back very late (it waited behind the round)...
    f.succeeded(old, 1.0)
    assert a.round_done == 0 and a.outstanding == 0  # ...and says nothing about the new window
