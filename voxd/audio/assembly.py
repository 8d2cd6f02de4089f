"""The assembly algorithm: a book's cached chunks, levelled chapter by chapter, into one M4B.

It runs in the assembler process (:mod:`voxd.audio.assembler`) beside the render, or
on its own in benchmarks; it reads audio only from the chunk cache and never
holds more than one chunk in memory. Chapter by chapter: a first pass measures
the chapter's loudness and peak (and where its parts begin, for
``max_chapter_minutes``), the second streams its chunks into the writer with
the gain that levels it.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import numpy as np

from ..book import Book, Chunk, Metadata, Pause
from ..cache import ChunkCache
from ..config import Settings
from ..errors import AssemblyFailed, BookError
from ..faults import crash_point
from .loudness import Leveling, LoudnessMeter, leveling, limit
from .m4b import ChapterMark, M4bWriter, Narrators, part_title, write_sidecars

log = logging.getLogger(__name__)


def assemble(
    book: Book,
    chunks: list[Chunk],
    cache: ChunkCache,
    output: Path,
    settings: Settings,
    *,
    narrator: Narrators,
    checkpoint: Callable[[], None] | None = None,
    ready: Callable[[str], None] | None = None,
    on_chapter: Callable[[int], None] | None = None,
) -> tuple[list[ChapterMark], float]:
    """Stream every chunk, with its pause, into one chaptered M4B; written aside, renamed in.

    Chapter by chapter: a first pass over the chapter's cached chunks measures its
    loudness and peak (and where its parts begin, for ``max_chapter_minutes``),
    the second streams them into the writer with the gain that levels the
    chapter. Neither pass holds more than one chunk. With ``write_sidecars`` the
    cover and ``metadata.json`` go beside the finished file.

    ``ready(key)``, when given, waits until that chunk is in the cache (the render
    may still be running): it is asked before each chunk is read, so a chapter is
    measured as its chunks arrive. ``on_chapter(chapter)`` is told when a chapter
    is in the writer.
    """
    wait = ready or (lambda key: None)
    by_chapter: dict[int, list[Chunk]] = defaultdict(list)
    for c in chunks:
        by_chapter[c.chapter].append(c)
    wait(chunks[0].key)
    first = cache.get(chunks[0].key)
    if first is None:
        raise AssemblyFailed("rendered audio vanished from the cache before assembly; trying again renders it anew")
    rate = first[1]
    del first
    pauses = {p: np.zeros(int(settings.pause_seconds(p) * rate), np.float32) for p in Pause}
    target = settings.loudness_lufs if settings.normalize_loudness else None
    part_samples = round(settings.max_chapter_minutes * 60 * rate)
    writer = M4bWriter(
        output,
        sample_rate=rate,
        metadata=book.metadata,
        narrator=narrator,
        cover=book.cover,
        bitrate=settings.bitrate,
    )
    with writer:
        for index in sorted(by_chapter):
            if checkpoint:  # a stop or cancel between chapters abandons the temp file, not the cache
                checkpoint()
            items = sorted(by_chapter[index], key=lambda c: c.index)
            title = book.chapters[index].title
            plan = _plan_chapter(
                items, cache, rate, pauses, wait,
                target_lufs=target, peak_dbfs=settings.peak_dbfs, part_samples=part_samples,
            )
            if plan.leveling is not None:
                lev = plan.leveling
                log.debug(
                    "chapter %d (%s): %.1f LUFS, peak %.1f dBFS: gain %+.1f dB, peaks limited by up to %.1f dB%s",
                    index + 1, title, lev.loudness, lev.peak_db, lev.gain_db, lev.limiting_db,
                    " (held back by the peak ceiling)" if lev.peak_limited else "",
                )
            gain = np.float32(plan.gain)
            limiting = plan.leveling is not None and plan.leveling.limiting_db > 0
            writer.start_chapter(title)
            for position, c in enumerate(items):
                part = plan.parts.get(position)
                if part is not None:
                    writer.start_chapter(part_title(title, part, index + 1))
                wait(c.key)  # already there, unless the chapter needed no first pass
                samples = _chunk_audio(cache, c, rate)
                if gain != 1.0:
                    samples = samples * gain
                if limiting:
                    samples = limit(samples, settings.peak_dbfs, rate)
                writer.write(samples)
                writer.write(pauses[c.pause])
                crash_point("assemble.chunk")
            if on_chapter:
                on_chapter(index)
        marks = writer.close()
    crash_point("assemble.closed")
    if settings.write_sidecars:
        try:
            write_sidecars(output.parent, book.metadata, narrator=narrator, cover=book.cover, chapters=marks)
        except OSError as exc:  # the audiobook itself is in place; the sidecars are extras
            log.warning("could not write the cover and metadata.json beside %s: %s", output, exc)
    return marks, writer.duration


@dataclass(frozen=True, slots=True)
class _ChapterPlan:
    gain: float = 1.0
    leveling: Leveling | None = None
    parts: dict[int, int] = field(default_factory=dict)  # chunk position -> part number (2, 3...)


def _plan_chapter(
    items: list[Chunk],
    cache: ChunkCache,
    rate: int,
    pauses: dict[Pause, np.ndarray],
    wait: Callable[[str], None],
    *,
    target_lufs: float | None,
    peak_dbfs: float,
    part_samples: int,
) -> _ChapterPlan:
    """The first pass over one chapter, each chunk as soon as ``wait`` lets it be read:
    the chapter's gain and where its parts start."""
    if target_lufs is None and part_samples <= 0:
        return _ChapterPlan()
    meter = LoudnessMeter(rate) if target_lufs is not None else None
    lengths: list[int] = []
    for c in items:
        wait(c.key)
        samples = _chunk_audio(cache, c, rate)
        pause = pauses[c.pause]
        lengths.append(samples.size + pause.size)
        if meter is not None:
            meter.add(samples)
            meter.add(pause)
        del samples
    parts = _part_starts(lengths, part_samples)
    if meter is None or target_lufs is None:
        return _ChapterPlan(parts=parts)
    lev = leveling(meter.integrated(), meter.true_peak, target_lufs=target_lufs, peak_dbfs=peak_dbfs)
    return _ChapterPlan(gain=lev.gain, leveling=lev, parts=parts)


