"""The assembler process: :func:`voxd.audio.assembly.assemble` beside the render, in a process of its own.

Why a process and not a thread: on a GPU the render loop is Python driving
thousands of small kernel launches per audio frame, and it needs the GIL between
every one. An encoder thread in the same interpreter takes the GIL at each of
its own calls; measured here, a launch-bound loop ran at 43-46 % of its speed
while a thread encoded AAC, and at 100 % while a child process did. The child
reads the chunk cache from disk as the thread did, so only chunk keys (one way)
and chapter events, log lines and the result (the other) cross between them.

The child is spawned (no fork of a process that may hold CUDA), dies with its
parent (``PR_SET_PDEATHSIG``), and a crash point that fires in it kills the
parent too, as a real crash of the machine would.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import children
from ..book import Book, Chunk
from ..config import Settings
from ..errors import AssemblyFailed, BookError, translate
from ..files import remove_temps_of
from .m4b import ChapterMark, Narrators

log = logging.getLogger(__name__)

#: How long an abandoned child gets to drop its temp file before it is killed.
ABANDON_SECONDS = 30.0
#: While the book is finishing, the caller's checkpoint runs at least this often: a cancel
#: or a stop must not wait for a long chapter to end.
CHECK_SECONDS = 0.5
#: How long a closed key queue's feeder thread gets to end (it ends at once unless a pipe the
#: child no longer reads is full).
FEEDER_SECONDS = 1.0


class _Abandoned(Exception):
    """The render loop stopped or failed: the assembler drops the book it was writing."""


class Assembler:
    """``assemble`` running in a child process while the caller renders.

    The render loop tells :meth:`ready` which chunks are in the cache. The caller's
    thread keeps the ``checkpoint`` (it may use the store): while rendering through
    :meth:`guard`, then after each chapter in :meth:`finish`. An error in the child
    is raised in the caller's thread; :meth:`abandon` (a stop, a cancel, a render
    error) makes the child drop its temp file and end.
    """

    def __init__(self, book: Book, chunks: list[Chunk], cache_root: Path, output: Path, settings: Settings,
                 *, narrator: Narrators) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._output = output
        self._keys: Any = ctx.Queue()  # parent -> child: lists of ready keys, or None to abandon
        self._events, child_end = ctx.Pipe(duplex=False)  # child -> parent
        self._error: BaseException | None = None
        self._result: tuple[list[ChapterMark], float] | None = None
        self._ended = False
        self.chapters_done = 0
        self.chapters_total = len({c.chapter for c in chunks})
        self._process = ctx.Process(
            target=_child,
            args=(child_end, self._keys, book, chunks, str(cache_root), str(output), settings, narrator,
                  os.getpid()),
            name="voxd-assemble",
            daemon=True,
        )
        children.start(self._process)
        child_end.close()

    # -- the render loop's side

    def ready(self, keys: list[str]) -> None:
        if keys:
            self._keys.put(list(keys))

    def guard(self, checkpoint: Callable[[], None] | None) -> Callable[[], None]:
        """``checkpoint``, raising first the assembler's error if it failed: no point rendering on."""
        def guarded() -> None:
            while not self._ended and self._events.poll():
                self._handle(self._receive())
            if self._error is not None:
                raise self._error
            if checkpoint:
                checkpoint()
        return guarded

    def finish(self, checkpoint: Callable[[], None] | None,
               on_chapter: Callable[[int, int], None] | None = None) -> tuple[list[ChapterMark], float]:
        """Wait for the book, running ``checkpoint`` after each chapter and every
        :data:`CHECK_SECONDS` in between; its marks and duration.

        A chapter of ten hours takes minutes to encode: the checkpoint (a cancel, a stop)
        is asked meanwhile too; when it raises, the caller's :meth:`abandon` makes the
        child stop at its next chunk. ``on_chapter(done, total)`` hears how far the book
        is, now and after each chapter: once the render is over, this is the progress.
        """
        asked = time.monotonic()
        if on_chapter:
            on_chapter(self.chapters_done, self.chapters_total)
        while not self._ended:
            kind = self._handle(self._receive()) if self._events.poll(CHECK_SECONDS) else None
            if kind == "chapter" and on_chapter and not self._ended:
                on_chapter(self.chapters_done, self.chapters_total)
            if checkpoint and (kind == "chapter" or time.monotonic() - asked >= CHECK_SECONDS):
                asked = time.monotonic()
                checkpoint()
        self._process.join(ABANDON_SECONDS)
        self._close()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def abandon(self) -> None:
        """Tell the child to drop the book; wait for it (reading what it says meanwhile), then make sure."""
        if self._process.is_alive():
            self._keys.put(None)
            deadline = time.monotonic() + ABANDON_SECONDS
            while self._process.is_alive() and time.monotonic() < deadline:
                if self._events.poll(0.1):
                    try:
                        self._handle(self._receive())
                    except AssemblyFailed:  # it died meanwhile
                        break
            self._process.join(1)
            if self._process.is_alive():
                log.warning("the assembler did not stop; killing it")
                self._process.kill()
                self._process.join(5)
                remove_temps_of(self._output)  # the M4B writer's, which it had no time to drop
        self._close()

    # -- messages

    def _receive(self) -> tuple:
        try:
            return self._events.recv()
        except (EOFError, OSError):
            self._process.join(5)
            self._ended = True
            self._close()
            raise AssemblyFailed(f"the assembler process for {self._output.name} died (exit code "
                                 f"{self._process.exitcode}); trying again assembles the book anew") from None

    def _handle(self, message: tuple) -> str:
        kind = message[0]
        if kind == "log":
            _, name, level, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == "done":
            self._result = message[1]
            self._ended = True
        elif kind == "error":
            self._error = message[1]
            self._ended = True
        elif kind == "abandoned":
            self._ended = True
        elif kind == "chapter":
            self.chapters_done += 1
        return kind

    def _close(self) -> None:
        self._keys.close()
        self._keys.cancel_join_thread()  # keys the child will never read must not hold us up
        # The queue's feeder thread (a daemon) holds its write lock and semaphore. Were it to
        # hold them last, their finalizers (sem_unlink, then UNREGISTER to the resource tracker)
        # would run in that thread, racing the interpreter's exit: a feeder frozen mid-way leaves
        # the tracker to warn of "1 leaked semaphore objects". So let it end here, while this
        # queue still holds them; a feeder stuck on a full pipe keeps them to the exit, whose
        # finalizers (in this thread) release them.
        feeder = getattr(self._keys, "_thread", None)
        if feeder is not None:
            feeder.join(FEEDER_SECONDS)


