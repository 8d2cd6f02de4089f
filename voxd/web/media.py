"""What the page plays: a chapter of a book (while the rest of it renders) and one chunk.

A chapter is built from the chunk cache the way the assembler builds it (levelled, with
its pauses) into an AAC file under ``state_dir/web/``, named by what it is made of, so a
chapter spoken again is built anew and one asked for twice is built once. A finished
book whose chunks have left the cache is read from its ``.m4b`` instead (the chapter's
packets copied, nothing re-encoded).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..book import Chunk, Metadata, Pause
from ..cache import ChunkCache
from ..config import Settings
from ..files import atomic_path
from ..service.records import Job, PlannedChapter
from ..service.store import Store

_locks: dict[Path, threading.Lock] = {}
_building = threading.Lock()
_locks_lock = threading.Lock()


class NotPlayable(Exception):
    """A chapter or chunk the page cannot play (yet); ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def ready(chapter: PlannedChapter, cache: ChunkCache) -> int:
    """How many of the chapter's chunks are in the cache."""
    return sum(1 for key, _ in chapter.chunks if cache.has(key))


def chapter_audio(settings: Settings, store: Store, job: Job, number: int) -> Path:
    """Chapter ``number`` (1-based) of the job's book as an AAC file on disk, built if need be."""
    chapters = store.chapters(job.id)
    if not chapters:
        raise NotPlayable(409, f"job {job.id}'s book has not been read yet")
    if not 1 <= number <= len(chapters):
        raise NotPlayable(404, f"job {job.id}'s book has {len(chapters)} chapters, not {number}")
    chapter = chapters[number - 1]
    if not chapter.chunks:
        raise NotPlayable(404, f"chapter {number} has nothing to hear")
    cache = ChunkCache(settings.cache_path)
    have = ready(chapter, cache)
    if have < len(chapter.chunks):
        if job.status.value == "done" and job.output and Path(job.output).is_file():
            return _from_book(settings, job, chapters, number)
        raise NotPlayable(409, f"chapter {number} is not rendered yet: {have} of {len(chapter.chunks)} chunks")
    recipe = json.dumps([chapter.chunks, settings.bitrate, settings.normalize_loudness, settings.loudness_lufs,
                         settings.peak_dbfs, [settings.pause_seconds(p) for p in Pause]])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    path = settings.web_job_path(job.id) / f"chapter-{number}-{digest}.m4a"

    def build() -> None:
        from ..audio.assembly import chapter_file

        items = [Chunk(chapter=chapter.index, index=n, text="", pause=Pause(pause), voice="", key=key)
                 for n, (key, pause) in enumerate(chapter.chunks)]
        metadata = Metadata(title=f"{job.title or job.name}: {chapter.title}",
                            authors=(job.author,) if job.author else ())
        with _building:  # one at a time: encoding beside a render slows it (DESIGN: the assembler's process)
            chapter_file(items, cache, path, settings, metadata=metadata, title=chapter.title)
        for stale in path.parent.glob(f"chapter-{number}-*.m4a"):
            if stale != path:
                stale.unlink(missing_ok=True)

    return _built(path, build)


def _built(path: Path, build: Callable[[], None]) -> Path:
    """``path``, built by ``build`` (which writes it aside and renames it in) unless it is there;
    one request builds it while any others for the same file wait."""
    with _lock_for(path):
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            build()
    return path


def _span(marks: list[Any], chapters: list[PlannedChapter], number: int) -> tuple[float, float] | None:
    """Where chapter ``number`` lies in a book's chapter marks, as the assembler wrote them: one
    mark per chapter that has chunks, and after it one per extra part of a long chapter
    (``max_chapter_minutes``); None where the marks do not match the plan."""
    from ..audio.m4b import part_title

    at = 0
    for chapter in chapters:
        if not chapter.chunks:
            continue
        if at >= len(marks):
            return None
        first = at
        at += 1
        part = 2
        while at < len(marks) and marks[at]["metadata"].get("title") == part_title(chapter.title, part,
                                                                                    chapter.index + 1):
            at, part = at + 1, part + 1
        if chapter.index == number - 1:
            unit = marks[first]["time_base"] or 1
            return float(marks[first]["start"] * unit), float(marks[at - 1]["end"] * unit)
    return None


def _from_book(settings: Settings, job: Job, chapters: list[PlannedChapter], number: int) -> Path:
    """Chapter ``number`` copied out of the finished ``.m4b`` (its chunks have left the cache)."""
    source = Path(job.output or "")
    stat = source.stat()
    path = settings.web_job_path(job.id) / f"book-{number}-{stat.st_size}-{int(stat.st_mtime)}.m4a"

    def build() -> None:
        import av

        with av.open(str(source)) as book:
            span = _span(book.chapters(), chapters, number)
            if span is None:
                raise NotPlayable(409, f"{source.name}'s chapter marks do not match the book as it was read; "
                                  "render it again to hear one chapter")
            start, end = span
            stream = book.streams.audio[0]
            base = stream.time_base
            if base is None:
                raise NotPlayable(409, f"{source.name} has no time base to cut chapters by")
            with atomic_path(path) as tmp, av.open(str(tmp), "w", format="ipod") as out:
                copy = out.add_stream_from_template(stream)
                for packet in book.demux(stream):
                    if packet.dts is None or packet.pts is None:
                        continue
                    at = float(packet.pts * base)
                    if at < start:
                        continue
                    if at >= end:
                        break
                    packet.pts -= round(start / base)
                    packet.dts -= round(start / base)
                    packet.stream = copy
                    out.mux(packet)

    return _built(path, build)


def chunk_audio(settings: Settings, store: Store, job: Job, position: int) -> bytes:
    """Chunk ``position`` (as ``voxd report`` numbers them) as a WAV file's bytes."""
    import soundfile as sf

    key = store.chunk_keys(job.id, [position]).get(position) if 0 < position < 2**63 else None
    if key is None:
        raise NotPlayable(404, f"job {job.id} has no chunk {position}")
    hit = ChunkCache(settings.cache_path).get(key)
    if hit is None:
        raise NotPlayable(409, f"chunk {position} of job {job.id} is not in the cache (not rendered yet, or removed)")
    samples, rate = hit
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(path, threading.Lock())
