"""The render loop with the real eSpeak engine: batching, cache hits, stopping between batches."""

from __future__ import annotations

import pytest

from voxd.book import Chunk, Pause
from voxd.cache import ChunkCache
from voxd.errors import Stopping
from voxd.render import plan_batches, render, with_keys
from voxd.tts.espeak import EspeakEngine


class Counting:
    """The real engine, counting what it is asked to speak."""

    def __init__(self, engine):
        self.engine = engine
        self.model_id = engine.model_id
        self.texts: list[str] = []
        self.batches: list[int] = []

    def synthesize(self, batch):
        self.texts.extend(u.text for u in batch)
        self.batches.append(len(batch))
        return self.engine.synthesize(batch)


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
