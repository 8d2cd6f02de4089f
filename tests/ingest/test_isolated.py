"""Reading a book in a limited child process: same Book, typed errors, time and memory caps."""

from __future__ import annotations

import pytest

from voxd.errors import BookError
from voxd.ingest import read_book
from voxd.ingest.isolated import read_book_isolated
from voxd.samples import build_sample


def test_same_book_as_in_process(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    assert read_book_isolated(book, timeout=60, memory_mb=2048) == read_book(book)


def test_options_reach_the_reader(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    with pytest.raises(ValueError):
        read_book(book, toc_depth=0)
    with pytest.raises(BookError, match="the reader failed: ValueError"):
        read_book_isolated(book, timeout=60, memory_mb=2048, toc_depth=0)


def test_book_errors_come_back_typed(tmp_path):
    bad = tmp_path / "bad.epub"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BookError, match="bad.epub: not a valid EPUB"):
        read_book_isolated(bad, timeout=60, memory_mb=2048)


def test_time_limit(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    with pytest.raises(BookError, match=r"alice.epub: reading it took longer than 0.01 s"):
        read_book_isolated(book, timeout=0.01, memory_mb=2048)


def test_memory_limit(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    with pytest.raises(BookError, match=r"alice.epub: (reading it needed more than 1 MB|the .epub reader crashed)"):
        read_book_isolated(book, timeout=60, memory_mb=1)


def test_what_counts_as_running_out_of_memory():
    import errno

    from voxd.ingest.isolated import _out_of_memory

    compile_failed = SystemError("<built-in function compile> returned NULL without setting an exception")
    assert _out_of_memory(compile_failed, 2**20)  # this process's address space is far over 1 MB
    assert not _out_of_memory(compile_failed, 2**50)  # nowhere near a 1 PB cap: a real bug
    assert not _out_of_memory(compile_failed, 0)  # no cap at all
    assert _out_of_memory(MemoryError(), 0)
    assert _out_of_memory(OSError(errno.ENOMEM, "Cannot allocate memory"), 2**50)
    assert not _out_of_memory(OSError(errno.EIO, "I/O error"), 2**50)


@pytest.mark.slow
def test_a_stop_is_heard_while_a_book_is_read(tmp_path):
    """A reader stuck on its file (here a FIFO nobody writes) must not hold a stop or a cancel
    until ingest_timeout_seconds: the checkpoint is asked while it reads, and the child dies."""
    import multiprocessing
    import os

    from voxd.errors import Stopping

    stuck = tmp_path / "stuck.voxd.json"
    os.mkfifo(stuck)
    asked: list[int] = []

    def stopping() -> None:
        asked.append(1)
        if len(asked) == 3:
            raise Stopping()

    with pytest.raises(Stopping):
        read_book_isolated(stuck, timeout=600, memory_mb=2048, checkpoint=stopping)
    assert len(asked) == 3
    assert not [p for p in multiprocessing.active_children() if p.name == "voxd-reader"]


def _pid(book) -> int:
    import os

    return os.getpid()


def _forever(book) -> None:
    while True:
        pass


def test_what_is_worked_out_of_a_book_is_worked_out_in_the_child_under_its_time_limit(tmp_path):
    """voxd cuts a book into chunks (its lexicon applied) in the reader's process: a stall
    there ends at ingest_timeout_seconds, as a stalled reader does."""
    import os

    from voxd.ingest.isolated import read_isolated

    book = build_sample(tmp_path / "alice.epub")
    read, pid = read_isolated(book, _pid, timeout=60, memory_mb=2048)
    assert read == read_book(book) and isinstance(pid, int) and pid != os.getpid()
    with pytest.raises(BookError, match=r"alice.epub: reading it and cutting it into chunks took longer than 2 s"):
        read_isolated(book, _forever, timeout=2, memory_mb=2048)


def _hog(book):
    return bytearray(2**31)  # far past the limit below


def test_running_out_of_memory_while_cutting_a_book_names_the_lexicon_too(tmp_path):
    """A lexicon is applied in the reader's process: a huge one runs out of its memory, and the
    error says so instead of blaming the file alone."""
    from voxd.ingest.isolated import read_isolated

    book = build_sample(tmp_path / "alice.epub")
    with pytest.raises(BookError, match=r"alice.epub: reading it and cutting it into chunks needed more than "
                                        r"512 MB \(ingest_memory_mb\); .* or its lexicon too large for it"):
        read_isolated(book, _hog, timeout=60, memory_mb=512)
