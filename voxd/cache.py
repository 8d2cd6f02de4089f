"""Content-addressed audio of rendered chunks.

The cache is the source of truth for rendered audio: a chunk's key is the hash of
everything that shapes its sound, so a restarted render finds what it already
made and a changed voice or model never reuses stale audio.

Entries are a 24-byte header (magic, version, sample rate, sample count, CRC32)
plus float32 samples. The header lets a reader reject a truncated or corrupted
entry instead of assembling noise into a book; a rejected entry is removed and
rendered again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import StorageFull, translate
from .files import atomic_write

_MAGIC = b"VXDA"
_VERSION = 1
_HEADER = struct.Struct("<4sHHIII")  # magic, version, reserved, sample_rate, n_samples, crc32


def content_key(**parts: object) -> str:
    """A stable hash of named parts (text, voice, model id, settings...)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ChunkCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pcm"

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> tuple[np.ndarray, int] | None:
        """The entry's samples and sample rate, or None when absent or damaged (then removed)."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        decoded = _decode(blob)
        if decoded is None:
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for size-capped eviction
        return decoded

    def put(self, key: str, audio: np.ndarray, sample_rate: int) -> Path:
        """Store atomically: a reader sees the whole entry or none of it."""
        samples = np.ascontiguousarray(audio, dtype="<f4").reshape(-1)
        payload = samples.tobytes()
        header = _HEADER.pack(_MAGIC, _VERSION, 0, sample_rate, samples.size, zlib.crc32(payload))
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_write(target) as fh:
                fh.write(header)
                fh.write(payload)
        except OSError as exc:
            if isinstance(translate(exc), StorageFull):
                raise StorageFull(f"no space left on the device holding the cache ({self.root})") from None
            raise
        return target


def _decode(blob: bytes) -> tuple[np.ndarray, int] | None:
    if len(blob) < _HEADER.size:
        return None
    magic, version, _, sample_rate, n_samples, crc = _HEADER.unpack_from(blob)
    payload = blob[_HEADER.size :]
    if magic != _MAGIC or version != _VERSION or len(payload) != n_samples * 4:
        return None
    if zlib.crc32(payload) != crc:
        return None
    return np.frombuffer(payload, dtype="<f4").astype(np.float32), sample_rate


def evict(root: Path, max_bytes: int, *, protect_newer_than: float | None = None) -> tuple[int, int]:
    """Remove least-recently-used entries until the cache fits in max_bytes.

    Entries used at or after ``protect_newer_than`` (a Unix time) are kept: they
    belong to jobs that are not finished yet, whose chunks must survive for the
    render to resume. Returns (entries removed, bytes freed).
    """
    entries = []
    total = 0
    for path in Path(root).glob("*/*.pcm"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        entries.append((st.st_mtime, st.st_size, path))
        total += st.st_size
    removed = freed = 0
    for mtime, size, path in sorted(entries):
        if total - freed <= max_bytes:
            break
        if protect_newer_than is not None and mtime >= protect_newer_than:
            continue
        path.unlink(missing_ok=True)
        removed += 1
        freed += size
    return removed, freed
