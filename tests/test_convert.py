"""Assembly end to end: a real EPUB, spoken by eSpeak NG into a real cache, out as an M4B.

Also assembly from a cache filled by hand, where the test decides each chapter's level.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pyloudnorm as pyln
import pytest

from voxd.audio.assembly import _part_starts, assemble
from voxd.audio.loudness import to_db
from voxd.book import Book, Chunk, Pause
from voxd.cache import ChunkCache
from voxd.convert import convert
from voxd.errors import AssemblyFailed
from voxd.ingest import read_book
from voxd.narration.text import plan_chunks
from voxd.render import render, with_keys
from voxd.samples import SAMPLE_CHAPTERS, build_epub

from .support import RATE, assemblers, chapters_of, decode, handmade_book, legacy_entry, settings_for, tiny_png

VOICE = "default"


def loudness(pcm: np.ndarray, rate: int) -> float:
    return pyln.Meter(rate, filter_class="DeMan").integrated_loudness(pcm)


# -- a real book through eSpeak NG -----------------------------------------------------------


@dataclass
class Rendered:
    book: Book
    chunks: list[Chunk]
    cache: ChunkCache
    narrator: str
    expected_samples: int  # chunk audio plus pauses, at the default pauses
    rate: int


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    from voxd.tts.espeak import EspeakEngine

    tmp = tmp_path_factory.mktemp("espeak")
    epub = build_epub(
        tmp / "alice.epub",
        title="Down the Rabbit-Hole",
        authors=("Lewis Carroll",),
        chapters=SAMPLE_CHAPTERS,
        identifier="voxd-test-alice",
        cover=tiny_png(),
    )
    book = read_book(epub)
    engine = EspeakEngine()
    chunks = with_keys(plan_chunks(book, voice=VOICE, language=book.metadata.language), engine.model_id)
    cache = ChunkCache(tmp / "cache")
    render(chunks, engine, cache, batch_size=16)
    defaults = settings_for(tmp)
    rate = engine.sample_rate
    pauses = {
        Pause.SENTENCE: int(defaults.pause_sentence * rate),
        Pause.PARAGRAPH: int(defaults.pause_paragraph * rate),
        Pause.CHAPTER: int(defaults.pause_chapter * rate),
    }
    expected = 0
    for c in chunks:
        samples, chunk_rate = cache.get(c.key)
        assert chunk_rate == rate
        expected += samples.size + pauses[c.pause]
    return Rendered(book, chunks, cache, engine.narrator(VOICE), expected, rate)


@pytest.fixture(scope="module")
def assembled(rendered: Rendered, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("out")
    output = tmp / "Lewis Carroll" / "Down the Rabbit-Hole" / "Down the Rabbit-Hole.m4b"
    output.parent.mkdir(parents=True)
    marks, duration = assemble(
        rendered.book, rendered.chunks, rendered.cache, output, settings_for(tmp), narrator=rendered.narrator
    )
    return output, marks, duration


def test_chapters_are_the_books(rendered: Rendered, assembled) -> None:
    output, marks, duration = assembled
    titles = [title for title, _ in SAMPLE_CHAPTERS]
    assert [m.title for m in marks] == titles
    found = chapters_of(output)
    assert [title for title, _, _ in found] == titles
    assert [start for _, start, _ in found] == pytest.approx([m.start for m in marks], abs=0.002)
    assert found[0][1] == 0.0 and found[-1][2] == pytest.approx(duration, abs=0.002)
    # each chapter starts where the previous chapter's audio and pauses end
    per_chapter = [0] * len(titles)
    pause = {Pause.SENTENCE: 0.35, Pause.PARAGRAPH: 0.8, Pause.CHAPTER: 2.0}
    for c in rendered.chunks:
        samples, _ = rendered.cache.get(c.key)
        per_chapter[c.chapter] += samples.size + int(pause[c.pause] * rendered.rate)
    assert [m.start for m in marks] == pytest.approx(
        [sum(per_chapter[:i]) / rendered.rate for i in range(len(titles))], abs=1e-9
    )


def test_duration_is_the_chunks_plus_pauses(rendered: Rendered, assembled) -> None:
    output, _, duration = assembled
    assert duration == pytest.approx(rendered.expected_samples / rendered.rate, abs=1e-9)
    pcm, rate = decode(output)
    assert rate == rendered.rate
    assert abs(pcm.size - rendered.expected_samples) <= 2 * 1024  # encoder padding only
    with av.open(str(output)) as container:
        assert container.duration / av.time_base == pytest.approx(duration, abs=0.05)


def test_output_is_at_the_target_loudness_under_the_peak_ceiling(rendered: Rendered, assembled) -> None:
    output, _, _ = assembled
    pcm, rate = decode(output)
    raw = np.concatenate([rendered.cache.get(c.key)[0] for c in rendered.chunks]).astype(np.float64)
    assert abs(loudness(raw, rate) - (-18.0)) > 1.0, "eSpeak is already at the target: the test proves nothing"
    # eSpeak's peaks sit ~19 dB over its loudness and the limiter takes at most 6 dB, so the
    # peak ceiling wins by a few tenths of a LU; eSpeak varies a little from run to run.
    measured = loudness(pcm, rate)
    assert measured == pytest.approx(-18.0, abs=1.5), measured
    peak = to_db(float(np.max(np.abs(pcm))))
    assert peak <= -3.0 + 1.0, peak  # the AAC encoder may overshoot the pre-encode ceiling a little


def test_every_chapter_is_levelled(rendered: Rendered, assembled) -> None:
    output, marks, _ = assembled
    pcm, rate = decode(output)
    for mark in marks:
        part = pcm[round(mark.start * rate) : round(mark.end * rate)]
        assert loudness(part, rate) == pytest.approx(-18.0, abs=1.5), mark.title


def test_sidecars_describe_the_book(rendered: Rendered, assembled) -> None:
    output, marks, _ = assembled
    folder = output.parent
    assert sorted(p.name for p in folder.iterdir()) == ["Down the Rabbit-Hole.m4b", "cover.jpg", "metadata.json"]
    assert (folder / "cover.jpg").read_bytes() == rendered.book.cover.data  # the PNG, decoded and made a JPEG
    assert rendered.book.cover.mime == "image/jpeg" and rendered.book.cover.data.startswith(b"\xff\xd8")
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert meta["title"] == "Down the Rabbit-Hole"
    assert meta["authors"] == ["Lewis Carroll"]
    assert meta["narrators"] == [rendered.narrator]
    assert meta["genres"] == ["Audiobook"]
    assert meta["language"] == "en"
    assert meta["series"] == []
    assert [c["title"] for c in meta["chapters"]] == [m.title for m in marks]
    assert [c["id"] for c in meta["chapters"]] == list(range(len(marks)))
    assert [c["start"] for c in meta["chapters"]] == pytest.approx([m.start for m in marks], abs=0.001)
    assert [c["end"] for c in meta["chapters"]] == pytest.approx([m.end for m in marks], abs=0.001)


def test_long_chapters_get_part_markers(rendered: Rendered, tmp_path: Path) -> None:
    limit_minutes = 0.25  # 15 s; eSpeak reads each sample chapter in 10-45 s, in chunks of up to ~17 s
    output = tmp_path / "parts.m4b"
    marks, duration = assemble(
        rendered.book,
        rendered.chunks,
        rendered.cache,
        output,
        settings_for(tmp_path, max_chapter_minutes=limit_minutes, write_sidecars=False),
        narrator=rendered.narrator,
    )
    assert [t for t, _, _ in chapters_of(output)] == [m.title for m in marks]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts.m4b"]  # no sidecars asked for
    assert duration == pytest.approx(rendered.expected_samples / rendered.rate, abs=1e-9)
    # where chunks begin, and how long each chapter is
    pause = {Pause.SENTENCE: 0.35, Pause.PARAGRAPH: 0.8, Pause.CHAPTER: 2.0}
    boundaries, lengths, at = set(), {}, 0
    for c in rendered.chunks:
        boundaries.add(at)
        at += rendered.cache.get(c.key)[0].size + int(pause[c.pause] * rendered.rate)
        lengths[c.chapter] = lengths.get(c.chapter, 0) + at - max(boundaries)
    seen_parts = 0
    for number, (title, _) in enumerate(SAMPLE_CHAPTERS):
        parts = [m for m in marks if m.title == title or m.title.startswith(f"{title} (")]
        assert parts[0].title == title
        assert [m.title for m in parts[1:]] == [f"{title} ({k})" for k in range(2, len(parts) + 1)]
        expected = math.ceil(lengths[number] / rendered.rate / (limit_minutes * 60))
        assert 1 <= len(parts) <= expected
        seen_parts += len(parts) - 1
        for mark in parts:  # every marker sits where a chunk begins
            assert any(abs(mark.start * rendered.rate - b) < 1 for b in boundaries), mark
    assert seen_parts >= 1


def test_without_normalisation_the_audio_is_untouched(rendered: Rendered, tmp_path: Path) -> None:
    output = tmp_path / "raw.m4b"
    assemble(
        rendered.book, rendered.chunks, rendered.cache, output,
        settings_for(tmp_path, normalize_loudness=False, write_sidecars=False), narrator=rendered.narrator,
    )
    pcm, rate = decode(output)
    raw = np.concatenate([rendered.cache.get(c.key)[0] for c in rendered.chunks]).astype(np.float64)
    assert loudness(pcm, rate) == pytest.approx(loudness(raw, rate), abs=0.5)


# -- a cache filled by hand ------------------------------------------------------------------

def test_chapters_of_different_levels_come_out_level(tmp_path: Path) -> None:
    book, chunks, cache = handmade_book(tmp_path, [0.02, 0.3, 0.001])
    output = tmp_path / "out" / "levels.m4b"
    output.parent.mkdir()
    marks, _ = assemble(book, chunks, cache, output, settings_for(tmp_path, loudness_lufs=-20.0), narrator=None)
    pcm, rate = decode(output)
    for mark in marks:
        part = pcm[round(mark.start * rate) : round(mark.end * rate)]
        assert loudness(part, rate) == pytest.approx(-20.0, abs=0.5), mark.title
    meta = json.loads((output.parent / "metadata.json").read_text())
    assert meta["series"] == ["Tones #2"] and meta["publishedYear"] == "1999" and meta["narrators"] == []
    assert not (output.parent / "cover.jpg").exists() and not (output.parent / "cover.png").exists()


def test_a_click_holds_its_chapter_under_the_ceiling(tmp_path: Path) -> None:
    book, chunks, cache = handmade_book(tmp_path, [0.01, 0.01], clicks=True)
    output = tmp_path / "clicks.m4b"
    marks, _ = assemble(book, chunks, cache, output, settings_for(tmp_path, write_sidecars=False), narrator=None)
    pcm, rate = decode(output)
    first = pcm[: round(marks[0].end * rate)]
    second = pcm[round(marks[1].start * rate) :]
    assert to_db(float(np.max(np.abs(first)))) <= -3.0 + 0.5
    assert loudness(first, rate) < -18.0 - 3.0  # held back by the click
    assert loudness(second, rate) == pytest.approx(-18.0, abs=0.5)


def test_a_chunk_missing_from_the_cache_leaves_nothing(tmp_path: Path) -> None:
    book, chunks, cache = handmade_book(tmp_path, [0.1, 0.1])
    cache.path(chunks[4].key).unlink()
    output = tmp_path / "out" / "missing.m4b"
    output.parent.mkdir()
    with pytest.raises(AssemblyFailed, match="missing from the cache"):
        assemble(book, chunks, cache, output, settings_for(tmp_path), narrator=None)
    assert list(output.parent.iterdir()) == []


def test_a_chapter_is_measured_while_its_last_chunks_render(tmp_path: Path) -> None:
    """assemble() reads each chunk as soon as ``ready`` lets it, not once its whole
    chapter is there: only the encoding is left when the chapter's last chunk arrives."""
    book, chunks, _ = handmade_book(tmp_path, [0.1, 0.2])
    reads: list[str] = []
    arrived: set[str] = set()
    lock = threading.Condition()

    class Watched(ChunkCache):
        def get(self, key: str):
            reads.append(key)
            return super().get(key)

    def wait(key: str) -> None:
        with lock:
            assert lock.wait_for(lambda: key in arrived, timeout=30)

    def arrive(keys: list[str]) -> None:
        with lock:
            arrived.update(keys)
            lock.notify_all()

    output = tmp_path / "measured.m4b"
    result: list = []
    thread = threading.Thread(target=lambda: result.append(assemble(
        book, chunks, Watched(tmp_path / "cache"), output, settings_for(tmp_path), narrator=None, ready=wait)))
    thread.start()
    arrive([c.key for c in chunks[:2]])  # two of chapter 1's three chunks
    deadline = time.monotonic() + 30
    while not {c.key for c in chunks[:2]} <= set(reads) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert set(reads) == {c.key for c in chunks[:2]}  # read, and nothing that is not there yet
    arrive([c.key for c in chunks[2:]])
    thread.join(60)
    marks, duration = result[0]
    assert [m.title for m in marks] == ["Part 1", "Part 2"]
    assert duration == pytest.approx(decode(output)[0].size / RATE, abs=0.1)


