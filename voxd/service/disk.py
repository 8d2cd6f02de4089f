"""Disk space: what the chunk cache may keep, what the volumes have free, what a book will need.

A finished book's chunks stay in the cache for what they are still good for: a
retried job, a manifest with one chapter edited, a setting changed and changed
back (only chunks whose text, voice, model or settings changed are rendered
again). But the cache must never be what fills a disk, so it has a cap
(``cache_max_gb``) and a floor of free space on its volume
(``cache_min_free_gb``); past either, finished books' chunks go, least recently
used first. Chunks used since the earliest unfinished job started are kept, so
that a render can always resume from them.

Before a render the room it will take is estimated (its chunks not yet in the
cache, and the audiobook) and the cache gives way for it. What is still short
is a warning, in the log and the job's history, not a refusal: if the disk does
fill, the job pauses (:class:`voxd.errors.StorageFull`) until space returns.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..book import Chunk
from ..cache import ChunkCache, evict, usage
from ..config import Settings
from ..narration.length import pause_seconds
from ..tts.base import speech_seconds
from .store import Store

log = logging.getLogger(__name__)

GB = 1_000_000_000  # the unit of cache_max_gb and cache_min_free_gb, as disks are sold
#: Chunk audio per second of speech, for estimates. 16-bit FLAC of speech measured about
#: 0.082-0.084 GB an hour (bench/cache.py: eSpeak at 22 kHz, a synthetic voice at 24 kHz), 23 KB a
#: second; half as much again leaves room for a voice with more noise in it.
CACHE_BYTES_PER_SECOND = 36_000


def size(n: float) -> str:
    """A byte count as a person reads it: '312 MB', '4.2 GB'."""
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True, slots=True)
class Volume:
    """The filesystem a folder is on (or will be on, once made)."""

    folder: Path
    device: int  # the same number: the same volume
    free: int  # bytes a process without root may still write
    total: int


def volume(folder: Path) -> Volume:
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    st = os.statvfs(existing)
    return Volume(folder=folder, device=os.stat(existing).st_dev, free=st.f_bavail * st.f_frsize,
                  total=st.f_blocks * st.f_frsize)


@dataclass(frozen=True, slots=True)
class Needs:
    """The room a book's render will take, estimated from its text."""

    cache: int  # chunk audio not yet in the cache
    output: int  # the audiobook (written beside its final name, then renamed)


def needs(chunks: Iterable[Chunk], cache: ChunkCache, settings: Settings) -> Needs:
    """The room for ``chunks``: speech length from their text (:func:`speech_seconds`),
    as chunk audio (:data:`CACHE_BYTES_PER_SECOND`) for those not in the cache yet and as
    AAC at ``bitrate`` for the whole book, pauses included."""
    pause = pause_seconds(settings)
    spoken: dict[str, float] = {}
    book_seconds = 0.0
    for c in chunks:
        seconds = speech_seconds(c.text)
        book_seconds += seconds + pause.get(c.pause, 0.0)
        spoken.setdefault(c.key, seconds)
    missing = sum(seconds for key, seconds in spoken.items() if not cache.has(key))
    return Needs(cache=round(missing * CACHE_BYTES_PER_SECOND), output=round(book_seconds * settings.bitrate / 8))


def shortfall(settings: Settings, needed: Needs, what: str) -> str | None:
    """What the volumes lack for ``needed``, in words naming ``what`` needs it, or None when it
    fits. The caller says what follows (a paused job, a stopped render)."""
    cache_volume, outbox_volume = volume(settings.cache_path), volume(settings.outbox_dir)
    if cache_volume.device == outbox_volume.device:
        checks = [(cache_volume, needed.cache + needed.output,
                   f" ({size(needed.cache)} of chunk audio, {size(needed.output)} for the audiobook)")]
    else:
        checks = [(cache_volume, needed.cache, " of chunk audio"), (outbox_volume, needed.output, " for the audiobook")]
    short = [f"about {size(want)}{words} on the volume holding {vol.folder}, which has {size(vol.free)} free"
             for vol, want, words in checks if want > vol.free]
    if not short:
        return None
    return f"{what} needs " + ", and ".join(short)


