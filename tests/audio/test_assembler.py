"""The assembler process, driven as convert() drives it, over a real chunk cache and .m4b."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
import threading
import time
from multiprocessing import queues, synchronize
from pathlib import Path

import pytest

from voxd.audio.assembler import Assembler, _portable
from voxd.book import Book, Chapter, Chunk, Metadata, Pause
from voxd.cache import ChunkCache
from voxd.errors import AssemblyFailed, BookError, Cancelled, PermanentError, RetryableError, StorageFull

from ..support import RATE, assemblers, chapters_of, decode, handmade_book, settings_for, tone_chunk


def test_a_book_assembled_in_the_child_with_its_log_lines_here(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="voxd.audio.assembly")
    book, chunks, cache = handmade_book(tmp_path, [0.05, 0.2])
    output = tmp_path / "child.m4b"
    assembler = Assembler(book, chunks, cache.root, output, settings_for(tmp_path), narrator="Nora")
    assert [p.pid for p in assemblers()] and all(p.pid != multiprocessing.current_process().pid for p in assemblers())
    assembler.ready([c.key for c in chunks])
    chapters: list[int] = []
    told: list[tuple[int, int]] = []
    marks, duration = assembler.finish(lambda: chapters.append(1), lambda done, total: told.append((done, total)))
    assert len(chapters) >= 2  # the checkpoint ran here, after each chapter (and every half second)
    assert told == [(0, 2), (1, 2), (2, 2)]  # how far the .m4b is, now and after each chapter
    assert [m.title for m in marks] == ["Part 1", "Part 2"]
    assert duration == pytest.approx(decode(output)[0].size / RATE, abs=0.1)
    assert [t for t, _, _ in chapters_of(output)] == ["Part 1", "Part 2"]
    levelled = [r for r in caplog.records if r.name == "voxd.audio.assembly" and "LUFS" in r.getMessage()]
    assert [r.getMessage().split(" (")[0] for r in levelled] == ["chapter 1", "chapter 2"]
    assert not assemblers()


def test_its_errors_come_back_typed(tmp_path: Path) -> None:
    book, chunks, cache = handmade_book(tmp_path, [0.1])
    cache.path(chunks[1].key).unlink()
    assembler = Assembler(book, chunks, cache.root, tmp_path / "broken.m4b", settings_for(tmp_path), narrator=None)
    assembler.ready([c.key for c in chunks])
    with pytest.raises(AssemblyFailed, match="chunk 1 of chapter 1 is missing from the cache"):
        assembler.finish(None)
    assembler.abandon()
    assert not (tmp_path / "broken.m4b").exists()
    assert not list(tmp_path.glob(".broken.m4b.*.tmp")) and not assemblers()


def test_abandoned_while_waiting_it_leaves_nothing(tmp_path: Path) -> None:
    book, chunks, cache = handmade_book(tmp_path, [0.1, 0.1])
    output = tmp_path / "left.m4b"
    assembler = Assembler(book, chunks, cache.root, output, settings_for(tmp_path), narrator=None)
    assembler.ready([c.key for c in chunks[:4]])  # chapter 2 never completes
    guard = assembler.guard(None)
    guard()  # nothing has gone wrong
    assembler.abandon()
    assert not assemblers()
    assert not output.exists() and not list(tmp_path.glob(".left.m4b.*.tmp"))


def test_a_cancel_is_heard_while_one_long_chapter_is_encoded(tmp_path: Path) -> None:
    """Forty minutes in one chapter: the checkpoint must not wait for the chapter's end,
    and the child stops at its next chunk, leaving neither the book nor its temp file."""
    cache = ChunkCache(tmp_path / "cache")
    keys = [f"{n:02d}".ljust(64, "c") for n in range(4)]
    for n, key in enumerate(keys):
        cache.put(key, tone_chunk(10.0, 0.1, 200.0 + 40 * n), RATE)
    chunks = [Chunk(chapter=0, index=i, text="...", pause=Pause.SENTENCE, voice="v", key=keys[i % 4])
              for i in range(240)]
    book = Book(metadata=Metadata(title="Long"), chapters=(Chapter(title="The only one", paragraphs=("...",)),))
    output = tmp_path / "long.m4b"
    assembler = Assembler(book, chunks, cache.root, output, settings_for(tmp_path), narrator=None)
    assembler.ready(keys)
    asked: list[int] = []

    def cancelled() -> None:
        asked.append(1)
        raise Cancelled("long.m4b")

    with pytest.raises(Cancelled):
        assembler.finish(cancelled)
    assembler.abandon()
    assert asked == [1] and not assemblers()
    assert not output.exists() and not list(tmp_path.glob(".long.m4b.*.tmp"))


def test_exceptions_that_do_not_pickle_become_book_errors() -> None:
    class Local(Exception):  # defined in a function: pickle cannot find it
        pass

    disk = OSError(28, "No space left on device")
    assert _portable(disk) is disk and pickle.loads(pickle.dumps(disk)).errno == 28
    portable = _portable(Local("odd"))
    assert isinstance(portable, BookError) and str(portable) == "assembling failed: Local: odd"


def test_a_full_disk_that_does_not_pickle_comes_back_as_storage_full() -> None:
    class Local(Exception):  # defined in a function: pickle cannot find it
        pass

    try:
        raise Local("writing the trailer failed") from OSError(28, "No space left on device")
    except Local as exc:
        portable = _portable(exc)
    assert isinstance(portable, StorageFull) and pickle.loads(pickle.dumps(portable)).args == portable.args


def test_a_dead_assembler_is_worth_a_retry(tmp_path: Path) -> None:
    """A killed child (the kernel's OOM killer, say) says nothing about the book."""
    book, chunks, cache = handmade_book(tmp_path, [0.1])
    assembler = Assembler(book, chunks, cache.root, tmp_path / "killed.m4b", settings_for(tmp_path), narrator=None)
    assembler._process.kill()
    with pytest.raises(RetryableError, match="assembler process for killed.m4b died") as err:
        assembler.finish(None)
    assert not isinstance(err.value, PermanentError)
    assembler.abandon()
    assert not assemblers()


def test_the_key_queues_semaphores_are_released_here_not_by_its_feeder_thread(tmp_path: Path, monkeypatch) -> None:
    """The queue's feeder thread (a daemon) holds its write lock and semaphore. Had it the last
    references, their finalizers (sem_unlink, then UNREGISTER to the resource tracker) would run
    in it, racing the interpreter's exit: the tracker then warns "1 leaked semaphore objects".
    The feeder here is slow to end, as a loaded machine may make it."""
    feed = queues.Queue._feed

    def slow_feed(*args):
        feed(*args)
        time.sleep(0.2)  # the feeder descheduled before it lets go of its arguments

    monkeypatch.setattr(queues.Queue, "_feed", staticmethod(slow_feed))
    released_in: list[str] = []
    cleanup = synchronize.SemLock._cleanup

    def recorded(name: str) -> None:
        released_in.append(threading.current_thread().name)
        cleanup(name)

    monkeypatch.setattr(synchronize.SemLock, "_cleanup", staticmethod(recorded))
    book, chunks, cache = handmade_book(tmp_path, [0.05])
    assembler = Assembler(book, chunks, cache.root, tmp_path / "sem.m4b", settings_for(tmp_path), narrator=None)
    assembler.ready([c.key for c in chunks])
    assembler.finish(None)
    del assembler
    gc.collect()
    time.sleep(0.5)  # a feeder still running lets go of them now
    assert released_in == ["MainThread"] * 3