# -- the child ---------------------------------------------------------------------------------


class _Forward(logging.Handler):
    """The child's log records, as text, to the parent's loggers."""

    def __init__(self, conn) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # the parent is gone; nothing to log to
            self.conn.send(("log", record.name, record.levelno, record.getMessage()))


def _die_with_parent(parent: int) -> None:
    """The parent decides when the assembly stops: the signals meant for the service are held
    from the child's start (:func:`voxd.children.start`), and a parent that dies, however it
    dies, takes the child with it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _child(conn, keys, book, chunks, cache_root: str, output: str, settings: Settings, narrator,
           parent: int) -> None:
    _die_with_parent(parent)
    from .. import faults
    from ..cache import ChunkCache
    from .assembly import assemble

    faults.kill_also(parent)
    root = logging.getLogger()
    root.handlers[:] = [_Forward(conn)]
    root.setLevel(logging.DEBUG)  # all of it: the parent's loggers decide what is shown

    waiting = {c.key for c in chunks}
    abandoned = False

    def take(message) -> None:
        nonlocal abandoned
        if message is None:
            abandoned = True
        else:
            waiting.difference_update(message)

    def check() -> None:
        while True:
            try:
                take(keys.get_nowait())
            except queue.Empty:
                break
        if abandoned:
            raise _Abandoned()

    def wait(key: str) -> None:
        check()
        while key in waiting:
            try:
                take(keys.get(timeout=1.0))
            except queue.Empty:
                if os.getppid() != parent:
                    raise _Abandoned() from None
            if abandoned:
                raise _Abandoned()

    try:
        result = assemble(book, chunks, ChunkCache(Path(cache_root)), Path(output), settings, narrator=narrator,
                          checkpoint=check, ready=wait, on_chapter=lambda index: conn.send(("chapter", index)))
        conn.send(("done", result))
    except _Abandoned:
        conn.send(("abandoned",))
    except BaseException as exc:  # noqa: BLE001 - raised again in the parent
        conn.send(("error", _portable(exc)))
    finally:
        conn.close()


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (OSError keeps its errno), else what it means
    (:func:`translate`: a full disk must not become a failed book), else its words in a BookError."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return translate(exc) or BookError(f"assembling failed: {type(exc).__name__}: {exc}")