def _part_starts(lengths: list[int], limit: int) -> dict[int, int]:
    """Where a chapter of chunks this long (samples, pause included) is cut into parts.

    A chapter longer than ``limit`` becomes ``ceil(total / limit)`` parts of about
    equal length, each starting at the chunk boundary nearest its ideal start.
    Returns {chunk position: part number} for parts 2, 3...
    """
    total = sum(lengths)
    if limit <= 0 or total <= limit or len(lengths) < 2:
        return {}
    count = -(-total // limit)
    starts = list(accumulate(lengths[:-1]))  # start of chunk 1, 2, ...
    parts: dict[int, int] = {}
    low = 0  # only boundaries after the last one chosen
    for k in range(1, count):
        ideal = k * total / count
        at = bisect_left(starts, ideal, lo=low)
        candidates = [i for i in (at - 1, at) if low <= i < len(starts)]
        if not candidates:
            break
        best = min(candidates, key=lambda i: abs(starts[i] - ideal))
        parts[best + 1] = len(parts) + 2
        low = best + 1
    return parts


def _chunk_audio(cache: ChunkCache, c: Chunk, rate: int) -> np.ndarray:
    hit = cache.get(c.key)
    if hit is None:
        raise AssemblyFailed(f"audio for chunk {c.index} of chapter {c.chapter + 1} is missing from the cache "
                             "(removed during assembly?); trying again renders it anew")
    samples, chunk_rate = hit
    if chunk_rate != rate:
        raise BookError(f"chunk audio at {chunk_rate} Hz in a book at {rate} Hz")
    return samples


def chapter_file(
    items: list[Chunk], cache: ChunkCache, output: Path, settings: Settings, *, metadata: Metadata, title: str,
) -> float:
    """One chapter on its own, levelled as :func:`assemble` levels it, as an AAC file at ``output``
    (written aside, renamed in): what the web page plays before the whole book is done.
    Returns its length in seconds. A chunk missing from the cache raises
    :class:`~voxd.errors.AssemblyFailed`."""
    first = cache.get(items[0].key)
    if first is None:
        raise AssemblyFailed(f"chunk {items[0].index} of chapter {items[0].chapter + 1} is not in the cache")
    rate = first[1]
    del first
    pauses = {p: np.zeros(int(settings.pause_seconds(p) * rate), np.float32) for p in Pause}
    target = settings.loudness_lufs if settings.normalize_loudness else None
    plan = _plan_chapter(items, cache, rate, pauses, lambda key: None, target_lufs=target,
                         peak_dbfs=settings.peak_dbfs, part_samples=0)
    limiting = plan.leveling is not None and plan.leveling.limiting_db > 0
    with M4bWriter(output, sample_rate=rate, metadata=metadata, bitrate=settings.bitrate) as writer:
        writer.start_chapter(title)
        for c in items:
            samples = _chunk_audio(cache, c, rate) * np.float32(plan.gain)
            writer.write(limit(samples, settings.peak_dbfs, rate) if limiting else samples)
            writer.write(pauses[c.pause])
        writer.close()
    return writer.duration
