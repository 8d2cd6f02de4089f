"""The worker: claim a job, convert it, publish the result, report what happened.

It owns the job's edges: the source file moves to ``inbox/done/`` or
``inbox/failed/`` (with ``<name>.error.txt``), the store learns the outcome, a
notification goes out. A bad book fails its job and nothing else: the loop
carries on with the next one.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..audio.publish import fitting_name, outbox_path
from ..book import Book, Chunk
from ..cache import ChunkCache
from ..config import Settings
from ..convert import Outcome, convert
from ..errors import (
    Cancelled,
    OutsideWindow,
    PermanentError,
    RetryableError,
    SourceChanged,
    Stopping,
    StorageFull,
    TooLong,
    Unavailable,
    UnsupportedFormat,
    translate,
)
from ..faults import crash_point
from ..files import move_into, sha256_file, write_text_atomic
from ..narration import length
from ..render import Progress, count_chunks
from ..tts.base import Engine
from ..tts.hub import FetchProgress
from ..verify.listener import Listener, listener_for
from ..verify.report import flag_rows, summary
from . import disk
from .notify import Notifier
from .records import Job
from .schedule import describe, in_window, next_opening
from .store import Store

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine_factory: Callable[[], Engine],
        notifier: Notifier,
        *,
        stop: threading.Event,
        alive: Callable[[str | None], None] = lambda status: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine_factory = engine_factory
        self.notifier = notifier
        self.stop = stop
        self.alive = alive  # called often; the daemon turns it into watchdog pings and STATUS=
        self.wake = threading.Event()
        self._engine: Engine | None = None
        self._listener: Listener | None = None
        self._listener_made = False
        self._engine_remote = settings.remote  # what the engine was made with
        # After a pause (the servers, the disk, the GPU: what every book needs), no job is
        # claimed until the wait is over: the next book would only be read to pause too.
        self._held: tuple[float, str] | None = None

    @property
    def engine(self) -> Engine:
        """The engine, made at first use. A remote engine is made again, between jobs, when a
        reload changed ``[remote]`` (a fixed key, another server): it holds no model, and a
        refused key is otherwise fixed only by a restart."""
        changed = self.settings.engine == "remote" and self.settings.remote != self._engine_remote
        if self._engine is not None and changed:
            log.info("the [remote] settings changed; the next job speaks through the new ones")
            self._engine.close()
            self._engine = None
        if self._engine is None:
            self._engine_remote = self.settings.remote
            self._engine = self.engine_factory()
        return self._engine

    def listener(self, on_fetch: Callable[[FetchProgress], None]) -> Listener | None:
        """The read-back, made at the first job and kept; None with ``[verify] mode = "off"``. Its
        model's first fetch is a phase of that job, like Qwen's (``on_fetch``: progress, watchdog
        pings, a stop). A required one that cannot be had raises (the job waits), and one whose
        fetch was stopped, too: each is tried again at the next job, and so is one that could not
        be had (a failed fetch leaves that book's chunks not checked, not every later book's)."""
        away = self._listener is not None and self._listener.recogniser is None
        if not self._listener_made or away:
            if self._listener is not None:
                self._listener.close()
            self._listener = listener_for(self.settings, report=on_fetch)
            self._listener_made = True
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self._listener_made = False
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def run(self) -> None:
        """Work until asked to stop."""
        while not self.stop.is_set():
            self.alive(None)
            if not in_window(datetime.now(), self.settings.window_minutes):
                opens = next_opening(datetime.now(), self.settings.window_minutes)
                self.alive(f"waiting for the render window ({describe(self.settings.window_minutes)}), "
                           f"opens {opens:%H:%M}")
                self.wake.wait(min(30.0, max(1.0, (opens - datetime.now()).total_seconds())))
                self.wake.clear()
                continue
            if self._held is not None:
                until, reason = self._held
                if time.monotonic() < until:
                    self.alive(f"paused: {reason}")
                    self.wake.wait(min(5.0, until - time.monotonic()))
                    self.wake.clear()
                    continue
                self._held = None
            job = self.store.claim(self.settings.lease_seconds)
            if job is None:
                self.alive("idle: waiting for books in the inbox")
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            self.process(job)

    def process(self, job: Job) -> None:
        started = time.monotonic()
        cancelled = threading.Event()
        beat_stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(job.id, cancelled, beat_stop), name="voxd-lease", daemon=True
        )
        beat.start()
        log.info("job %d: converting %s (attempt %d)", job.id, job.name, job.attempts)
        try:
            outcome = self._convert(job, cancelled)
        except OutsideWindow:
            self.store.requeue(
                job.id, f"render window {describe(self.settings.window_minutes)} closed; continuing when it opens",
                count_attempt=False,
            )
            log.info("job %d: the render window closed; it continues when the window opens", job.id)
        except Stopping:
            self.store.requeue(job.id, "voxd is stopping; the job continues at the next start", count_attempt=False)
            log.info("job %d: stopped between batches; it resumes at the next start", job.id)
        except Cancelled:
            log.info("job %d: cancelled", job.id)
            self._purge_if_asked(job)
        except TooLong as exc:
            self.store.progress(job.id, expected_seconds=exc.seconds)
            self._fail(job, f"{exc}; or let this book alone through: voxd retry {job.id} --max-hours "
                            f"{length.enough_hours(exc.seconds)}", exc)
        except Unavailable as exc:
            self._pause(job, str(exc))
        except RetryableError as exc:
            self._retry_or_fail(job, str(exc))
        except PermanentError as exc:
            self._fail(job, str(exc), exc)
        except Exception as exc:  # a bug or a parser crash on hostile input: fail this job only
            if isinstance(translate(exc), StorageFull):  # ENOSPC from our writes or wrapped by PyAV, mutagen
                self._pause(job, f"no space left on device while writing {job.name}'s audio: {exc}")
                return
            log.error("job %d: unexpected error\n%s", job.id, traceback.format_exc())
            self._fail(job, f"unexpected error while converting {job.name}: {type(exc).__name__}: {exc}")
        else:
            self._succeed(job, outcome, time.monotonic() - started)
        finally:
            beat_stop.set()
            beat.join()

    # -- the parts ---------------------------------------------------------

    def _heartbeat(self, job_id: int, cancelled: threading.Event, done: threading.Event) -> None:
        interval = max(1.0, self.settings.lease_seconds / 3)
        while not done.wait(interval):
            if not self.store.heartbeat(job_id, self.settings.lease_seconds):
                cancelled.set()
                return

    def _convert(self, job: Job, cancelled: threading.Event) -> Outcome:
        source = Path(job.source)
        if not source.is_file():
            raise PermanentError(f"{job.name} is no longer in the inbox (deleted or moved while queued)")
        if sha256_file(source) != job.sha256:
            raise SourceChanged(
                f"{job.name} was replaced by a different version after it was queued; "
                "the new version is queued as its own job"
            )

        settings = self.settings
        if job.max_hours is not None:  # set for this book alone (voxd retry --max-hours)
            settings = settings.model_copy(update={"max_book_hours": job.max_hours})
        rendered = [False]
        read: list[list[Chunk]] = []  # the book's chunks, for the flagged ones' places

        def checkpoint() -> None:
            self.alive(None)
            if cancelled.is_set() or self.store.require(job.id).status.value == "cancelled":
                raise Cancelled(job.name)
            if self.stop.is_set():
                raise Stopping()
            # The window guards the GPU: once every chunk is rendered, assembly may run on.
            if not rendered[0] and not in_window(datetime.now(), self.settings.window_minutes):
                raise OutsideWindow()

        def on_book(book: Book, chunks: list[Chunk]) -> None:
            # The book is its content: if the file changed while it was being read, what was
            # read may be the other version, which is queued as a job of its own.
            if not source.is_file() or sha256_file(source) != job.sha256:
                raise SourceChanged(
                    f"{job.name} was replaced by a different version while it was being read; "
                    "the new version is queued as its own job"
                )
            expected = length.expected_seconds(chunks, settings)
            self.store.progress(
                job.id,
                title=book.metadata.title,
                author=book.metadata.author,
                chapters=len(book.chapters),
                chunks_total=len({c.key for c in chunks}),
                expected_seconds=expected,
            )
            self.store.set_chunks(job.id, [c.key for c in chunks])
            self.store.set_plan(job.id, [ch.title for ch in book.chapters],
                                ((c.chapter, c.key, c.pause.value) for c in chunks))
            read.append(chunks)
            log.info(
                "job %d: %s by %s, %d chapters, %s, about %s of audio",
                job.id, book.metadata.title, book.metadata.author, len(book.chapters), count_chunks(chunks),
                format_duration(expected),
            )
            self.notifier.event(
                "started", job.id, job=job.id, file=job.name, title=book.metadata.title, author=book.metadata.author,
                chapters=len(book.chapters), attempt=job.attempts,
            )
            self._make_room(job, book, chunks)

        def on_fetch(p: FetchProgress) -> None:
            # A model's first download, before the render: a stop or a cancel ends the wait
            # (the download resumes next time); each report is a watchdog ping and the status.
            if cancelled.is_set() or self.store.require(job.id).status.value == "cancelled":
                raise Cancelled(job.name)
            if self.stop.is_set():
                raise Stopping()
            self.alive(f"job {job.id}: {p.describe()}")
            self.store.progress(job.id, phase=None if p.finished else p.describe())

        def on_assembly(done: int, total: int) -> None:
            # Every chunk is rendered; long chapters may take minutes more to encode.
            phase = f"writing the .m4b: {done} of {total} chapters"
            self.alive(f"job {job.id}: {phase}")
            self.store.progress(job.id, phase=phase)

        last_log = [0.0]
        stored = [0]  # how many of the run's verdicts (Progress.heard) are in the store

        def on_progress(p: Progress) -> None:
            rendered[0] = p.chunks_done >= p.chunks_total
            # what was heard of each chunk, this run's verdict replacing an earlier run's, counted once
            # per chunk (a chunk spoken again by `voxd retry --chunks` is not counted twice); flagged
            # chunks are spoken again by every run, so theirs is this run's count
            checked, unchecked = self.store.set_heard(job.id, p.heard[stored[0]:])
            stored[0] = len(p.heard)
            self.store.progress(
                job.id, chunks_done=p.chunks_done, audio_seconds=p.audio_seconds, render_seconds=p.render_seconds,
                rendered_audio_seconds=p.rendered_audio_seconds, chunks_rendered=p.chunks_done - p.chunks_cached,
                chunks_checked=checked, chunks_unchecked=unchecked,
                unchecked_why=p.unchecked_why or job.unchecked_why, chunks_flagged=len(p.flags),
            )
            pct = 100.0 * p.chunks_done / p.chunks_total if p.chunks_total else 100.0
            status = f"job {job.id}: {pct:.0f}% ({p.chunks_done}/{p.chunks_total} chunks)"
            self.alive(status)
            now = time.monotonic()
            if now - last_log[0] >= 30 or p.chunks_done == p.chunks_total:
                last_log[0] = now
                speed = f", {p.speed:.1f}x real time" if p.speed else ""
                log.info("%s, %s of audio%s", status, format_duration(p.audio_seconds), speed)

        try:
            outcome = convert(
                source,
                lambda book: self._destination(job, book),
                settings,
                self.engine,
                on_book=on_book,
                on_progress=on_progress,
                checkpoint=checkpoint,
                memory=self.store,
                on_fetch=on_fetch,
                on_assembly=on_assembly,
                listener=self.listener(on_fetch),
            )
            if read:
                self.store.set_flags(job.id, flag_rows(read[-1], outcome.progress.flags,
                                                       ChunkCache(settings.cache_path), settings))
            return outcome
        except (Cancelled, Stopping):
            raise
        except Exception as exc:
            # Cancelled meanwhile (with --purge, its chunks may have left the cache under
            # the assembler): what failed no longer matters.
            if self.store.require(job.id).status.value == "cancelled":
                raise Cancelled(job.name) from exc
            raise

    def _purge_if_asked(self, job: Job) -> None:
        """A job cancelled with --purge: its chunks go, now that nothing of it writes to the
        cache any more (``voxd cancel`` removed those there were; the batch in flight came since)."""
        if not self.store.require(job.id).purge:
            return
        try:
            disk.purge_job(self.settings, self.store, job.id)
        except OSError as exc:
            log.warning("job %d: could not remove its chunks from the cache: %s", job.id, exc)

    def _make_room(self, job: Job, book: Book, chunks: list[Chunk]) -> None:
        """Before the render: finished books' chunks give way for this one's, and what the
        disk still lacks is said now, in the log and the job's history, not found out hours in.
        The render goes ahead either way; a disk that does fill pauses the job."""
        try:
            needed = disk.needs(chunks, ChunkCache(self.settings.cache_path), self.settings)
            disk.trim_cache(self.settings, self.store, need=disk.on_cache_volume(self.settings, needed))
            short = disk.shortfall(self.settings, needed, book.metadata.title)
        except OSError as exc:  # a look at the disk is no reason to fail a book
            log.warning("job %d: could not check the disk space for %s: %s", job.id, book.metadata.title, exc)
            return
        if short:
            said = f"{short}: the render may fill the disk, and if it does, the job pauses until space is freed"
            log.warning("job %d: %s", job.id, said)
            self.store.event(job.id, "disk", said)

    def _succeed(self, job: Job, outcome: Outcome, elapsed: float) -> None:
        # The store first: once the job is done (with its notification queued in the same
        # transaction), a crash before the source is moved leaves only tidying to do,
        # which the next start does (see tidy_source).
        meta = outcome.book.metadata
        for note in outcome.progress.flagged:  # audio kept although it looked wrong: worth a listen
            self.store.event(job.id, "suspect", note)
        message = self.notifier.render(
            "done",
            job=job.id, file=job.name, title=meta.title, author=meta.author, chapters=len(outcome.chapters),
            duration=format_duration(outcome.duration), elapsed=format_duration(elapsed), output=outcome.output,
            checks=summary(self.store.require(job.id)) or "not read back",
        )
        if not self.store.finish(job.id, str(outcome.output), notify=message, duration=outcome.duration):
            log.info("job %d was cancelled as it finished; %s stays", job.id, outcome.output)
            return
        crash_point("publish.finished")
        self.tidy_source(self.store.require(job.id))
        crash_point("publish.moved")
        self.notifier.wake()
        log.info(
            "job %d: done: %s (%s of audio, %d chapters) in %s",
            job.id, outcome.output, format_duration(outcome.duration), len(outcome.chapters),
            format_duration(elapsed),
        )

    def _destination(self, job: Job, book: Book) -> Path:
        """outbox/<Author>/<Title>/<Title>.m4b. Another job's book (other content) already
        published there under the same author and title keeps its file: this one becomes
        '<Title> (2)' (folder and file). A job that runs again (a retry, a restart after a
        crash) replaces its own output."""
        path = outbox_path(self.settings.outbox_dir, book.metadata)
        taken = {j.output for j in self.store.jobs() if j.output and j.id != job.id}
        candidate, n = path, 1
        while str(candidate) in taken:
            n += 1
            folder = f"{path.parent.name} ({n})"
            candidate = path.parent.parent / folder / f"{folder}.m4b"
        return candidate

    def tidy_source(self, job: Job, *, retry_helps: bool = True) -> None:
        """Move a finished job's source out of the inbox: done/, or failed/ with its error note.

        Only the job's own file moves: a file that took its name meanwhile (a new version,
        queued as its own job) stays. A move that fails is logged, never fatal."""
        source = Path(job.source)
        if not source.is_file() or source.parent != self.settings.inbox_dir:
            return
        if job.status.value not in ("done", "failed"):
            return
        try:
            if sha256_file(source) != job.sha256:
                log.info("job %d: %s now holds another version; it stays in the inbox", job.id, source.name)
                return
            name = fitting_name(source.name)
            if job.status.value == "done":
                moved = move_into(source, self.settings.inbox_dir / "done", name)
            else:
                moved = move_into(source, self.settings.inbox_dir / "failed", name)
                note = _error_note(job, job.error or "unknown", retry_helps=retry_helps)
                write_text_atomic(moved.with_name(moved.name + ".error.txt"), note)
        except OSError as exc:
            log.error("job %d: could not move %s out of the inbox: %s", job.id, source.name, exc)
            return
        self.store.move_source(job.id, moved)

    def _pause(self, job: Job, reason: str) -> None:
        """Something the job needs is away (disk space, the speech servers): nothing is wrong
        with the book, so wait (without using up attempts) and try again."""
        delay = self.settings.retry_delay_seconds
        log.warning("job %d paused: %s; trying again in %s", job.id, reason, format_duration(delay))
        self.store.requeue(job.id, f"{reason}; trying again in {format_duration(delay)}", delay=delay,
                           count_attempt=False)
        self._held = (time.monotonic() + delay, reason)

    def resume(self) -> None:
        """Try the waiting jobs now (a reload may have fixed what they wait for)."""
        self._held = None
        released = self.store.release_waiting()
        if released:
            log.info("%d waiting job%s tried again now", released, "" if released == 1 else "s")
        self.wake.set()

    def _retry_or_fail(self, job: Job, reason: str) -> None:
        if job.attempts >= self.settings.max_attempts:
            self._fail(job, f"{reason} (gave up after {job.attempts} attempts)")
            return
        delay = min(3600.0, self.settings.retry_delay_seconds * 2 ** (job.attempts - 1))
        log.warning("job %d: %s; retrying in %s", job.id, reason, format_duration(delay))
        self.store.requeue(job.id, f"{reason}; retrying in {format_duration(delay)}", delay=delay)

    def _fail(self, job: Job, reason: str, error: Exception | None = None) -> None:
        log.error("job %d failed: %s", job.id, reason)
        message = self.notifier.render("failed", job=job.id, file=job.name, reason=reason, attempt=job.attempts,
                                       title=job.title or job.name, author=job.author or "?")
        self.store.fail(job.id, reason, notify=message)
        self.notifier.wake()
        if not isinstance(error, SourceChanged):  # the file there now is another version: leave it
            self.tidy_source(self.store.require(job.id), retry_helps=not isinstance(error, UnsupportedFormat))


def _error_note(job: Job, reason: str, *, retry_helps: bool = True) -> str:
    """The ``.error.txt`` beside a failed source. A file of a type voxd does not read fails the
    same way however often it is retried, so its note says what to do with it instead."""
    if retry_helps:
        then = f"After fixing the file, drop it into the inbox again, or run: voxd retry {job.id}\n"
    else:
        then = ("voxd reads EPUB, PDF and voxd manifests (.voxd.json): convert it to EPUB or PDF "
                "(Calibre's ebook-convert does) and drop that into the inbox.\n")
    return (
        f"voxd could not convert {job.name}.\n\n"
        f"Reason: {reason}\n\n"
        f"Job {job.id}, sha256 {job.sha256}.\n"
        + then
    )
