"""The chunk cache on a real directory: round trips, atomicity, damaged entries."""

from __future__ import annotations

import numpy as np
import pytest

from voxd.cache import ChunkCache, content_key


def test_key_depends_on_every_part():
    base = dict(text="Hello.", voice="en-us", style=None, language="en", model="espeak/175")
    keys = {content_key(**base)}
    for field, other in [("text", "Hello!"), ("voice", "de"), ("style", "calm"), ("language", "de"), ("model", "q")]:
        keys.add(content_key(**{**base, field: other}))
    assert len(keys) == 6
    assert content_key(**base) == content_key(**dict(reversed(list(base.items()))))


def test_round_trip(tmp_path):
    cache = ChunkCache(tmp_path)
    audio = np.linspace(-1, 1, 2401, dtype=np.float32)
    cache.put("ab" * 32, audio, 24000)
    samples, rate = cache.get("ab" * 32)
    assert rate == 24000
    np.testing.assert_array_equal(samples, audio)
    assert ("ab" * 32) in cache
    assert cache.get("cd" * 32) is None


def test_no_temp_files_left(tmp_path):
    cache = ChunkCache(tmp_path)
    for n in range(5):
        cache.put(f"{n:02d}" * 32, np.zeros(100, np.float32), 22050)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".pcm"]
    assert leftovers == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_entry_is_rejected_and_removed(tmp_path, damage):
    cache = ChunkCache(tmp_path)
    key = "ef" * 32
    path = cache.put(key, np.random.default_rng(1).standard_normal(5000).astype(np.float32), 24000)
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip":
        blob[-7] ^= 0xFF
    elif damage == "empty":
        blob = bytearray()
    else:
        blob = bytearray(b"not audio at all" * 10)
    path.write_bytes(bytes(blob))
    assert cache.get(key) is None
    assert not path.exists()


def test_evict_removes_least_recently_used_first(tmp_path):
    import os

    from voxd.cache import evict

    cache = ChunkCache(tmp_path)
    keys = [f"{n:02d}" * 32 for n in range(6)]
    for n, key in enumerate(keys):
        path = cache.put(key, np.zeros(1000, np.float32), 24000)
        os.utime(path, (1000 + n, 1000 + n))
    size = path.stat().st_size
    cache.get(keys[0])  # used just now: most recent
    removed, freed = evict(tmp_path, max_bytes=3 * size)
    assert removed == 3 and freed == 3 * size
    assert [k in cache for k in keys] == [True, False, False, False, True, True]


def test_evict_keeps_chunks_of_unfinished_jobs(tmp_path):
    import os

    from voxd.cache import evict

    cache = ChunkCache(tmp_path)
    for n in range(4):
        path = cache.put(f"{n:02d}" * 32, np.zeros(1000, np.float32), 24000)
        os.utime(path, (1000 + n, 1000 + n))
    removed, _ = evict(tmp_path, max_bytes=0, protect_newer_than=1002)
    assert removed == 2
    assert sorted(p.stem[:2] for p in tmp_path.rglob("*.pcm")) == ["02", "03"]
