"""Disk space on real folders: the cache's cap and free-space floor, a book's needs, what is reported."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from voxd.book import Chunk, Pause
from voxd.cache import ChunkCache
from voxd.config import Settings
from voxd.service.disk import (
    CACHE_BYTES_PER_SECOND,
    Needs,
    needs,
    on_cache_volume,
    report,
    shortfall,
    trim_cache,
    volume,
)
from voxd.service.store import Store
from voxd.tts.base import speech_seconds

SHM = Path("/dev/shm")


def other_volume(tmp_path: Path) -> Path:
    """A folder on another filesystem than tmp_path, or a skip."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev or not os.access(SHM, os.W_OK):
        pytest.skip("needs /dev/shm as a writable filesystem of its own")
    return SHM


def aged(cache: ChunkCache, key: str, seconds_ago: float) -> Path:
    path = cache.put(key, np.zeros(1000, np.float32), 24000)
    when = time.time() - seconds_ago
    os.utime(path, (when, when))
    return path


def test_the_cap_spares_unfinished_jobs(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", cache_max_gb=1e-9, cache_min_free_gb=0)  # ~1 byte
    store = Store(settings.db_path)
    cache = ChunkCache(settings.cache_path)
    old = aged(cache, "aa" * 32, 3600)
    store.put("b" * 64, "/in/b.epub")
    store.claim(60)  # started now: chunks from now on belong to it
    fresh = cache.put("bb" * 32, np.zeros(100, np.float32), 24000)
    assert trim_cache(settings, store)[0] == 1
    assert not old.exists() and fresh.exists()


def test_no_cap_and_room_to_spare_removes_nothing(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", cache_max_gb=0, cache_min_free_gb=0)
    cache = ChunkCache(settings.cache_path)
    old = aged(cache, "aa" * 32, 86400 * 365)
    assert trim_cache(settings, Store(settings.db_path)) == (0, 0)
    assert old.exists()


def test_the_free_space_floor_takes_finished_books_chunks_first(tmp_path, caplog):
    # No volume here has a petabyte free: the floor is never met, whatever else writes meanwhile.
    settings = Settings(state_dir=tmp_path / "state", cache_max_gb=0, cache_min_free_gb=1e6)
    store = Store(settings.db_path)
    cache = ChunkCache(settings.cache_path)
    finished = [aged(cache, f"{n:02d}" * 32, 7200 + n) for n in range(3)]
    store.put("b" * 64, "/in/b.epub")
    store.claim(60)
    running = cache.put("ff" * 32, np.zeros(100, np.float32), 24000)
    sizes = sum(p.stat().st_size for p in finished)
    with caplog.at_level(logging.INFO, logger="voxd.service.disk"):
        assert trim_cache(settings, store) == (3, sizes)
    assert not any(p.exists() for p in finished) and running.exists()
    assert "removed 3 least recently used chunks of finished books" in caplog.text
    assert "belongs to unfinished books" in caplog.text


def test_room_for_a_book_is_made_from_finished_books_chunks(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", cache_max_gb=0, cache_min_free_gb=0)
    cache = ChunkCache(settings.cache_path)
    old = aged(cache, "aa" * 32, 3600)
    store = Store(settings.db_path)
    assert trim_cache(settings, store, need=1000) == (0, 0)  # fits: nothing goes
    assert old.exists()
    more_than_free = volume(settings.cache_path).free * 2 + 1
    assert trim_cache(settings, store, need=more_than_free)[0] == 1
    assert not old.exists()


def chunks_of(texts: list[str]) -> list[Chunk]:
    return [Chunk(chapter=0, index=n, text=t, pause=Pause.PARAGRAPH, voice="v", key=f"{n:02d}" * 32)
            for n, t in enumerate(texts)]


def test_needs_count_the_chunks_not_cached_and_the_whole_audiobook(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", bitrate=64000, pause_paragraph=0.8)
    cache = ChunkCache(settings.cache_path)
    texts = ["A short sentence.", "Another one, a little longer than that.", "The third and last sentence here."]
    chunks = chunks_of(texts)
    cache.put(chunks[1].key, np.zeros(100, np.float32), 24000)
    found = needs(chunks + chunks[:1], cache, settings)  # a chunk said twice is rendered once
    spoken = [speech_seconds(t) for t in texts]
    assert found.cache == round((spoken[0] + spoken[2]) * CACHE_BYTES_PER_SECOND)
    book_seconds = sum(spoken) + spoken[0] + 4 * 0.8
    assert found.output == round(book_seconds * 64000 / 8)
    assert on_cache_volume(settings, found) == found.cache + found.output  # one volume here


def test_a_book_that_fits_is_not_warned_about(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", outbox=tmp_path / "out")
    assert shortfall(settings, Needs(cache=1000, output=1000), "Emma") is None


def test_a_book_larger_than_the_volume_is_warned_about_in_words(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", outbox=tmp_path / "out")
    short = shortfall(settings, Needs(cache=3 * 10**15, output=10**15), "Emma")
    assert short.startswith("Emma needs about 4000000.0 GB (3000000.0 GB of chunk audio, 1000000.0 GB for the "
                            f"audiobook) on the volume holding {settings.cache_path}, which has ")
    assert short.endswith(" free")


def test_cache_and_outbox_on_two_volumes_are_checked_apart(tmp_path):
    outbox = other_volume(tmp_path) / f"voxd-test-{os.getpid()}"
    settings = Settings(state_dir=tmp_path / "state", outbox=outbox)
    assert shortfall(settings, Needs(cache=10**15, output=1000), "Emma") == (
        f"Emma needs about 1000000.0 GB of chunk audio on the volume holding {settings.cache_path}, which has "
        f"{_free(settings.cache_path)} free")
    short = shortfall(settings, Needs(cache=1000, output=10**15), "Emma")
    assert f"about 1000000.0 GB for the audiobook on the volume holding {outbox}" in short
    assert on_cache_volume(settings, Needs(cache=10, output=1000)) == 10


def _free(folder: Path) -> str:
    from voxd.service.disk import size

    return size(volume(folder).free)


def test_report_names_the_cache_size_and_each_volume(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", outbox=tmp_path / "out", cache_min_free_gb=0)
    [cache_line, disk_line] = report(settings)
    assert cache_line == ("cache", "empty, cap 10 GB", True)
    label, text, ok = disk_line
    assert label == "disk" and ok and text.startswith("state, cache, outbox: ") and " free of " in text

    cache = ChunkCache(settings.cache_path)
    entry = cache.put("aa" * 32, np.zeros(24000, np.float32), 24000)
    old = cache.legacy_path("bb" * 32)
    old.parent.mkdir()
    old.write_bytes(b"VXDA" + bytes(16))  # a float32 entry of an earlier voxd (its header only)
    total = entry.stat().st_size + 20
    assert report(settings)[0] == ("cache", f"{total / 1e6:.0f} MB in 2 chunks, cap 10 GB (0 MB of it in 1 float32 "
                                            "chunks from an earlier voxd, rewritten compactly when next used)", True)


def test_report_flags_a_volume_under_the_floor_and_splits_volumes(tmp_path):
    outbox = other_volume(tmp_path) / f"voxd-test-{os.getpid()}"
    settings = Settings(state_dir=tmp_path / "state", outbox=outbox, cache_max_gb=0, cache_min_free_gb=1e6)
    lines = report(settings)
    assert lines[0] == ("cache", "empty, no cap", True)
    [(_, state, state_ok), (_, out, out_ok)] = lines[1:]
    assert state.startswith("state, cache: ") and out.startswith("outbox: ")
    assert not state_ok and not out_ok and "under cache_min_free_gb, 1e+06 GB" in state


def test_a_cancelled_books_chunks_are_within_the_caps_reach(tmp_path):
    """Cancelled, a book no longer protects its chunks: the cap takes them like a finished
    book's (`voxd cancel --purge` removes them at once)."""
    settings = Settings(state_dir=tmp_path / "state", cache_max_gb=1e-9, cache_min_free_gb=0)
    store = Store(settings.db_path)
    cache = ChunkCache(settings.cache_path)
    job, _ = store.put("c" * 64, "/in/c.epub")
    store.claim(60)
    rendered = cache.put("cc" * 32, np.zeros(100, np.float32), 24000)
    assert trim_cache(settings, store) == (0, 0) and rendered.exists()  # running: kept
    store.cancel(job.id)
    assert trim_cache(settings, store)[0] == 1 and not rendered.exists()
