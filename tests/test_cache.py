"""The chunk cache on a real directory: round trips, the compact format, older entries,
atomicity, damaged entries, eviction."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import soundfile

from voxd.cache import LEGACY_SUFFIX, SUFFIX, ChunkCache, content_key, evict, usage
from voxd.tts.base import Utterance
from voxd.tts.espeak import EspeakEngine

from .support import legacy_entry

HALF_STEP = 0.5 / 32767 + 1e-7  # the most 16-bit rounding may move a sample in [-1, 1]


def speech(text: str = "A chunk cache that never fills the disk by surprise.") -> tuple[np.ndarray, int]:
    result = EspeakEngine().synthesize([Utterance(text=text, voice="en-us")])
    return result.waveforms[0], result.sample_rate


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
    assert rate == 24000 and samples.dtype == np.float32 and samples.size == audio.size
    np.testing.assert_allclose(samples, audio, rtol=0, atol=HALF_STEP)
    assert ("ab" * 32) in cache
    assert cache.get("cd" * 32) is None
    assert cache.seconds("ab" * 32) == pytest.approx(2401 / 24000)
    assert cache.seconds("cd" * 32) is None


def test_speech_is_stored_as_16_bit_flac_a_quarter_of_float32(tmp_path):
    cache = ChunkCache(tmp_path)
    audio, rate = speech()
    path = cache.put("ab" * 32, audio, rate)
    assert path.suffix == SUFFIX
    assert path.stat().st_size < audio.size * 4 / 3  # float32 is 4 bytes a sample; 16-bit FLAC of speech ~1
    flac = io.BytesIO(path.read_bytes()[24:])  # after the 24-byte header
    info = soundfile.info(flac)
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        "FLAC", "PCM_16", rate, 1, audio.size)
    samples, _ = cache.get("ab" * 32)
    np.testing.assert_allclose(samples, audio, rtol=0, atol=HALF_STEP)


def test_audio_louder_than_full_scale_is_not_clipped(tmp_path):
    cache = ChunkCache(tmp_path)
    audio = (1.7 * np.sin(np.linspace(0, 40 * np.pi, 4000))).astype(np.float32)
    cache.put("ab" * 32, audio, 16000)
    samples, _ = cache.get("ab" * 32)
    assert samples.max() == pytest.approx(1.7, abs=1e-3)
    np.testing.assert_allclose(samples, audio, rtol=0, atol=1.7 * HALF_STEP)


def test_empty_and_unplayable_audio(tmp_path):
    cache = ChunkCache(tmp_path)
    cache.put("ab" * 32, np.zeros(0, np.float32), 24000)
    samples, rate = cache.get("ab" * 32)
    assert samples.size == 0 and rate == 24000
    cache.put("cd" * 32, np.array([0.5, np.nan, np.inf, -0.5], np.float32), 24000)
    samples, _ = cache.get("cd" * 32)
    np.testing.assert_allclose(samples, [0.5, 0, 0, -0.5], atol=HALF_STEP)


def test_no_temp_files_left(tmp_path):
    cache = ChunkCache(tmp_path)
    for n in range(5):
        cache.put(f"{n:02d}" * 32, np.zeros(100, np.float32), 22050)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != SUFFIX]
    assert leftovers == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "flip-scale", "empty", "garbage", "version"])
def test_damaged_entry_is_rejected_and_removed(tmp_path, damage):
    cache = ChunkCache(tmp_path)
    key = "ef" * 32
    path = cache.put(key, np.random.default_rng(1).standard_normal(5000).astype(np.float32), 24000)
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip":
        blob[-7] ^= 0xFF
    elif damage == "flip-scale":
        blob[21] ^= 0x01  # the scale, bytes 20-23
    elif damage == "empty":
        blob = bytearray()
    elif damage == "version":
        blob[4] = 9
    else:
        blob = bytearray(b"not audio at all" * 10)
    path.write_bytes(bytes(blob))
    assert cache.get(key) is None
    assert not path.exists()
    path.write_bytes(bytes(blob))
    assert cache.seconds(key) is None  # the render loop's look-up rejects it too, without decoding
    assert not path.exists()


def test_float32_entries_of_an_older_cache_are_read_then_converted(tmp_path):
    cache = ChunkCache(tmp_path)
    audio, rate = speech()
    legacy_entry(cache, "ab" * 32, audio, rate)
    old = cache.legacy_path("ab" * 32)
    before = old.stat().st_size

    assert cache.seconds("ab" * 32) == pytest.approx(audio.size / rate)  # the render loop finds it
    assert old.exists() and not cache.path("ab" * 32).exists()  # a look-up converts nothing

    samples, got_rate = cache.get("ab" * 32)
    np.testing.assert_array_equal(samples, audio)  # exactly what was stored
    assert got_rate == rate
    assert not old.exists()
    new = cache.path("ab" * 32)
    assert new.stat().st_size < before / 3
    again, _ = cache.get("ab" * 32)
    np.testing.assert_allclose(again, audio, rtol=0, atol=HALF_STEP)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [new.name]


def test_damaged_float32_entry_is_removed(tmp_path):
    cache = ChunkCache(tmp_path)
    legacy_entry(cache, "ab" * 32, np.ones(1000, np.float32), 24000)
    path = cache.legacy_path("ab" * 32)
    path.write_bytes(path.read_bytes()[:-10])
    assert cache.get("ab" * 32) is None
    assert not path.exists()


def test_storing_a_key_again_replaces_its_float32_entry(tmp_path):
    cache = ChunkCache(tmp_path)
    legacy_entry(cache, "ab" * 32, np.ones(1000, np.float32), 24000)
    cache.put("ab" * 32, np.zeros(10, np.float32), 24000)
    assert not cache.legacy_path("ab" * 32).exists()
    assert cache.get("ab" * 32)[0].size == 10


def test_usage_counts_both_formats(tmp_path):
    cache = ChunkCache(tmp_path)
    assert usage(tmp_path).entries == 0
    new = cache.put("aa" * 32, np.zeros(1000, np.float32), 24000)
    legacy_entry(cache, "bb" * 32, np.zeros(1000, np.float32), 24000)
    found = usage(tmp_path)
    assert (found.entries, found.legacy_entries) == (2, 1)
    assert found.legacy_bytes == 4000 + 20
    assert found.bytes == found.legacy_bytes + new.stat().st_size


def test_evict_removes_least_recently_used_first(tmp_path):
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


def test_evict_frees_what_it_is_asked_for_and_counts_old_entries(tmp_path):
    cache = ChunkCache(tmp_path)
    keys = [f"{n:02d}" * 32 for n in range(4)]
    for n, key in enumerate(keys):
        if n % 2:
            legacy_entry(cache, key, np.zeros(1000, np.float32), 24000)
            path = cache.legacy_path(key)
        else:
            path = cache.put(key, np.zeros(1000, np.float32), 24000)
        os.utime(path, (1000 + n, 1000 + n))
    assert evict(tmp_path, None) == (0, 0)  # no cap, nothing asked: nothing goes
    removed, _ = evict(tmp_path, None, free_bytes=1)
    assert removed == 1 and not cache.has(keys[0])
    old = cache.legacy_path(keys[1]).stat().st_size
    removed, freed = evict(tmp_path, None, free_bytes=old + 1)  # the old entry, then a new one
    assert removed == 2 and [cache.has(k) for k in keys] == [False, False, False, True]


def test_evict_keeps_chunks_of_unfinished_jobs(tmp_path):
    cache = ChunkCache(tmp_path)
    for n in range(4):
        path = cache.put(f"{n:02d}" * 32, np.zeros(1000, np.float32), 24000)
        os.utime(path, (1000 + n, 1000 + n))
    removed, _ = evict(tmp_path, max_bytes=0, protect_newer_than=1002)
    assert removed == 2
    assert sorted(p.stem[:2] for p in tmp_path.rglob(f"*{SUFFIX}")) == ["02", "03"]
    assert not list(tmp_path.rglob(f"*{LEGACY_SUFFIX}"))
