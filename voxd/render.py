"""The render loop: find what the cache lacks, speak it in batches, store each result.

Items of a batch run in lockstep on a GPU until the longest one finishes, so
chunks are grouped by what the engine must load for them (voice, style,
language), sorted by length, and cut into batches of similar lengths: for an
engine that runs in lockstep a batch also ends early where its longest text
would be more than ``max_length_ratio`` times its shortest. What lockstep still
costs is measured: the padding, in seconds of audio, of every item that waited
for the batch's longest.

An engine that is a client of speech servers (``engine.concurrent``) is not
handed batches: the servers batch for themselves, continuously. The loop keeps
``engine.window()`` single-chunk requests in flight instead, in book order, and
stores each chunk the moment it comes back, so no request waits for a slower
one and the assembler gets chapters as early as possible.

A batch (or the requests in flight) is the unit of loss: a crash loses at most
that, because every finished chunk is in the cache before the next one starts.

A batch that does not fit in GPU memory (:class:`OutOfMemory`) is retried, the
same chunks, half as many at a time, down to one; the smaller size then holds
until :data:`GROW_AFTER` batches in a row have worked, when the render tries a
quarter more, up to ``max_batch_size`` (what the card should hold: another
program may have held memory for a while). ``on_resize`` hears each new size once
a batch of it has worked, so the caller can remember it for the next book.

A chunk whose audio looks wrong is spoken again, with another seed, together
with the batch's other suspect chunks: one
that ran into the engine's length cap (a runaway), one the engine itself found
fault with (a server's reply cut short), or, with a
:class:`Check` that looks at durations, one far longer or shorter than its text
predicts. If no take is right the closest one is kept (never a gap in the
book) and the chunk is listed in :attr:`Progress.flagged` for a person to hear.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import groupby

from .book import Chunk
from .cache import ChunkCache, content_key
from .errors import EngineError, OutOfMemory
from .faults import crash_point
from .takes import Check, Flag, Take, first_judgements, settle, speak, speak_later
from .tts import gpu
from .tts.base import Engine, Synthesis

log = logging.getLogger(__name__)

#: Batches in a row that must work at a size smaller than the card should hold before
#: the render tries a larger one (an out-of-memory costs one batch's start, no more).
GROW_AFTER = 16

#: For lockstep engines: a batch's longest text at most this many times its shortest.
MAX_LENGTH_RATIO = 2.0
#: A batch that takes longer than this is logged at INFO (else DEBUG).
_SLOW_BATCH_SECONDS = 2.0
#: After a stop or an error, how long requests already in flight may still finish and be kept.
DRAIN_SECONDS = 5.0
#: A concurrent render reports progress at most this often, and asks its checkpoint at least this often.
_REPORT_SECONDS = 0.5


#: The checks a render makes unless told otherwise: durations, one retake.
DEFAULT_CHECK = Check()


@dataclass(slots=True)
class Progress:
    chunks_total: int
    chunks_done: int = 0
    chunks_cached: int = 0  # found in the cache, not rendered by this run
    audio_seconds: float = 0.0  # of all chunks done
    rendered_audio_seconds: float = 0.0  # of chunks rendered by this run
    render_seconds: float = 0.0  # wall time spent in the engine by this run
    batches: int = 0
    batch_size: int = 0  # chunks per batch now (smaller than asked after an out-of-memory)
    out_of_memory: int = 0  # batches that did not fit and were split
    seconds_spoken: float = 0.0  # audio the lockstep batches produced
    seconds_padded: float = 0.0  # audio they ran for: the longest item's length x items
    retried: int = 0  # chunks spoken again because their audio looked wrong
    flagged: list[str] = field(default_factory=list)  # chunks kept although still suspect, in words
    flags: list[Flag] = field(default_factory=list)  # the same chunks, for a report
    checked: int = 0  # takes kept that the read-back heard right
    unchecked: int = 0  # takes kept that it could not check (a language its model does not know...)
    unchecked_why: str = ""  # why, the first time
    #: (chunk key, 'passed' | 'unchecked' | 'flagged') for each take kept with the read-back on, in
    #: the order kept: the store counts a chunk once however often runs speak it
    heard: list[tuple[str, str]] = field(default_factory=list)

    @property
    def speed(self) -> float | None:
        if self.render_seconds > 0:
            return self.rendered_audio_seconds / self.render_seconds
        return None

    @property
    def padding_waste(self) -> float | None:
        """Share of the time run in lockstep that was padding (0 = none), once measured."""
        if self.seconds_padded > 0:
            return 1.0 - self.seconds_spoken / self.seconds_padded
        return None


def with_keys(
    chunks: Iterable[Chunk], model_id: str, voice_identity: Callable[[str], str] | None = None
) -> list[Chunk]:
    """Give every chunk its content key: same text, voice and model, same audio.

    ``voice_identity`` adds what else defines a voice (a cloned voice's recording), so
    a voice replaced under the same name never reuses the old voice's audio.
    """
    identities: dict[str, str] = {}

    def identity(voice: str) -> str:
        if voice_identity is None:
            return ""
        if voice not in identities:
            identities[voice] = voice_identity(voice)
        return identities[voice]

    keyed = []
    for c in chunks:
        parts = dict(text=c.text, voice=c.voice, style=c.style, language=c.language, model=model_id)
        if extra := identity(c.voice):
            parts["voice_identity"] = extra
        keyed.append(replace(c, key=content_key(**parts)))
    return keyed


def _groups(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped by (voice, style, language), each group longest first."""
    def group_key(c: Chunk) -> tuple[str, str, str]:
        return (c.voice, c.style or "", c.language or "")

    return [
        sorted(group, key=lambda c: (-len(c.text), c.key))
        for _, group in groupby(sorted(chunks, key=group_key), key=group_key)
    ]


def take_batch(pending: deque[Chunk], size: int, max_ratio: float | None) -> list[Chunk]:
    """The next batch from a group sorted longest first: up to ``size`` chunks, and
    with ``max_ratio`` none shorter than the first one's length / ``max_ratio``."""
    batch = [pending.popleft()]
    longest = max(len(batch[0].text), 1)
    while pending and len(batch) < size:
        if max_ratio is not None and longest > max_ratio * max(len(pending[0].text), 1):
            break
        batch.append(pending.popleft())
    return batch


def plan_batches(chunks: Sequence[Chunk], batch_size: int, max_ratio: float | None = None) -> list[list[Chunk]]:
    """Group by (voice, style, language), longest first, cut into batches of close lengths:
    at most ``batch_size`` each and, with ``max_ratio``, a longest text at most that many
    times the shortest."""
    batches: list[list[Chunk]] = []
    for group in _groups(chunks):
        pending = deque(group)
        while pending:
            batch = take_batch(pending, batch_size, max_ratio)
            batches.append(batch)
    return batches


def padding(lengths: Sequence[float]) -> tuple[float, float]:
    """(audio spoken, audio run) of one lockstep batch whose items last ``lengths`` (any unit)."""
    if not lengths:
        return 0.0, 0.0
    return float(sum(lengths)), float(max(lengths) * len(lengths))


def count_chunks(chunks: Sequence[Chunk]) -> str:
    """"2072 chunks (2029 to speak: 43 repeat a text said before and are spoken once)": the log's
    count of a book's chunks beside the progress's, which counts each text (each key) once."""
    unique = len({c.key for c in chunks})
    if unique == len(chunks):
        return f"{len(chunks)} chunks"
    repeated = len(chunks) - unique
    verb = "repeats a text said before and is" if repeated == 1 else "repeat a text said before and are"
    return f"{len(chunks)} chunks ({unique} to speak: {repeated} {verb} spoken once)"


def render(
    chunks: Sequence[Chunk],
    engine: Engine,
    cache: ChunkCache,
    *,
    batch_size: int,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
    on_resize: Callable[[int], None] | None = None,
    max_batch_size: int | None = None,
    check: Check | None = DEFAULT_CHECK,
    max_length_ratio: float = MAX_LENGTH_RATIO,
    window: int | None = None,
    on_ready: Callable[[list[str]], None] | None = None,
) -> Progress:
    """Make sure every chunk's audio is in the cache.

    ``checkpoint`` runs before each batch and may raise (Stopping, a cancel) to end
    the render between batches; ``on_progress`` runs after each batch. After a
    batch ran out of GPU memory, ``on_resize(size)`` is called with the smaller batch
    size once a batch of that size has worked, and again with a larger one once the
    render has grown back towards ``max_batch_size`` (default: ``batch_size``) and a
    batch of it has worked. ``check`` says which chunks are
    spoken again (None: none). ``max_length_ratio`` applies to engines that run
    batches in lockstep (``engine.lockstep``).

    With ``window``, the chunks to render are taken in book order, ``window`` at a
    time, and batched (grouped, sorted by length) within each window only: the
    book's beginning is complete early, so assembly can start while the rest is
    rendered. ``on_ready(keys)`` is told which chunks' audio is in the cache: the
    cached ones first, then each batch's.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    unique: dict[str, Chunk] = {}
    for c in chunks:
        if not c.key:
            raise ValueError("chunks need keys: call with_keys() first")
        unique.setdefault(c.key, c)
    progress = Progress(chunks_total=len(unique), batch_size=batch_size)
    missing: list[Chunk] = []
    for key, c in unique.items():
        seconds = cache.seconds(key)  # checked, not decoded: the assembler decodes what it needs
        if seconds is None or cache.flagged(key):  # a take no check passed is spoken again
            missing.append(c)
        else:
            progress.chunks_done += 1
            progress.chunks_cached += 1
            progress.audio_seconds += seconds
    if on_ready:
        missing_keys = {c.key for c in missing}
        on_ready([key for key in unique if key not in missing_keys])
    if on_progress:
        on_progress(progress)

    if engine.concurrent:
        _render_requests(missing, engine, cache, progress, check=check, checkpoint=checkpoint,
                         on_progress=on_progress, on_ready=on_ready)
    else:
        _render_batches(missing, engine, cache, progress, batch_size=batch_size, check=check,
                        checkpoint=checkpoint, on_progress=on_progress, on_resize=on_resize, on_ready=on_ready,
                        max_batch_size=max(batch_size, max_batch_size or batch_size),
                        max_ratio=max_length_ratio if engine.lockstep else None, window=window)
    gpu.release_cached_memory()  # once per book, not per batch: the allocator's cache is fast
    return progress


def _render_batches(
    missing: list[Chunk],
    engine: Engine,
    cache: ChunkCache,
    progress: Progress,
    *,
    batch_size: int,
    check: Check | None,
    checkpoint: Callable[[], None] | None,
    on_progress: Callable[[Progress], None] | None,
    on_resize: Callable[[int], None] | None,
    max_batch_size: int,
    on_ready: Callable[[list[str]], None] | None,
    max_ratio: float | None,
    window: int | None,
) -> None:
    """One batch at a time, each grouped and sorted within its window of the book.

    With the read-back on, a batch's first takes are heard in a thread of their own while the
    engine speaks the next batch (CTranslate2 and the engines let go of the GIL while they run);
    its retakes, its cache entries and its progress follow once the next batch is spoken. A stop
    then loses the batch being heard as well as the one in flight: both are spoken again."""
    size = batch_size
    resized = False  # the size changed and no full batch of the new size has worked yet
    good = 0  # batches in a row that worked at this size
    step = window if window and window > 0 else max(len(missing), 1)
    groups = [g for start in range(0, len(missing), step) for g in _groups(missing[start : start + step])]
    listening = ThreadPoolExecutor(1, thread_name_prefix="voxd-listen") if check and check.listener else None
    heard: Callable[[], None] | None = None  # finishes the batch being heard
    stopping = threading.Event()

    def finish_later(batch: list[Chunk], result: Synthesis, elapsed: float) -> Callable[[], None]:
        judged = listening.submit(first_judgements, batch, result, check, stopping) if listening and check else None

        def finish() -> None:
            rate = result.sample_rate
            spoken, run = padding([len(w) / rate for w in result.waveforms])
            retry_started = time.monotonic()
            takes = settle(engine, batch, result, check, checkpoint, judged=judged.result() if judged else None)
            retry_seconds = time.monotonic() - retry_started
            batch_audio = 0.0
            for c, take in zip(batch, takes):
                keep_take(cache, c, take)
                batch_audio += len(take.wave) / rate
                _count(progress, take, c.key)
            crash_point("render.batch")
            progress.batches += 1
            progress.chunks_done += len(batch)
            progress.audio_seconds += batch_audio
            progress.rendered_audio_seconds += batch_audio
            progress.render_seconds += elapsed + retry_seconds
            progress.seconds_spoken += spoken
            progress.seconds_padded += run
            _log_batch(len(batch), elapsed, spoken, run, engine.lockstep)
            if on_ready:
                on_ready([c.key for c in batch])
            if on_progress:
                on_progress(progress)

        return finish

    # With an engine that overlaps (its codec decode runs while the next batch generates), the
    # batch just spoken is collected after the next one is started; a decode that ran out of
    # memory is raised there and its chunks go back to the front, as a batch's would.
    in_flight: tuple[list[Chunk], Callable[[], Synthesis], float] | None = None
    overlapping = engine.overlaps_decode

    def out_of_memory(batch: list[Chunk], pending: deque[Chunk], exc: OutOfMemory) -> None:
        nonlocal size, resized, good
        if len(batch) == 1:
            raise EngineError(f"out of GPU memory even for one chunk: {exc}") from exc
        size = max(1, len(batch) // 2)
        resized, good = True, 0
        progress.out_of_memory += 1
        progress.batch_size = size
        pending.extendleft(reversed(batch))
        log.warning("Out of GPU memory on a batch of %d chunks; trying the same chunks %d at a time",
                    len(batch), size)

    def collect(pending: deque[Chunk]) -> None:
        """Finish the batch in flight: its audio, then its read-back and keeping as before."""
        nonlocal in_flight, heard
        if in_flight is None:
            return
        batch, result_of, elapsed = in_flight
        in_flight = None
        waited = time.monotonic()
        try:
            result = result_of()
        except OutOfMemory as exc:
            out_of_memory(batch, pending, exc)
            return
        previous, heard = heard, finish_later(batch, result, elapsed + time.monotonic() - waited)
        if previous is not None:
            previous()
        if listening is None:  # nothing to overlap: the batch is finished now, as it always was
            heard()
            heard = None

    try:
        for group in groups:
            pending = deque(group)
            while pending or in_flight is not None:
                if not pending:
                    collect(pending)  # the group's last batch (or one that ran out of memory)
                    continue
                batch = take_batch(pending, size, max_ratio)
                if checkpoint:
                    checkpoint()
                started = time.monotonic()
                try:
                    result_of = speak_later(engine, batch)
                except OutOfMemory as exc:
                    out_of_memory(batch, pending, exc)
                    continue
                elapsed = time.monotonic() - started
                if resized and len(batch) == size:
                    resized = False
                    log.info("A batch of %d chunks fits; keeping that size", size)
                    if on_resize:
                        on_resize(size)
                good += 1
                if size < max_batch_size and good >= GROW_AFTER and not resized:
                    size, resized, good = min(max_batch_size, size + max(1, size // 4)), True, 0
                    progress.batch_size = size
                    log.info("%d batches in a row fitted; trying %d chunks per batch", GROW_AFTER, size)
                collect(pending)  # the batch before, decoded while this one generated
                in_flight = (batch, result_of, elapsed)
                if not overlapping:
                    collect(pending)
        if heard is not None:
            heard()
    finally:
        if listening is not None:
            stopping.set()  # a take being heard for a batch that will not be kept is not waited for
            listening.shutdown(wait=True, cancel_futures=True)


def _render_requests(
    missing: list[Chunk],
    engine: Engine,
    cache: ChunkCache,
    progress: Progress,
    *,
    check: Check | None,
    checkpoint: Callable[[], None] | None,
    on_progress: Callable[[Progress], None] | None,
    on_ready: Callable[[list[str]], None] | None,
) -> None:
    """A sliding window of single-chunk requests, in book order, each stored as it returns.

    The requests run in daemon threads; the loop itself only starts them, stores
    what comes back and asks ``checkpoint``, so a stop is noticed within a second
    whatever the servers do. On a stop or an error, requests already in flight get
    :data:`DRAIN_SECONDS` to finish and be kept; the rest are left to end on their own.
    """
    results: queue.Queue[tuple[Chunk, Take | None, BaseException | None]] = queue.Queue()

    def request(c: Chunk) -> None:
        try:
            result = speak(engine, [c])
            results.put((c, settle(engine, [c], result, check)[0], None))
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
            results.put((c, None, exc))

    def keep(c: Chunk, take: Take) -> None:
        keep_take(cache, c, take)
        seconds = len(take.wave) / take.rate
        _count(progress, take, c.key)
        progress.batches += 1
        progress.chunks_done += 1
        progress.audio_seconds += seconds
        progress.rendered_audio_seconds += seconds
        progress.render_seconds = time.monotonic() - started
        crash_point("render.batch")
        if on_ready:
            on_ready([c.key])

    pending = deque(missing)
    in_flight = 0
    started = time.monotonic()
    last_report = started
    progress.batch_size = 1
    try:
        while pending or in_flight:
            if checkpoint and not (pending and in_flight < engine.window()):
                checkpoint()  # nothing to start: a stop is still noticed while requests run
            while pending and in_flight < engine.window():
                if checkpoint:
                    checkpoint()  # before each request, as before each batch
                threading.Thread(target=request, args=(pending.popleft(),), name="voxd-request",
                                 daemon=True).start()
                in_flight += 1
            try:
                c, take, error = results.get(timeout=_REPORT_SECONDS)
            except queue.Empty:
                continue
            in_flight -= 1
            if error is not None:
                raise error
            assert take is not None
            keep(c, take)
            now = time.monotonic()
            if on_progress and now - last_report >= _REPORT_SECONDS and (pending or in_flight):
                last_report = now
                on_progress(progress)
    except BaseException:
        deadline = time.monotonic() + DRAIN_SECONDS
        while in_flight and (left := deadline - time.monotonic()) > 0:
            try:
                c, take, error = results.get(timeout=left)
            except queue.Empty:
                break
            in_flight -= 1
            if take is not None:
                keep(c, take)
        raise
    if on_progress:
        on_progress(progress)


def _log_batch(n: int, elapsed: float, spoken: float, run: float, lockstep: bool) -> None:
    level = logging.INFO if lockstep or elapsed > _SLOW_BATCH_SECONDS else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    speed = spoken / elapsed if elapsed else float("inf")
    waste = f", {100.0 * (1.0 - spoken / run):.0f}% padding" if lockstep and run > 0 else ""
    log.log(level, "Batch (%d chunks) done in %.2fs (%.2fs/chunk, %.1fx real time%s)",
            n, elapsed, elapsed / n, speed, waste)
    line = gpu.vram_line()
    if line:
        log.log(level, "%s", line)


def keep_take(cache: ChunkCache, c: Chunk, take: Take) -> None:
    """Into the cache; a flagged take as unsettled (marked before its audio is written, so that
    a crash in between never leaves it looking finished), a right one clearing an old mark
    after its audio is in."""
    if take.flag is not None:
        cache.flag(c.key, take.flag.as_json())
        cache.put(c.key, take.wave, take.rate)
    else:
        cache.put(c.key, take.wave, take.rate)
        cache.unflag(c.key)


def _count(progress: Progress, take: Take, key: str) -> None:
    progress.retried += take.retried
    if take.flagged:
        progress.flagged.append(take.flagged)
    if take.flag is not None:
        progress.flags.append(take.flag)
        if take.verdict is not None:
            progress.heard.append((key, "flagged"))
    if take.verdict is None:
        return
    if take.verdict.status == "passed":
        progress.checked += 1
        progress.heard.append((key, "passed"))
    elif take.verdict.status == "unchecked":
        progress.unchecked += 1
        progress.unchecked_why = progress.unchecked_why or (take.verdict.why or "")
        progress.heard.append((key, "unchecked"))