def on_cache_volume(settings: Settings, needed: Needs) -> int:
    """The part of ``needed`` that lands on the cache's volume."""
    same = volume(settings.cache_path).device == volume(settings.outbox_dir).device
    return needed.cache + (needed.output if same else 0)


def trim_cache(settings: Settings, store: Store, *, need: int = 0) -> tuple[int, int]:
    """Remove finished books' chunks, least recently used first, while the cache is over
    ``cache_max_gb`` or its volume has less than ``cache_min_free_gb`` free (with ``need``
    bytes, about to be written there, already taken). Returns (entries removed, bytes freed).
    """
    cap = round(settings.cache_max_gb * GB) if settings.cache_max_gb > 0 else None
    floor = round(settings.cache_min_free_gb * GB)
    root = settings.cache_path
    if not root.is_dir():
        return 0, 0
    free = volume(root).free
    wanted = max(0, floor + need - free)
    if cap is None and not wanted:
        return 0, 0
    unfinished = [j.started_at for j in store.jobs() if j.status.value in ("queued", "running") and j.started_at]
    removed, freed = evict(root, cap, free_bytes=wanted, protect_newer_than=min(unfinished) if unfinished else None)
    if removed:
        why = [f"under cache_max_gb ({settings.cache_max_gb:g} GB)"] if cap is not None else []
        why += [f"{settings.cache_min_free_gb:g} GB free on its volume"] if wanted else []
        log.info("cache: removed %d least recently used chunks of finished books (%s) to keep it %s",
                 removed, size(freed), " and ".join(why))
    if freed < wanted:
        log.warning("cache: the volume holding %s has %s free, less than cache_min_free_gb (%g GB)%s, and what "
                    "is left in the cache belongs to unfinished books", root, size(free + freed),
                    settings.cache_min_free_gb, f" with {size(need)} to be written" if need else "")
    return removed, freed


def purge_job(settings: Settings, store: Store, job_id: int) -> tuple[int, int]:
    """Remove a cancelled or failed job's chunks from the cache, except those another job
    that is queued, running or done also uses. Returns (entries removed, bytes freed)."""
    cache = ChunkCache(settings.cache_path)
    removed = freed = 0
    for key in store.purgeable_keys(job_id):
        entry = cache.remove(key)
        if entry is not None:
            removed += 1
            freed += entry
    if removed:
        log.info("cache: removed %d chunks (%s) of job %d", removed, size(freed), job_id)
    shutil.rmtree(settings.web_job_path(job_id), ignore_errors=True)  # the page's chapter copies
    return removed, freed


def report(settings: Settings) -> list[tuple[str, str, bool]]:
    """(label, text, ok) lines for ``voxd doctor`` and ``voxd jobs``: the cache's size and
    cap, and the free space of each volume voxd writes to (low: under ``cache_min_free_gb``)."""
    lines = []
    cap = f"cap {settings.cache_max_gb:g} GB" if settings.cache_max_gb > 0 else "no cap"
    held = usage(settings.cache_path) if settings.cache_path.is_dir() else None
    if held is None:
        lines.append(("cache", f"empty, {cap}", True))
    else:
        text = f"{size(held.bytes)} in {held.entries} chunks, {cap}"
        if held.legacy_entries:
            text += (f" ({size(held.legacy_bytes)} of it in {held.legacy_entries} float32 chunks from an earlier "
                     "voxd, rewritten compactly when next used)")
        lines.append(("cache", text, True))
    named: dict[int, tuple[Volume, list[str]]] = {}
    for name, folder in (("state", settings.state_path), ("cache", settings.cache_path),
                         ("outbox", settings.outbox_dir)):
        vol = volume(folder)
        named.setdefault(vol.device, (vol, []))[1].append(name)
    floor = settings.cache_min_free_gb * GB
    for vol, names in named.values():
        low = vol.free < floor
        lines.append(("disk", f"{', '.join(names)}: {size(vol.free)} free of {size(vol.total)} on the volume "
                      f"holding {vol.folder}" + (f" (under cache_min_free_gb, {settings.cache_min_free_gb:g} GB)"
                                                 if low else ""), not low))
    return lines
