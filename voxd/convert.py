"""One book, start to finish: ingest, plan, render, assemble.

Both ``voxd render`` and the daemon's worker call :func:`convert`; the worker adds
the queue, the inbox moves and notifications around it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .book import Book, Chunk, Metadata, Pause
from .cache import ChunkCache
from .config import Settings
from .errors import BookError
from .ingest import read_book
from .m4b import ChapterMark, M4bWriter
from .render import Progress, render, with_keys
from .text import plan_chunks
from .tts.base import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    book: Book
    output: Path
    duration: float
    chapters: list[ChapterMark]
    progress: Progress


def safe_name(text: str, fallback: str, limit: int = 120) -> str:
    """A file or folder name every filesystem and player accepts, still readable."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r'[\x00-\x1f/\\:*?"<>|]+', " ", text)
    text = re.sub(r"\s+", " ", text).strip().strip(".")
    return text[:limit].rstrip() or fallback


def outbox_path(outbox: Path, metadata: Metadata) -> Path:
    """outbox/<Author>/<Title>/<Title>.m4b, the layout Audiobookshelf expects."""
    author = safe_name(metadata.author, "Unknown Author")
    title = safe_name(metadata.title, "Untitled")
    return outbox / author / title / f"{title}.m4b"


def convert(
    source: Path,
    destination: Callable[[Book], Path],
    settings: Settings,
    engine: Engine,
    *,
    on_book: Callable[[Book, list[Chunk]], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> Outcome:
    book = read_book(source)
    voice = settings.voice or "default"
    chunks = plan_chunks(
        book,
        voice=voice,
        language=settings.language or book.metadata.language,
        target_chars=settings.chunk_target_chars,
        max_chars=settings.chunk_max_chars,
        speak_titles=settings.speak_chapter_titles,
    )
    if not chunks:
        raise BookError(f"{source.name}: nothing to read aloud")
    chunks = with_keys(chunks, engine.model_id)
    if on_book:
        on_book(book, chunks)
    cache = ChunkCache(settings.cache_path)
    progress = render(
        chunks,
        engine,
        cache,
        batch_size=_batch_size(settings),
        on_progress=on_progress,
        checkpoint=checkpoint,
    )
    if checkpoint:
        checkpoint()
    output = destination(book)
    output.parent.mkdir(parents=True, exist_ok=True)
    marks, duration = assemble(book, chunks, cache, output, settings, narrator=engine.narrator(voice))
    return Outcome(book=book, output=output, duration=duration, chapters=marks, progress=progress)


def _batch_size(settings: Settings) -> int:
    if settings.engine == "espeak":
        return settings.espeak.batch_size
    return settings.qwen.batch_size or 8


def assemble(
    book: Book,
    chunks: list[Chunk],
    cache: ChunkCache,
    output: Path,
    settings: Settings,
    *,
    narrator: str | None,
) -> tuple[list[ChapterMark], float]:
    """Stream every chunk, with its pause, into one chaptered M4B; written aside, renamed in."""
    by_chapter: dict[int, list[Chunk]] = defaultdict(list)
    for c in chunks:
        by_chapter[c.chapter].append(c)
    first = cache.get(chunks[0].key)
    if first is None:
        raise BookError("rendered audio vanished from the cache before assembly")
    rate = first[1]
    pauses = {
        Pause.SENTENCE: np.zeros(int(settings.pause_sentence * rate), np.float32),
        Pause.PARAGRAPH: np.zeros(int(settings.pause_paragraph * rate), np.float32),
        Pause.CHAPTER: np.zeros(int(settings.pause_chapter * rate), np.float32),
    }
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
            writer.start_chapter(book.chapters[index].title)
            for c in sorted(by_chapter[index], key=lambda c: c.index):
                hit = cache.get(c.key)
                if hit is None:
                    raise BookError(f"audio for chunk {c.index} of chapter {index + 1} is missing from the cache")
                samples, chunk_rate = hit
                if chunk_rate != rate:
                    raise BookError(f"chunk audio at {chunk_rate} Hz in a book at {rate} Hz")
                writer.write(samples)
                writer.write(pauses[c.pause])
        marks = writer.close()
    return marks, writer.duration
