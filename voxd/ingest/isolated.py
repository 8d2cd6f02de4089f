"""Read a book in a child process with a memory cap and a time limit.

Books are files written by strangers, and the parsers (libxml2, MuPDF) are large C
libraries. A crash, a runaway allocation or an endless loop in one of them must
cost one job, not the daemon (Calibre and Dangerzone do the same): the reader runs
in a fresh ``spawn`` child under ``RLIMIT_AS``, and is killed when it runs past
its time. Its Book comes back pickled; its typed errors come back as themselves.

What a book carries is worked on under the same limits: :func:`read_isolated` runs a
function of the book in the child too (the daemon and ``voxd plan`` cut it into chunks
there, applying its lexicon, which a manifest fills with whatever it likes).
"""

from __future__ import annotations

import errno
import multiprocessing
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import children
from ..book import Book
from ..errors import BookError, VoxdError

T = TypeVar("T")


def _child(conn, path: str, options: dict[str, Any], memory_bytes: int, then: Callable[[Book], Any] | None) -> None:
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        from . import read_book

        book = read_book(Path(path), **options)
        conn.send(("ok", (book, then(book) if then is not None else None)))
    except VoxdError as exc:
        conn.send(("error", exc))
    except BaseException as exc:  # a parser bug: report it as words, not a pickled traceback
        if _out_of_memory(exc, memory_bytes):
            conn.send(("memory", None))
        else:
            conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


#: Address space this close to the cap counts as having run into it.
_NEAR_CAP = 64 * 2**20


def _out_of_memory(exc: BaseException, memory_bytes: int) -> bool:
    """Whether the reader failed for want of memory under the cap.

    Python says so with MemoryError only where it allocates itself; an allocation
    refused inside C code (the compiler, a parser, the loader mapping a library)
    surfaces as OSError ENOMEM, or as SystemError ("returned NULL without setting
    an exception") or ImportError, which say nothing of memory: for those, the
    process's peak address space at the cap is the tell.
    """
    if isinstance(exc, MemoryError):
        return True
    if memory_bytes <= 0:
        return False
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return True
    peak = _vm_peak()
    return peak is not None and peak >= memory_bytes - _NEAR_CAP


def _vm_peak() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


#: While a book is read, the caller's checkpoint runs this often: a stop or a cancel
#: does not wait for a slow parser.
CHECK_SECONDS = 0.5


def read_book_isolated(path: Path, *, timeout: float, memory_mb: int,
                       checkpoint: Callable[[], None] | None = None, **options: Any) -> Book:
    """read_book(path, **options) in a child process; limits become clear BookErrors.

    ``checkpoint`` is called every :data:`CHECK_SECONDS` while the child reads; whatever it
    raises (a stop, a cancel) ends the read, and the child is killed.
    """
    book, _ = read_isolated(path, None, timeout=timeout, memory_mb=memory_mb, checkpoint=checkpoint, **options)
    return book


def read_isolated(path: Path, then: Callable[[Book], T] | None, *, timeout: float, memory_mb: int,
                  checkpoint: Callable[[], None] | None = None, **options: Any) -> tuple[Book, T | None]:
    """:func:`read_book_isolated`, and ``then(book)`` worked out in the same child, under the
    same limits (``then`` is pickled: a module-level function or a ``functools.partial`` of one)."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child, args=(send, str(path), options, memory_mb * 2**20, then), name="voxd-reader", daemon=True
    )
    children.start(proc)
    send.close()
    try:
        deadline = time.monotonic() + timeout
        while not receive.poll(max(0.0, min(CHECK_SECONDS, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                what = "reading it" if then is None else "reading it and cutting it into chunks"
                raise BookError(f"{path.name}: {what} took longer than {timeout:g} s (ingest_timeout_seconds); "
                                "the file may be malformed or hostile")
            if checkpoint:
                checkpoint()
        try:
            kind, value = receive.recv()
        except EOFError:
            proc.join(5)
            raise BookError(
                f"{path.name}: the {path.suffix or 'book'} reader crashed (exit code {proc.exitcode}); "
                "the file is probably malformed"
            ) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        receive.close()
    if kind == "ok":
        return value
    if kind == "error":
        raise value
    if kind == "memory":
        what = "reading it" if then is None else "reading it and cutting it into chunks"
        why = "the file may be a decompression bomb" + ("" if then is None else ", or its lexicon too large for it")
        raise BookError(f"{path.name}: {what} needed more than {memory_mb} MB (ingest_memory_mb); {why}")
    raise BookError(f"{path.name}: the reader failed: {value}")
