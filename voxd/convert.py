"""One book, start to finish: ingest, plan, render, assemble.

Both ``voxd render`` and the daemon's worker call :func:`convert`; the worker adds
the queue, the inbox moves and notifications around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .audio.assembler import Assembler
from .audio.m4b import ChapterMark
from .book import Book, Chunk
from .cache import ChunkCache
from .config import Settings
from .errors import BookError
from .faults import crash_point
from .narration import length
from .narration.plan import check_languages, read_speech
from .render import Check, Progress, render, with_keys
from .tts.base import Engine
from .tts.gpu import BatchMemory, batch_size_for
from .tts.hub import FetchProgress
from .verify.listener import Listener

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    book: Book
    output: Path
    duration: float
    chapters: list[ChapterMark]
    progress: Progress


def narrators(engine: Engine, chunks: Sequence[Chunk]) -> list[str]:
    """The voices that speak the book, as the tags credit them, in the order they first speak:
    "default" is a different voice per language with eSpeak, Piper or a ``voxd serve``."""
    pairs = dict.fromkeys((c.voice, c.language) for c in chunks)
    return list(dict.fromkeys(engine.narrator(voice, language) for voice, language in pairs))


def convert(
    source: Path,
    destination: Callable[[Book], Path],
    settings: Settings,
    engine: Engine,
    *,
    on_book: Callable[[Book, list[Chunk]], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
    memory: BatchMemory | None = None,
    on_fetch: Callable[[FetchProgress], None] | None = None,
    on_assembly: Callable[[int, int], None] | None = None,
    listener: Listener | None = None,
) -> Outcome:
    """Read ``source``, speak it with ``engine`` and write the audiobook to ``destination(book)``.

    ``on_book`` hears the book and its chunks once it is read (and may refuse it by
    raising); ``checkpoint`` may raise to stop (a stop, a cancel): it is asked while the
    book is read, between batches, and every fraction of a second while it is assembled;
    ``memory`` keeps a batch size an out-of-memory taught, for the next book;
    ``on_fetch`` hears the progress of fetching a model the render needs (first use),
    which happens before the render, as a phase of its own, and may raise to stop it.
    ``on_assembly(done, total)`` hears the chapters in the .m4b once every chunk is
    rendered: the assembler may still be encoding long chapters then. ``listener`` reads
    every take back (:mod:`voxd.verify`): a take heard wrong is spoken again up to
    ``[verify] retakes`` times.

    A book whose text would play longer than ``max_book_hours`` is refused
    (:class:`~voxd.errors.TooLong`) before ``on_book`` hears of it.
    """
    book, speech = read_speech(source, settings, checkpoint=checkpoint)  # chunked under the reader's limits
    crash_point("ingest")
    voice = settings.voice or "default"
    chunks = speech.chunks
    if speech.dropped:
        chars = sum(len(d.text) for d in speech.dropped)
        log.warning(
            "%s: left out %d pieces (%d characters) that are not language, e.g. %r; `voxd plan` lists them",
            source.name, len(speech.dropped), chars, speech.dropped[0].text[:60],
        )
    if not speech.body:
        why = " but titles: the rest is not language" if speech.dropped else ""
        raise BookError(f"{source.name}: nothing to read aloud{why}")
    check_languages(chunks, settings.engine, source.name, settings)  # an unspoken language fails now, not hours in
    length.check(source.name, length.expected_seconds(chunks, settings), settings)
    cache = ChunkCache(settings.cache_path)
    planned = chunks
    chunks = with_keys(planned, engine.model_id, engine.voice_identity)
    to_render = sorted({c.voice for c in chunks if not cache.has(c.key) or cache.flagged(c.key)})
    if to_render:
        # The device is checked and the models fetched first, as a phase with its own progress:
        # a first download takes minutes. Then the voices, which may need the model's own
        # list (a wrong one fails now, not hours in); loading may settle the engine's default
        # voice, so the keys are made again.
        engine.prepare(to_render, on_fetch)
        engine.check_voices(to_render)
        chunks = with_keys(planned, engine.model_id, engine.voice_identity)
    if on_book:
        on_book(book, chunks)
    batches = batch_size_for(settings, memory, model=engine.model_for(voice) or None)
    batch_size = batches.size
    output = destination(book)
    made = _missing_parents(output)
    assembler: Assembler | None = None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        assembler = Assembler(book, chunks, cache.root, output, settings, narrator=narrators(engine, chunks))
        progress = render(
            chunks,
            engine,
            cache,
            batch_size=batch_size,
            on_progress=on_progress,
            checkpoint=assembler.guard(checkpoint),
            on_resize=batches.remember,
            max_batch_size=batches.ceiling,
            check=Check(durations=settings.qwen.check_durations if settings.engine == "qwen" else True,
                        retries=settings.verify.retakes if listener is not None else 1, listener=listener),
            window=render_window(batch_size),
            on_ready=assembler.ready,
        )
        if checkpoint:
            checkpoint()
        marks, duration = assembler.finish(checkpoint, on_assembly)
    except BaseException:
        if assembler is not None:
            assembler.abandon()
        for folder in made:  # leave no empty outbox folders behind a stopped or failed book
            try:
                folder.rmdir()
            except FileNotFoundError:  # never made: the failure came first
                continue
            except OSError:  # not empty: something else lives there now
                break
        raise
    return Outcome(book=book, output=output, duration=duration, chapters=marks, progress=progress)


def render_window(batch_size: int) -> int:
    """Chunks rendered (in book order) before the next ones: a few batches' worth, so
    batches still find texts of close lengths, yet chapters complete early."""
    return max(batch_size * 4, 64)


def _missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, deepest first."""
    missing = []
    for folder in path.parents:
        if folder.exists():
            break
        missing.append(folder)
    return missing
