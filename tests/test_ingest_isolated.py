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