# -- where parts begin -----------------------------------------------------------------------


def test_part_starts() -> None:
    assert _part_starts([10, 10, 10], 0) == {}  # off
    assert _part_starts([10, 10, 10], 30) == {}  # not longer than the limit
    assert _part_starts([100], 10) == {}  # one chunk cannot be cut
    assert _part_starts([10] * 10, 50) == {5: 2}
    assert _part_starts([10] * 10, 40) == {3: 2, 7: 3} or _part_starts([10] * 10, 40) == {3: 2, 6: 3}
    # three parts of about 33 each, cut at the nearest boundary
    assert _part_starts([10] * 10, 34) == {3: 2, 7: 3}
    # boundaries only where chunks end: the big chunk stays whole
    assert _part_starts([5, 90, 5], 40) == {1: 2, 2: 3}
    parts = _part_starts([7, 3, 11, 2, 9, 5, 13, 1, 8, 6] * 20, 60)
    assert list(parts.values()) == list(range(2, len(parts) + 2))
    assert list(parts) == sorted(parts)
    assert math.ceil(sum([7, 3, 11, 2, 9, 5, 13, 1, 8, 6] * 20) / 60) == len(parts) + 1


# -- assembly overlaps the render ------------------------------------------------------------


class SlowEngine:
    """eSpeak NG, a little slower, noting when each batch starts: an engine-bound render."""

    def __init__(self, delay: float = 0.03) -> None:
        from voxd.tts.espeak import EspeakEngine

        self.inner = EspeakEngine()
        self.delay = delay
        self.calls: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def synthesize(self, utterances, **kwargs):
        self.calls.append(time.monotonic())
        time.sleep(self.delay)
        return self.inner.synthesize(utterances, **kwargs)


