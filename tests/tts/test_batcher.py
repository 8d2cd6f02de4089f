"""Dynamic batching (voxd/tts/batcher.py) with the real eSpeak engine behind it."""

from __future__ import annotations

import threading

import pytest

from voxd.errors import EngineError, OutOfMemory, VoiceError
from voxd.tts.base import Engine, Utterance
from voxd.tts.batcher import Batcher, QueueFull

from ..support import Spy


class Recording(Spy, Engine):
    """eSpeak NG, noting every batch it is given; ``fits`` makes bigger batches run out of memory,
    ``gate`` holds every call until it is set."""

    def __init__(self, *, lockstep: bool = False, fits: int | None = None) -> None:
        super().__init__()
        self.lockstep = lockstep
        self.fits = fits
        self.calls: list[tuple[list[str], int | None]] = []
        self.gate = threading.Event()
        self.gate.set()

    def synthesize(self, batch, *, seed=None):
        self.gate.wait(30)
        self.calls.append(([u.text for u in batch], seed))
        if self.fits is not None and len(batch) > self.fits:
            raise OutOfMemory(f"CUDA out of memory on a batch of {len(batch)}")
        return self.real.synthesize(batch)


def held(engine: Recording, **options) -> Batcher:
    """A batcher whose engine waits until the test has queued everything."""
    engine.gate.clear()
    options.setdefault("max_wait", 0.0)
    options.setdefault("max_queue", 100)
    options.setdefault("batch_size", 16)
    return Batcher(engine, **options)


def say(text: str) -> Utterance:
    return Utterance(text, "en-us")


def test_requests_waiting_together_are_spoken_as_one_batch():
    engine = Recording()
    batcher = Batcher(engine, batch_size=16, max_wait=0.5, max_queue=100)
    futures = [batcher.submit(say(f"Request {n} of six.")) for n in range(6)]
    results = [f.result(30) for f in futures]
    assert [len(texts) for texts, _ in engine.calls] == [6] and batcher.batches == 1
    assert all(r.wave.size > 0 and r.sample_rate == 22050 for r in results)
    batcher.close()


def test_no_batch_is_bigger_than_the_batch_size():
    engine = Recording()
    batcher = held(engine, batch_size=4)
    futures = [batcher.submit(say(f"Request {n}.")) for n in range(10)]
    engine.gate.set()
    [f.result(30) for f in futures]
    sizes = [len(texts) for texts, _ in engine.calls]
    assert sum(sizes) == 10 and max(sizes) <= 4
    batcher.close()


def test_a_lockstep_batch_holds_texts_of_close_lengths_oldest_first():
    engine = Recording(lockstep=True)
    batcher = held(engine, batch_size=8, max_ratio=2.0)
    texts = ["x" * 100, "y" * 10, "x" * 120, "y" * 12, "x" * 90, "y" * 15]
    futures = [batcher.submit(say(t)) for t in texts]
    engine.gate.set()
    [f.result(30) for f in futures]
    batches = [sorted(len(t) for t in texts) for texts, _ in engine.calls]
    # the first call may have started with the first text alone; after that, long with long, short with short
    assert all(max(b) <= 2 * min(b) for b in batches)
    assert sorted(n for b in batches for n in b) == sorted(len(t) for t in texts)
    batcher.close()


def test_requests_with_other_seeds_are_never_in_one_batch():
    engine = Recording()
    batcher = held(engine)
    futures = [batcher.submit(say(f"Seeded {n}."), seed=n % 2) for n in range(6)] + [batcher.submit(say("None."))]
    engine.gate.set()
    [f.result(30) for f in futures]
    for texts, seed in engine.calls:
        expected = {None} if texts == ["None."] else {int(t.split()[1].rstrip(".")) % 2 for t in texts}
        assert expected == {seed}
    batcher.close()


def test_out_of_memory_splits_the_batch_and_the_smaller_size_holds():
    engine = Recording(fits=2)
    batcher = held(engine, batch_size=8)
    futures = [batcher.submit(say(f"Request {n}.")) for n in range(8)]
    engine.gate.set()
    assert all(f.result(30).wave.size for f in futures)
    assert batcher.batch_size == 2
    assert [len(texts) for texts, _ in engine.calls][:3] == [8, 4, 2]
    batcher.close()


def test_out_of_memory_for_one_text_fails_only_that_request():
    engine = Recording(fits=0)
    batcher = Batcher(engine, batch_size=1, max_wait=0.0, max_queue=10)
    with pytest.raises(EngineError, match="even for one text"):
        batcher.submit(say("Too big.")).result(30)
    batcher.close()


def test_a_bad_request_in_a_batch_fails_alone():
    engine = Recording()
    batcher = held(engine)
    good = [batcher.submit(say(f"Fine {n}.")) for n in range(3)]
    bad = batcher.submit(Utterance("Not fine.", "zz-nobody"))
    engine.gate.set()
    assert all(f.result(30).wave.size for f in good)
    with pytest.raises(VoiceError, match="zz-nobody"):
        bad.result(30)
    batcher.close()


def test_a_full_queue_refuses_and_closing_fails_what_waits():
    engine = Recording()
    batcher = held(engine, max_queue=2)
    first, second = batcher.submit(say("One.")), batcher.submit(say("Two."))
    with pytest.raises(QueueFull, match="2 requests"):
        batcher.submit(say("Three."))
    assert batcher.waiting == 2
    closer = threading.Thread(target=batcher.close)
    closer.start()
    engine.gate.set()
    closer.join(30)
    outcomes = []
    for f in (first, second):
        try:
            outcomes.append(f.result(30).wave.size > 0)
        except EngineError as exc:
            outcomes.append("shut down" in str(exc))
    assert all(outcomes)
    with pytest.raises(EngineError, match="shutting down"):
        batcher.submit(say("Four."))


def test_a_cancelled_request_is_dropped_from_its_batch_and_frees_its_place():
    engine = Recording()
    batcher = Batcher(engine, batch_size=16, max_wait=0.5, max_queue=3)
    kept = batcher.submit(say("Wanted by a client that waits."))
    gone = [batcher.submit(say(f"Asked for by client {n}, who left.")) for n in range(2)]
    with pytest.raises(QueueFull):
        batcher.submit(say("One too many."))
    assert all(f.cancel() for f in gone)
    batcher.cancelled()
    late = batcher.submit(say("Room again, now the others are gone."))  # their places are free
    assert kept.result(30).wave.size > 0 and late.result(30).wave.size > 0
    assert [sorted(texts) for texts, _ in engine.calls] == [sorted(["Wanted by a client that waits.",
                                                                    "Room again, now the others are gone."])]
    batcher.close()


def test_a_batch_of_only_cancelled_requests_calls_no_engine():
    engine = Recording()
    batcher = Batcher(engine, batch_size=16, max_wait=0.3, max_queue=10)
    futures = [batcher.submit(say(f"Nobody waits for text {n}.")) for n in range(3)]
    assert all(f.cancel() for f in futures)
    batcher.cancelled()
    after = batcher.submit(say("Then someone who does."))
    assert after.result(30).wave.size > 0
    assert [texts for texts, _ in engine.calls] == [["Then someone who does."]]
    batcher.close()
