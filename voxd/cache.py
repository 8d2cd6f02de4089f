"""Content-addressed audio of rendered chunks.

The cache is the source of truth for rendered audio: a chunk's key is the hash of
everything that shapes its sound, so a restarted render finds what it already
made and a changed voice or model never reuses stale audio.

An entry, ``<key>.vxa``, is a 24-byte header (magic, version 2, sample rate,
sample count, CRC32, scale) and the samples as 16-bit FLAC. Sixteen bits are
far below what an audiobook at 64 kbps AAC can carry (the rounding error sits
near -98 dBFS), and FLAC halves them again: about a quarter of the float32 the
engines hand over (``bench/cache.py`` measures it). Audio that peaks above full
scale is divided by its peak first and the scale kept in the header, so nothing
an engine made is clipped here. The CRC covers everything after it, so a reader
rejects a truncated or corrupted entry instead of assembling noise into a book;
a rejected entry is removed and rendered again.

Entries written before (``<key>.pcm``, version 1: the same header without the
scale, then raw float32) are still read, and rewritten as version 2 the first
time they are, so an existing cache shrinks as it is used and is never
rendered again for its format.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from .errors import StorageFull, VoxdError, translate
from .files import atomic_write

_T = TypeVar("_T")

_MAGIC = b"VXDA"
_PREFIX = struct.Struct("<4sH")  # magic, version: what every version starts with
_V1 = struct.Struct("<4sHHIII")  # magic, version, reserved, sample_rate, n_samples, crc32 (of the payload)
_V2 = struct.Struct("<4sHHIIIf")  # ... crc32 (of the scale and the payload), scale
_V2_CRC_FROM = _V1.size  # the CRC of version 2 covers the bytes from here: the scale, then the FLAC
_FULL_SCALE = 32767

SUFFIX = ".vxa"
LEGACY_SUFFIX = ".pcm"  # version 1, float32: read, and rewritten as version 2 when read
FLAG_SUFFIX = ".flagged"  # beside an entry whose take failed every check: kept, but spoken again next time


def content_key(**parts: object) -> str:
    """A stable hash of named parts (text, voice, model id, settings...)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ChunkCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{SUFFIX}"

    def legacy_path(self, key: str) -> Path:
        """Where an entry written before version 2 lives (float32, converted when read)."""
        return self.root / key[:2] / f"{key}{LEGACY_SUFFIX}"

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def has(self, key: str) -> bool:
        """Whether an entry exists, unchecked: a cheap count of what a render will find."""
        return self.path(key).exists() or self.legacy_path(key).exists()

    def get(self, key: str) -> tuple[np.ndarray, int] | None:
        """The entry's samples and sample rate, or None when absent or damaged (then removed).

        An entry in the old float32 format is rewritten in the compact one on the way.
        """
        found = self._entry(key, _decode)
        if found is None:
            return None
        path, decoded = found
        if path.suffix == LEGACY_SUFFIX:
            try:
                self.put(key, *decoded)  # the compact entry replaces the old one, and is recent
                return decoded
            except (OSError, VoxdError):
                pass  # converting is a saving, not a duty: with no room for the new file, the old stays
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for size-capped eviction
        return decoded

    def seconds(self, key: str) -> float | None:
        """The entry's length in seconds, or None when absent or damaged (then removed).

        The header and the CRC are checked, the audio is not decoded: this is the
        render loop's look-up for every chunk of a book, which needs only the length
        and would spend seconds decoding hours of audio.
        """
        found = self._entry(key, _check)
        if found is None:
            return None
        path, (rate, n_samples) = found
        with contextlib.suppress(OSError):
            os.utime(path)
        return n_samples / rate

    def put(self, key: str, audio: np.ndarray, sample_rate: int) -> Path:
        """Store atomically: a reader sees the whole entry or none of it."""
        blob = encode(audio, sample_rate)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_write(target) as fh:
                fh.write(blob)
        except OSError as exc:
            if isinstance(translate(exc), StorageFull):
                raise StorageFull(f"no space left on the device holding the cache ({self.root})") from None
            raise
        self.legacy_path(key).unlink(missing_ok=True)
        return target

    def flag_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{FLAG_SUFFIX}"

    def flag(self, key: str, record: dict) -> None:
        """Mark the entry unsettled: its take failed every check, so it is kept for the book
        but not taken as finished (the next render speaks it again). ``record`` says why."""
        path = self.flag_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            fh.write(json.dumps(record, ensure_ascii=False).encode("utf-8"))

    def unflag(self, key: str) -> None:
        self.flag_path(key).unlink(missing_ok=True)

    def flagged(self, key: str) -> dict | None:
        """Why the entry is unsettled, or None when it is settled (or absent)."""
        try:
            return dict(json.loads(self.flag_path(key).read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"why": "unreadable flag"}

    def remove(self, key: str) -> int | None:
        """Delete the entry (either format) and its flag; the bytes it held, or None when there was none."""
        self.unflag(key)
        freed = None
        for path in (self.path(key), self.legacy_path(key)):
            try:
                held = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            freed = (freed or 0) + held
        return freed

    def _entry(self, key: str, parse: Callable[[bytes], _T | None]) -> tuple[Path, _T] | None:
        """The entry's file and what ``parse`` reads from its bytes, in either format; a
        damaged entry (``parse`` gives None) is removed. A reader converting the old entry
        elsewhere may remove it between the two looks, so the new name is looked at once more."""
        for path in (self.path(key), self.legacy_path(key), self.path(key)):
            try:
                blob = path.read_bytes()
            except FileNotFoundError:
                continue
            parsed = parse(blob)
            if parsed is None:
                path.unlink(missing_ok=True)
                return None
            return path, parsed
        return None


def encode(audio: np.ndarray, sample_rate: int) -> bytes:
    """An entry's bytes: the version 2 header and the samples as 16-bit FLAC.

    Not-a-number and infinite samples (which no player could play) become silence.
    """
    import soundfile  # a C library behind cffi: loaded when audio is stored, not at start-up

    samples = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    scale = max(1.0, peak)
    payload = b""
    if samples.size:
        ints = np.round(samples * (_FULL_SCALE / scale)).astype(np.int16)
        buffer = io.BytesIO()
        soundfile.write(buffer, ints, sample_rate, format="FLAC", subtype="PCM_16")
        payload = buffer.getvalue()
    tail = struct.pack("<f", scale) + payload
    return _V1.pack(_MAGIC, 2, 0, sample_rate, samples.size, zlib.crc32(tail)) + tail


def _check(blob: bytes) -> tuple[int, int] | None:
    """(sample rate, sample count) of an intact entry of either version, else None."""
    if len(blob) < _PREFIX.size:
        return None
    magic, version = _PREFIX.unpack_from(blob)
    if magic != _MAGIC:
        return None
    if version == 1 and len(blob) >= _V1.size:
        _, _, _, rate, n_samples, crc = _V1.unpack_from(blob)
        payload = memoryview(blob)[_V1.size :]
        if len(payload) != n_samples * 4 or zlib.crc32(payload) != crc:
            return None
        return rate, n_samples
    if version == 2 and len(blob) >= _V2.size:
        _, _, _, rate, n_samples, crc, _scale = _V2.unpack_from(blob)
        if zlib.crc32(memoryview(blob)[_V2_CRC_FROM:]) != crc or rate == 0:
            return None
        return rate, n_samples
    return None


def _decode(blob: bytes) -> tuple[np.ndarray, int] | None:
    """The samples (float32) and sample rate of an intact entry of either version, else None."""
    checked = _check(blob)
    if checked is None:
        return None
    rate, n_samples = checked
    version = _PREFIX.unpack_from(blob)[1]
    if version == 1:
        return np.frombuffer(blob, dtype="<f4", offset=_V1.size).astype(np.float32), rate
    scale = _V2.unpack_from(blob)[-1]
    if n_samples == 0:
        return np.zeros(0, np.float32), rate
    import soundfile

    try:
        ints, flac_rate = soundfile.read(io.BytesIO(blob[_V2.size :]), dtype="int16")
    except (RuntimeError, TypeError, ValueError):  # libsndfile's errors are RuntimeErrors
        return None
    if ints.ndim != 1 or ints.size != n_samples or flac_rate != rate:
        return None
    return ints.astype(np.float32) * np.float32(scale / _FULL_SCALE), rate


@dataclass(frozen=True, slots=True)
class Usage:
    """What the cache holds on disk."""

    entries: int = 0
    bytes: int = 0
    legacy_entries: int = 0  # of those, float32 entries from before version 2
    legacy_bytes: int = 0


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every entry, both formats."""
    found = []
    for pattern in (f"*/*{SUFFIX}", f"*/*{LEGACY_SUFFIX}"):
        for path in Path(root).glob(pattern):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append((st.st_mtime, st.st_size, path))
    return found


def usage(root: Path) -> Usage:
    """Entries and bytes in the cache: a walk of its folders, one stat per entry."""
    entries = _entries(root)
    legacy = [size for _, size, path in entries if path.suffix == LEGACY_SUFFIX]
    return Usage(entries=len(entries), bytes=sum(size for _, size, _ in entries),
                 legacy_entries=len(legacy), legacy_bytes=sum(legacy))


def evict(
    root: Path, max_bytes: int | None, *, free_bytes: int = 0, protect_newer_than: float | None = None
) -> tuple[int, int]:
    """Remove least-recently-used entries until the cache fits in ``max_bytes`` (None: no
    cap) and at least ``free_bytes`` are freed.

    Entries used at or after ``protect_newer_than`` (a Unix time) are kept: they
    belong to jobs that are not finished yet, whose chunks must survive for the
    render to resume. Returns (entries removed, bytes freed).
    """
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    removed = freed = 0
    for mtime, size, path in sorted(entries):
        if (max_bytes is None or total - freed <= max_bytes) and freed >= free_bytes:
            break
        if protect_newer_than is not None and mtime >= protect_newer_than:
            continue
        path.unlink(missing_ok=True)
        removed += 1
        freed += size
    return removed, freed
