"""The render loop: find what the cache lacks, speak it in batches, store each result.

Items of a batch run in lockstep on a GPU until the longest one finishes, so
chunks are grouped by what the engine must load for them (voice, style,
language), sorted by length, and cut into batches of similar lengths. A batch
is the unit of loss: a crash loses at most the batch in flight, because every
finished chunk is in the cache before the next batch starts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Callable, Iterable, Sequence

from .book import Chunk
from .cache import ChunkCache, content_key
from .errors import EngineError
from .faults import crash_point
from .tts.base import Engine, Utterance

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Progress:
    chunks_total: int
    chunks_done: int = 0
    chunks_cached: int = 0  # found in the cache, not rendered by this run
    audio_seconds: float = 0.0  # of all chunks done
    rendered_audio_seconds: float = 0.0  # of chunks rendered by this run
    render_seconds: float = 0.0  # wall time spent in the engine by this run
    batches: int = 0

    @property
    def speed(self) -> float | None:
        if self.render_seconds > 0:
            return self.rendered_audio_seconds / self.render_seconds
        return None


def with_keys(chunks: Iterable[Chunk], model_id: str) -> list[Chunk]:
    """Give every chunk its content key: same text, voice and model, same audio."""
    return [
        replace(
            c,
            key=content_key(text=c.text, voice=c.voice, style=c.style, language=c.language, model=model_id),
        )
        for c in chunks
    ]


def plan_batches(chunks: Sequence[Chunk], batch_size: int) -> list[list[Chunk]]:
    """Group by (voice, style, language), longest first, cut into batches of close lengths."""
    def group_key(c: Chunk) -> tuple[str, str, str]:
        return (c.voice, c.style or "", c.language or "")

    batches: list[list[Chunk]] = []
    for _, group in groupby(sorted(chunks, key=group_key), key=group_key):
        ordered = sorted(group, key=lambda c: (-len(c.text), c.key))
        batches.extend(ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size))
    return batches


def render(
    chunks: Sequence[Chunk],
    engine: Engine,
    cache: ChunkCache,
    *,
    batch_size: int,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> Progress:
    """Make sure every chunk's audio is in the cache.

    ``checkpoint`` runs before each batch and may raise (Stopping, a cancel) to end
    the render between batches; ``on_progress`` runs after each batch.
    """
    unique: dict[str, Chunk] = {}
    for c in chunks:
        if not c.key:
            raise ValueError("chunks need keys: call with_keys() first")
        unique.setdefault(c.key, c)
    progress = Progress(chunks_total=len(unique))
    missing: list[Chunk] = []
    for key, c in unique.items():
        hit = cache.get(key)
        if hit is None:
            missing.append(c)
        else:
            samples, rate = hit
            progress.chunks_done += 1
            progress.chunks_cached += 1
            progress.audio_seconds += len(samples) / rate
    if on_progress:
        on_progress(progress)

    for batch in plan_batches(missing, batch_size):
        if checkpoint:
            checkpoint()
        started = time.monotonic()
        result = engine.synthesize(
            [Utterance(text=c.text, voice=c.voice, language=c.language, style=c.style) for c in batch]
        )
        if len(result.waveforms) != len(batch):
            raise EngineError(f"engine returned {len(result.waveforms)} waveforms for {len(batch)} texts")
        elapsed = time.monotonic() - started
        batch_audio = 0.0
        for c, wave in zip(batch, result.waveforms):
            cache.put(c.key, wave, result.sample_rate)
            batch_audio += len(wave) / result.sample_rate
        crash_point("render.batch")
        progress.batches += 1
        progress.chunks_done += len(batch)
        progress.audio_seconds += batch_audio
        progress.rendered_audio_seconds += batch_audio
        progress.render_seconds += elapsed
        log.debug(
            "Batch (%d chunks) done in %.2fs (%.2fs/chunk, %.1fx real time)",
            len(batch), elapsed, elapsed / len(batch), batch_audio / elapsed if elapsed else float("inf"),
        )
        if on_progress:
            on_progress(progress)
    return progress