def long_book(tmp: Path) -> Path:
    chapters = [
        (f"Chapter {c}", [f"Paragraph {p} of chapter {c}: the rabbit ran on, late as ever, {'and on ' * (p % 5)}"
                          "to the garden." for p in range(1, 9)])
        for c in range(1, 5)
    ]
    return build_epub(tmp / "long.epub", title="Overlap", authors=("Ada Tester",), chapters=chapters,
                      identifier="voxd-test-overlap")


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small book in many render windows, so chapters complete while the render goes on."""
    import voxd.convert as convert_module

    monkeypatch.setattr(convert_module, "render_window", lambda batch_size: 6)


@pytest.mark.slow
def test_assembly_overlaps_the_render(tmp_path: Path, small_windows) -> None:
    output = tmp_path / "out" / "Overlap.m4b"
    written: list[tuple[int, int]] = []  # at each batch: the temp file's size, assembler processes

    class Watching(SlowEngine):
        def synthesize(self, utterances, **kwargs):
            temps = list(output.parent.glob(".Overlap.m4b.*.tmp"))
            written.append((temps[0].stat().st_size if temps else 0, len(assemblers())))
            return super().synthesize(utterances, **kwargs)

    engine = Watching(delay=0.3)
    settings = settings_for(tmp_path, espeak={"batch_size": 2}, write_sidecars=False)
    told: list[tuple[int, int]] = []
    outcome = convert(long_book(tmp_path), lambda book: output, settings, engine,
                      on_assembly=lambda done, total: told.append((done, total)))

    assert [m.title for m in outcome.chapters] == [f"Chapter {c}" for c in range(1, 5)]
    # after the render, how far the .m4b is: from the chapters already written to all four
    assert told[-1] == (4, 4) and [d for d, _ in told] == sorted({d for d, _ in told})
    assert [t for t, _, _ in chapters_of(output)] == [f"Chapter {c}" for c in range(1, 5)]
    assert outcome.progress.chunks_done == outcome.progress.chunks_total
    assert all(count == 1 for _, count in written)  # one assembler process, there all along
    # audio was going into the .m4b (past the muxer's 32 KiB buffer) while batches were still rendered
    assert sum(size > 32 * 1024 for size, _ in written) >= 3
    assert sorted(p.name for p in output.parent.iterdir()) == ["Overlap.m4b"]
    assert not assemblers()


@pytest.mark.slow
def test_a_cache_from_an_earlier_voxd_is_used_without_rendering_again(tmp_path: Path) -> None:
    """Float32 entries (``*.pcm``) are read as they are: nothing is spoken again, the book comes
    out the same, and each entry is rewritten in the compact format on the way."""
    settings = settings_for(tmp_path, write_sidecars=False)
    source = long_book(tmp_path)
    first = convert(source, lambda book: tmp_path / "first.m4b", settings, SlowEngine(delay=0))
    cache = ChunkCache(settings.cache_path)
    entries = sorted(settings.cache_path.rglob("*.vxa"))
    for entry in entries:  # the same audio, as an earlier voxd stored it
        samples, rate = cache.get(entry.stem)
        legacy_entry(cache, entry.stem, samples, rate)
        entry.unlink()

    engine = SlowEngine(delay=0)
    second = convert(source, lambda book: tmp_path / "second.m4b", settings, engine)
    assert engine.calls == []
    assert second.progress.chunks_cached == second.progress.chunks_total == len(entries)
    assert [m.title for m in second.chapters] == [m.title for m in first.chapters]
    assert second.duration == pytest.approx(first.duration, abs=1e-6)
    assert sorted(settings.cache_path.rglob("*.vxa")) == entries and not list(settings.cache_path.rglob("*.pcm"))


def test_a_stop_while_rendering_abandons_the_assembly(tmp_path: Path, small_windows) -> None:
    class Stop(Exception):
        pass

    engine = SlowEngine()
    calls = [0]

    def checkpoint() -> None:
        if any(p.name == "voxd-reader" for p in multiprocessing.active_children()):
            return  # asked while the book is read and cut into chunks, as long as that takes
        calls[0] += 1
        if calls[0] == 12:  # once the assembler is writing its temp file, before the render is done
            deadline = time.monotonic() + 30
            while not list(output.parent.glob(".Overlap.m4b.*.tmp")) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert list(output.parent.glob(".Overlap.m4b.*.tmp"))
            raise Stop()

    settings = settings_for(tmp_path, espeak={"batch_size": 2})
    output = tmp_path / "out" / "Author" / "Overlap.m4b"
    with pytest.raises(Stop):
        convert(long_book(tmp_path), lambda book: output, settings, engine, checkpoint=checkpoint)
    assert not (tmp_path / "out").exists()  # no temp file, no output, no empty folders left behind
    assert not assemblers()
    assert len(engine.calls) == 11  # the render stopped there


def test_an_assembly_error_stops_the_render_and_reaches_the_caller(tmp_path: Path, small_windows) -> None:
    settings = settings_for(tmp_path, espeak={"batch_size": 2})

    class Damaging(SlowEngine):
        def synthesize(self, utterances, **kwargs):
            if len(self.calls) == 1:  # the first batch's audio vanishes from the cache
                for cached in settings.cache_path.rglob("*.vxa"):
                    cached.unlink()
            return super().synthesize(utterances, **kwargs)

    engine = Damaging(delay=0.3)  # the assembler process starts and fails well within a batch or two
    ended_after: list[int] = []  # batches begun when the assembler process ended

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not assemblers() and time.monotonic() < deadline:
            time.sleep(0.005)
        while assemblers() and time.monotonic() < deadline:
            time.sleep(0.005)
        ended_after.append(len(engine.calls))

    watcher = threading.Thread(target=watch)
    watcher.start()
    output = tmp_path / "out" / "Overlap.m4b"
    with pytest.raises(AssemblyFailed, match="missing from the cache"):
        convert(long_book(tmp_path), lambda book: output, settings, engine)
    watcher.join()
    batches = -(-len(plan_chunks(read_book(tmp_path / "long.epub"), voice=VOICE, language="en")) // 2)
    # the render stopped at its first checkpoint after the failure, long before the book's end
    assert len(engine.calls) <= ended_after[0] + 1 < batches - 3
    assert not (tmp_path / "out").exists()
    assert not assemblers()


def test_a_book_of_random_letters_fails_at_once(tmp_path: Path) -> None:
    """A manifest of 192 KB of random letters once became 75 hours of spelt letters."""
    import random

    from voxd.errors import BookError
    from voxd.tts.espeak import EspeakEngine

    letters = "".join(random.Random(3).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(192_000))
    manifest = tmp_path / "noise.voxd.json"
    spaced = " ".join(letters[i : i + 6] for i in range(0, 6000, 6))
    chapters = [{"title": "One", "text": letters}, {"title": "Two", "text": spaced}]
    manifest.write_text(json.dumps({"voxd_manifest": 1, "title": "Noise", "chapters": chapters}))
    engine = EspeakEngine()
    try:
        with pytest.raises(BookError, match="nothing to read aloud but titles"):
            convert(manifest, lambda book: tmp_path / "out.m4b", settings_for(tmp_path, engine="espeak"), engine)
    finally:
        engine.close()
    assert not (tmp_path / "out.m4b").exists()


def test_the_tags_name_the_voices_that_spoke(tmp_path: Path) -> None:
    """An en-GB book with an Arabic chapter, read by eSpeak's per-language voices: both are
    credited (composer and metadata.json), not the default en-us that spoke none of it."""
    from mutagen.mp4 import MP4

    from voxd.tts.espeak import EspeakEngine

    manifest = tmp_path / "two.voxd.json"
    manifest.write_text(json.dumps({"voxd_manifest": 1, "title": "Two Tongues", "language": "en-GB", "chapters": [
        {"title": "Harbour", "text": "The bell rang over the quiet harbour."},
        {"title": "البحر", "text": "كان البحر هادئا في ذلك الصباح.", "language": "ar"},
    ]}, ensure_ascii=False))
    output = tmp_path / "out" / "Two Tongues.m4b"
    engine = EspeakEngine()
    try:
        convert(manifest, lambda book: output, settings_for(tmp_path, engine="espeak"), engine)
    finally:
        engine.close()
    assert MP4(output).tags["©wrt"] == ["eSpeak NG (en-gb), eSpeak NG (ar)"]
    sidecar = json.loads((output.parent / "metadata.json").read_text())
    assert sidecar["narrators"] == ["eSpeak NG (en-gb)", "eSpeak NG (ar)"]
