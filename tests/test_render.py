"""The render loop with the real eSpeak engine: batching, cache hits, stopping between batches."""

from __future__ import annotations

import pytest

from voxd.book import Chunk, Pause
from voxd.cache import ChunkCache
from voxd.errors import Stopping
from voxd.render import plan_batches, render, with_keys
from voxd.tts.base import Engine
from voxd.tts.espeak import EspeakEngine

from .support import Spy


class Counting(Spy, Engine):
    """The real engine, counting what it is asked to speak."""

    def __init__(self, engine):
        super().__init__(engine)
        self.texts: list[str] = []
        self.batches: list[int] = []

    def synthesize(self, batch, *, seed=None):
        self.texts.extend(u.text for u in batch)
        self.batches.append(len(batch))
        return self.real.synthesize(batch)


def chunks(texts, voice="en-us"):
    return with_keys(
        [Chunk(chapter=0, index=i, text=t, pause=Pause.SENTENCE, voice=voice) for i, t in enumerate(texts)],
        "espeak-test",
    )


@pytest.fixture(scope="module")
def engine():
    return EspeakEngine()


def test_batches_group_by_voice_and_sort_by_length():
    cs = chunks(["a" * n for n in (5, 50, 20, 40, 10)]) + chunks(["b" * 30, "b" * 3], voice="de")
    batches = plan_batches(cs, batch_size=2)
    for batch in batches:
        assert len({c.voice for c in batch}) == 1
        assert len(batch) <= 2
    en = [len(c.text) for b in batches for c in b if c.voice == "en-us"]
    assert en == sorted(en, reverse=True)
    assert sorted(c.key for b in batches for c in b) == sorted(c.key for c in cs)


def test_render_fills_cache_then_hits(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(["One sentence.", "Another, longer sentence here.", "Third."])
    first = Counting(engine)
    p = render(cs, first, cache, batch_size=2)
    assert sorted(first.texts) == sorted(c.text for c in cs)
    assert first.batches == [2, 1]
    assert p.chunks_done == 3 and p.chunks_cached == 0 and p.audio_seconds > 0.5
    second = Counting(engine)
    p2 = render(cs, second, cache, batch_size=2)
    assert second.texts == []
    assert p2.chunks_cached == 3
    assert p2.audio_seconds == pytest.approx(p.audio_seconds)


def test_repeated_text_is_rendered_once(tmp_path, engine):
    counting = Counting(engine)
    render(chunks(["Same.", "Same.", "Other."]), counting, ChunkCache(tmp_path), batch_size=8)
    assert sorted(counting.texts) == ["Other.", "Same."]


def test_stop_between_batches_keeps_finished_work(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks([f"Sentence number {n}." for n in range(6)])
    calls = {"n": 0}

    def checkpoint():
        calls["n"] += 1
        if calls["n"] == 3:
            raise Stopping()

    with pytest.raises(Stopping):
        render(cs, Counting(engine), cache, batch_size=2, checkpoint=checkpoint)
    assert sum(c.key in cache for c in cs) == 4
    resumed = Counting(engine)
    render(cs, resumed, cache, batch_size=2)
    assert len(resumed.texts) == 2


def test_progress_reported_per_batch(tmp_path, engine):
    seen = []
    render(chunks(["a b c.", "d e f.", "g h i."]), engine, ChunkCache(tmp_path), batch_size=1,
           on_progress=lambda p: seen.append(p.chunks_done))
    assert seen == [0, 1, 2, 3]


def test_chunks_need_keys(tmp_path, engine):
    bare = [Chunk(chapter=0, index=0, text="x", pause=Pause.SENTENCE, voice="en-us")]
    with pytest.raises(ValueError):
        render(bare, engine, ChunkCache(tmp_path), batch_size=1)


def test_damaged_cache_entry_is_rendered_again(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(["First sentence.", "Second sentence."])
    render(cs, engine, cache, batch_size=2)
    victim = cache.path(cs[1].key)
    victim.write_bytes(victim.read_bytes()[:-100])  # truncated, as by a crash or a bad disk
    again = Counting(engine)
    render(cs, again, cache, batch_size=2)
    assert again.texts == ["Second sentence."]
    assert cache.get(cs[1].key) is not None


# -- batch sizes, out of memory, padding, suspect audio ----------------------------------

import threading  # noqa: E402

import numpy as np  # noqa: E402

from voxd.errors import EngineError, OutOfMemory  # noqa: E402
from voxd.render import padding  # noqa: E402
from voxd.takes import Check, retry_seed  # noqa: E402
from voxd.tts.base import Synthesis  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the riverbank today.",
    "A journey of a thousand miles begins with a single careful step forward.",
    "She sells sea shells by the sea shore, and the shells are surely fine.",
    "Peter Piper picked a peck of pickled peppers from the garden patch.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "All that glitters is not gold, and not all those who wander are lost.",
    "The early bird catches the worm, but the second mouse gets the cheese.",
    "Actions speak louder than words, and pictures tell a thousand stories.",
    "Every cloud has a silver lining if you look at it from the other side.",
]


class Wrapped(Counting):
    """The real engine with switches: run out of memory above ``fits`` chunks, pretend
    to run in lockstep, take a seed, and spoil chosen takes (``spoil(text, seed)``
    returns None to keep the real audio, else the waveform to return instead)."""

    def __init__(self, engine, *, fits=None, lockstep=False, seedable=False, spoil=None):
        super().__init__(engine)
        self.fits = fits
        self.lockstep = lockstep
        self.seedable = seedable
        self.spoil = spoil
        self.seeds: list[int | None] = []
        self.calls: list[list[str]] = []  # every call's texts, failed ones included

    @property
    def accepts_seed(self):
        return self.seedable

    def synthesize(self, batch, *, seed=None):
        self.calls.append([u.text for u in batch])
        if self.fits is not None and len(batch) > self.fits:
            raise OutOfMemory(f"CUDA out of memory on a batch of {len(batch)}")
        self.seeds.append(seed)
        result = super().synthesize(batch)
        if self.spoil is None:
            return result
        waves = []
        for u, wave in zip(batch, result.waveforms):
            spoiled = self.spoil(u.text, seed)
            waves.append(wave if spoiled is None else spoiled)
        return Synthesis(waveforms=waves, sample_rate=result.sample_rate, truncated=result.truncated)


def test_out_of_memory_halves_the_batch_and_retries_the_same_chunks(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(SENTENCES[:8])
    wrapped = Wrapped(engine, fits=2)
    learned = []
    p = render(cs, wrapped, cache, batch_size=8, on_resize=learned.append)
    sizes = [len(call) for call in wrapped.calls]
    assert sizes == [8, 4, 2, 2, 2, 2]
    first = wrapped.calls[0]
    assert wrapped.calls[1] == first[:4] and wrapped.calls[2] == first[:2] and wrapped.calls[3] == first[2:4]
    assert learned == [2]  # once, after a batch of 2 worked
    assert p.batch_size == 2 and p.out_of_memory == 2 and p.batches == 4
    assert p.chunks_done == 8 and all(c.key in cache for c in cs)


def test_after_enough_good_batches_the_render_grows_back(tmp_path, engine, monkeypatch):
    """A size learned when memory was short (another program's, for a while) is not for
    ever: after GROW_AFTER good batches the render tries a quarter more, up to the
    ceiling, and hears of each size that worked; an out-of-memory sets it back."""
    from voxd import render as render_module

    monkeypatch.setattr(render_module, "GROW_AFTER", 2)
    cs = chunks([f"Sentence number {n}, of about the same length as the others." for n in range(60)])
    wrapped = Wrapped(engine, fits=7)
    learned: list[int] = []
    p = render(cs, wrapped, ChunkCache(tmp_path), batch_size=4, max_batch_size=8, on_resize=learned.append)
    sizes = [len(call) for call in wrapped.calls]
    assert sizes[:6] == [4, 4, 5, 5, 6, 6]  # two good batches at each size, then a quarter more
    assert 8 in sizes and max(sizes) == 8  # tried, never past the ceiling
    assert sizes[sizes.index(8) + 1] == 4  # the batch of 8 did not fit: halved
    assert learned[:3] == [5, 6, 7] and 8 not in learned
    assert p.out_of_memory >= 1 and p.chunks_done == 60


def test_out_of_memory_for_one_chunk_is_an_engine_error(tmp_path, engine):
    cs = chunks(SENTENCES[:3])
    wrapped = Wrapped(engine, fits=0)
    with pytest.raises(EngineError, match="out of GPU memory even for one chunk") as err:
        render(cs, wrapped, ChunkCache(tmp_path), batch_size=4)
    assert not isinstance(err.value, OutOfMemory)  # the job is retried later, not split further
    assert [len(call) for call in wrapped.calls] == [3, 1]


def test_lockstep_batches_are_cut_where_lengths_differ_twofold():
    texts = ["x" * n for n in (200, 150, 110, 99, 60, 50, 20, 12, 10)]
    cs = chunks(texts)
    lengths = [[len(c.text) for c in b] for b in plan_batches(cs, batch_size=8, max_ratio=2.0)]
    assert lengths == [[200, 150, 110], [99, 60, 50], [20, 12, 10]]
    assert [[len(c.text) for c in b] for b in plan_batches(cs, batch_size=4)] == [
        [200, 150, 110, 99], [60, 50, 20, 12], [10]
    ]
    for batch in plan_batches(cs, batch_size=8, max_ratio=2.0):
        assert max(len(c.text) for c in batch) <= 2.0 * min(len(c.text) for c in batch)


def test_render_cuts_by_length_only_for_lockstep_engines(tmp_path, engine):
    texts = ["One, two, three, four, five, six, seven, eight.", "Nine, ten.", "Eleven, twelve, thirteen, fourteen."]
    lockstep = Wrapped(engine, lockstep=True)
    render(chunks(texts), lockstep, ChunkCache(tmp_path / "a"), batch_size=8)
    assert lockstep.batches == [2, 1]  # 47 and 35 characters together; 10 on its own
    loop = Wrapped(engine)
    render(chunks(texts), loop, ChunkCache(tmp_path / "b"), batch_size=8)
    assert loop.batches == [3]


def test_padding_waste_is_measured_per_batch_and_in_total(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(["Short one.", "A somewhat longer sentence, with a clause.", "Mid length sentence here."])
    wrapped = Wrapped(engine, lockstep=True)
    p = render(cs, wrapped, cache, batch_size=2, max_length_ratio=10.0)
    assert wrapped.batches == [2, 1]
    by_length = sorted(cs, key=lambda c: -len(c.text))
    lengths = [len(wave) / rate for wave, rate in (cache.get(c.key) for c in by_length)]
    spoken_1, run_1 = padding(lengths[:2])
    spoken_2, run_2 = padding(lengths[2:])
    assert run_1 == pytest.approx(2 * max(lengths[:2])) and run_2 == pytest.approx(lengths[2])
    assert p.seconds_spoken == pytest.approx(spoken_1 + spoken_2) == pytest.approx(sum(lengths))
    assert p.seconds_padded == pytest.approx(run_1 + run_2)
    assert 0 < p.padding_waste == pytest.approx(1 - sum(lengths) / (run_1 + run_2))
    assert padding([]) == (0.0, 0.0) and padding([10, 10]) == (20.0, 20.0)


def test_progress_without_batches_has_no_padding_figure(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(["Once."])
    render(cs, engine, cache, batch_size=1)
    assert render(cs, engine, cache, batch_size=1).padding_waste is None


def short(text, seed):
    return np.zeros(2400, np.float32)  # 0.1 s, for a text of some 70 characters


def test_a_too_short_take_is_spoken_again_alone_with_another_seed(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(SENTENCES[:3])
    victim = cs[1]
    spoiled = []

    def once(text, seed):
        if text == victim.text and not spoiled:
            spoiled.append(seed)
            return short(text, seed)
        return None

    wrapped = Wrapped(engine, seedable=True, spoil=once)
    p = render(cs, wrapped, cache, batch_size=3)
    assert wrapped.calls == [[c.text for c in sorted(cs, key=lambda c: (-len(c.text), c.key))], [victim.text]]
    assert wrapped.seeds == [None, retry_seed(victim.key, 1)]
    samples, rate = cache.get(victim.key)
    assert len(samples) / rate > 2.0  # the retake, not the spoiled 0.1 s
    assert p.retried == 1 and p.flagged == [] and p.chunks_done == 3


def test_suspect_chunks_are_spoken_again_together(tmp_path, engine):
    """One retake batch per attempt, not one call per suspect chunk: a lockstep batch
    of two costs about what one chunk does."""
    cache = ChunkCache(tmp_path)
    cs = chunks(SENTENCES[:4])
    victims = {cs[0].text, cs[2].text}
    spoiled: set[str] = set()

    def once(text, seed):
        if text in victims and text not in spoiled:
            spoiled.add(text)
            return short(text, seed)
        return None

    wrapped = Wrapped(engine, seedable=True, spoil=once)
    ticks: list[int] = []  # engine calls made when the checkpoint (the watchdog's ping) ran
    p = render(cs, wrapped, cache, batch_size=4, checkpoint=lambda: ticks.append(len(wrapped.calls)))
    assert ticks == [0, 1]  # before the batch, and before its retakes
    first = [c.text for c in sorted(cs, key=lambda c: (-len(c.text), c.key))]
    again = [t for t in first if t in victims]
    assert wrapped.calls == [first, again]
    keys = "".join(c.key for c in sorted(cs, key=lambda c: (-len(c.text), c.key)) if c.text in victims)
    assert wrapped.seeds == [None, retry_seed(keys, 1)]
    assert p.retried == 2 and p.flagged == [] and p.chunks_done == 4
    assert all(len(cache.get(c.key)[0]) > 2400 for c in cs)  # every take kept is a good one


def test_a_chunk_that_stays_wrong_is_kept_and_flagged(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    cs = chunks(SENTENCES[:2] + ["Tiny."])
    victim = cs[0]
    wrapped = Wrapped(engine, seedable=True,
                      spoil=lambda text, seed: short(text, seed) if text == victim.text else None)
    p = render(cs, wrapped, cache, batch_size=3, check=Check(retries=2))
    assert wrapped.seeds == [None, retry_seed(victim.key, 1), retry_seed(victim.key, 2)]
    assert p.retried == 2
    [note] = p.flagged
    assert "chapter 1, chunk 1:" in note and "only 0.1 s of audio" in note and "best of 3 takes" in note
    assert victim.text[:30] in note
    assert all(c.key in cache for c in cs)  # never a gap in the book
    assert len(cache.get(victim.key)[0]) == 2400


def test_an_engine_without_seeds_is_not_asked_again(tmp_path, engine):
    cs = chunks(SENTENCES[:2])
    wrapped = Wrapped(engine, spoil=lambda text, seed: short(text, seed) if text == cs[1].text else None)
    p = render(cs, wrapped, ChunkCache(tmp_path), batch_size=2)
    assert len(wrapped.calls) == 1 and p.retried == 0 and len(p.flagged) == 1


def test_durations_are_only_checked_when_asked_and_for_long_texts(tmp_path, engine):
    cs = chunks([SENTENCES[0], "Short text, silent."])
    spoil = lambda text, seed: short(text, seed)  # noqa: E731
    off = render(cs, Wrapped(engine, seedable=True, spoil=spoil), ChunkCache(tmp_path / "a"), batch_size=2,
                 check=Check(durations=False))
    assert off.retried == 0 and off.flagged == []
    on = render(cs, Wrapped(engine, seedable=True, spoil=spoil), ChunkCache(tmp_path / "b"), batch_size=2)
    assert on.retried == 1 and len(on.flagged) == 1  # the 19-character text is never judged


def test_a_runaway_is_always_spoken_again(tmp_path, engine):
    cs = chunks(["Hi.", "Ok."])
    runaway = {"done": False}

    class Runaway(Wrapped):
        def synthesize(self, batch, *, seed=None):
            result = super().synthesize(batch, seed=seed)
            flags = [False] * len(batch)
            if not runaway["done"]:
                runaway["done"] = True
                flags[0] = True
            return Synthesis(waveforms=result.waveforms, sample_rate=result.sample_rate, truncated=flags)

    wrapped = Runaway(engine, seedable=True)
    p = render(cs, wrapped, ChunkCache(tmp_path), batch_size=2, check=Check(durations=False))
    assert p.retried == 1 and p.flagged == [] and len(wrapped.calls) == 2


@pytest.mark.slow
def test_convert_remembers_the_batch_size_that_fit(tmp_path, engine, monkeypatch):
    from voxd.config import Settings
    from voxd.convert import convert
    from voxd.samples import build_sample
    from voxd.service.store import Store
    from voxd.tts import gpu

    card = gpu.Card(index=0, name="Test GPU 24GB", free=24 * gpu.GiB, total=24 * gpu.GiB)
    monkeypatch.setattr(gpu, "probe", lambda device="auto": card)
    settings = Settings(engine="qwen", state_dir=tmp_path / "state", write_sidecars=False)
    store = Store(settings.db_path)
    book = build_sample(tmp_path / "alice.epub")
    wrapped = Wrapped(engine, fits=5)
    outcome = convert(book, lambda b: tmp_path / "out.m4b", settings, wrapped, memory=store)
    assert wrapped.calls and len(wrapped.calls[0]) > 5  # it started from the 24 GB estimate (32)
    assert outcome.progress.batch_size == 4 and outcome.progress.out_of_memory == 1
    key = gpu.memory_key("Test GPU 24GB", settings.qwen.custom_voice_model)
    assert store.get_value(key) == "4"
    settings2 = Settings(engine="qwen", state_dir=tmp_path / "state2", write_sidecars=False)
    again = Wrapped(engine, fits=5)
    convert(book, lambda b: tmp_path / "out2.m4b", settings2, again, memory=store)
    assert max(len(call) for call in again.calls) == 4  # learned: no out-of-memory this time
    assert (tmp_path / "out2.m4b").is_file()


def test_the_worker_records_flagged_chunks_as_job_events(tmp_path, engine):
    from voxd.config import Settings
    from voxd.samples import build_sample
    from voxd.service.notify import Notifier
    from voxd.service.records import Status
    from voxd.service.store import Store
    from voxd.service.watch import enqueue
    from voxd.service.worker import Worker

    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", state_dir=tmp_path / "state",
                        engine="espeak")
    settings.inbox_dir.mkdir(parents=True)
    store = Store(settings.db_path)
    src = build_sample(settings.inbox_dir / "alice.epub")
    wrapped = Wrapped(engine, spoil=lambda text, seed: short(text, seed) if text.startswith("So she was") else None)
    worker = Worker(settings, store, lambda: wrapped, Notifier(store, []), stop=threading.Event())
    enqueue(store, src, settings.inbox_dir / "done")
    job = store.claim(settings.lease_seconds)
    worker.process(job)
    assert store.get(job.id).status is Status.DONE
    [event] = [e for e in store.events(job.id) if e.kind == "suspect"]
    assert "only 0.1 s of audio" in event.message and "So she was" in event.message


def test_a_window_renders_in_book_order_and_reports_what_is_ready(tmp_path, engine):
    cache = ChunkCache(tmp_path)
    texts = [f"Sentence {'and more ' * (n % 4)}number {n}." for n in range(10)]
    cs = chunks(texts)
    render(cs[:2], engine, cache, batch_size=3)  # two in the cache already
    counting = Counting(engine)
    ready: list[list[str]] = []
    render(cs, counting, cache, batch_size=3, window=4, on_ready=ready.append)
    assert ready[0] == [cs[0].key, cs[1].key]  # the cache hits first
    order = {c.text: i for i, c in enumerate(cs)}
    # windows of 4 of the 8 missing chunks, in book order; each window sorted longest first
    spoken = [order[t] for t in counting.texts]
    assert sorted(spoken[:4]) == [2, 3, 4, 5] and sorted(spoken[4:]) == [6, 7, 8, 9]
    assert counting.batches == [3, 1, 3, 1]
    assert [k for keys in ready[1:] for k in keys] == [cs[i].key for i in spoken]
