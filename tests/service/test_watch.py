"""The inbox watcher on real folders: completeness, ignored names, hand-over and dedupe."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from voxd.files import sha256_file
from voxd.service.store import Store
from voxd.service.watch import InboxWatcher, StabilityTracker, enqueue, is_candidate_name


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.mark.parametrize(
    "name, ok",
    [
        ("book.epub", True),
        ("My Book (2nd ed.).pdf", True),
        ("book.epub.part", False),
        ("book.epub.crdownload", False),
        ("book.epub.tmp", False),
        (".book.epub", False),
        ("._book.epub", False),
        (".DS_Store", False),
        ("Thumbs.db", False),
        ("book.epub~", False),
    ],
)
def test_candidate_names(name, ok):
    assert is_candidate_name(name) is ok


def test_file_ready_only_after_quiet_period(tmp_path):
    clock = Clock()
    tracker = StabilityTracker(settle_seconds=2.0, clock=clock)
    f = tmp_path / "book.epub"
    f.write_bytes(b"part one")
    tracker.touch(f)
    clock.t = 1.9
    assert tracker.ready() == []
    with f.open("ab") as fh:  # still being written: the clock restarts
        fh.write(b" and part two")
    clock.t = 3.0
    assert tracker.ready() == []
    clock.t = 4.9
    assert tracker.ready() == []
    clock.t = 5.1
    assert tracker.ready() == [f]
    assert len(tracker) == 0


def test_empty_and_vanished_files_are_not_ready(tmp_path):
    clock = Clock()
    tracker = StabilityTracker(settle_seconds=1.0, clock=clock)
    empty = tmp_path / "empty.epub"
    empty.write_bytes(b"")
    gone = tmp_path / "gone.epub"
    gone.write_bytes(b"x")
    tracker.touch(empty)
    tracker.touch(gone)
    gone.unlink()
    clock.t = 5
    assert tracker.ready() == []


def test_directories_and_symlinks_are_not_files(tmp_path):
    clock = Clock()
    tracker = StabilityTracker(settle_seconds=1.0, clock=clock)
    (tmp_path / "folder.epub").mkdir()
    outside = tmp_path.parent / "outside-secret.txt"
    outside.write_text("secret")
    link = tmp_path / "link.epub"
    link.symlink_to(outside)
    tracker.touch(tmp_path / "folder.epub")
    tracker.touch(link)
    clock.t = 5
    assert tracker.ready() == []


def collect(inbox: Path, settle: float = 0.3):
    got: list[Path] = []
    event = threading.Event()

    def on_ready(path):
        got.append(path)
        event.set()

    watcher = InboxWatcher(inbox, on_ready, settle_seconds=settle, tick=0.05)
    return watcher, got, event


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_watcher_hands_over_slow_copy_once_complete(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher, got, _ = collect(inbox, settle=2.0)
    watcher.start()
    try:
        target = inbox / "slow.epub"
        with target.open("wb") as fh:
            for _ in range(5):
                fh.write(b"x" * 1000)
                fh.flush()
                time.sleep(0.25)
                assert got == [], "picked up while still being written"
        assert wait_for(lambda: got == [target])
        time.sleep(0.5)
        assert got == [target]  # once
    finally:
        watcher.stop()


def test_startup_scan_finds_existing_files_and_skips_subfolders(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "done").mkdir(parents=True)
    (inbox / "failed").mkdir()
    (inbox / "done" / "old.epub").write_bytes(b"old")
    (inbox / "failed" / "bad.epub").write_bytes(b"bad")
    (inbox / "waiting.epub").write_bytes(b"book")
    (inbox / ".hidden.epub").write_bytes(b"book")
    (inbox / "copying.epub.part").write_bytes(b"book")
    watcher, got, _ = collect(inbox)
    watcher.start()
    try:
        assert wait_for(lambda: got == [inbox / "waiting.epub"])
    finally:
        watcher.stop()


def test_rename_into_inbox_is_seen(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher, got, _ = collect(inbox)
    watcher.start()
    try:
        tmp = inbox / ".book.epub.tmp"
        tmp.write_bytes(b"content")
        os.rename(tmp, inbox / "book.epub")
        assert wait_for(lambda: got == [inbox / "book.epub"])
    finally:
        watcher.stop()


def test_rescan_does_not_hand_over_unchanged_files_again(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.epub").write_bytes(b"a")
    watcher, got, _ = collect(inbox, settle=0.1)
    watcher.scan()
    time.sleep(0.2)
    watcher.check()
    assert got == [inbox / "a.epub"]
    assert watcher.scan() == 0
    (inbox / "a.epub").write_bytes(b"a new version")
    assert watcher.scan() == 1


def test_enqueue_dedupes_by_content(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    store = Store(tmp_path / "db")
    first = inbox / "book.epub"
    first.write_bytes(b"same bytes")
    copy = inbox / "book copy.epub"
    copy.write_bytes(b"same bytes")
    job, what = enqueue(store, first, inbox / "done")
    assert what == "queued" and job.sha256 == sha256_file(first)
    assert enqueue(store, first, inbox / "done")[1] == "known"
    job2, what2 = enqueue(store, copy, inbox / "done")
    assert what2 == "duplicate" and job2.id == job.id
    assert not copy.exists() and (inbox / "done" / "book copy.epub").exists()
    assert len(store.jobs()) == 1
    assert store.events(job.id)[-1].kind == "duplicate"


def test_enqueue_new_version_under_same_name_is_new_job(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    store = Store(tmp_path / "db")
    f = inbox / "book.epub"
    f.write_bytes(b"version 1")
    enqueue(store, f, inbox / "done")
    f.write_bytes(b"version 2")
    _, what = enqueue(store, f, inbox / "done")
    assert what == "queued"
    assert len(store.jobs()) == 2


def test_empty_file_is_ready_after_ten_quiet_periods(tmp_path):
    """An empty file may be a copy that has not started: it waits longer, then goes (to fail as empty)."""
    clock = Clock()
    tracker = StabilityTracker(settle_seconds=1.0, clock=clock)
    empty = tmp_path / "empty.epub"
    empty.write_bytes(b"")
    tracker.touch(empty)
    clock.t = 9.9
    assert tracker.ready() == []
    clock.t = 10.1
    assert tracker.ready() == [empty]


def test_touching_an_unchanged_file_keeps_its_quiet_period(tmp_path):
    """A rescan (or an event from reading the file) must not restart the clock, or a
    settle_seconds longer than rescan_seconds would hold every file back forever."""
    clock = Clock()
    tracker = StabilityTracker(settle_seconds=2.0, clock=clock)
    f = tmp_path / "book.epub"
    f.write_bytes(b"book")
    tracker.touch(f)
    for t in (0.5, 1.0, 1.5):
        clock.t = t
        tracker.touch(f)
    clock.t = 2.1
    assert tracker.ready() == [f]


def test_reading_a_handed_over_file_does_not_hand_it_over_again(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    got = []
    watcher = InboxWatcher(inbox, lambda p: (got.append(p), sha256_file(p)), settle_seconds=0.2, tick=0.05)
    watcher.start()
    try:
        (inbox / "book.epub").write_bytes(b"x" * 100)
        assert wait_for(lambda: got)
        time.sleep(1.0)  # five quiet periods, each with the open/close events of our own reads
        assert got == [inbox / "book.epub"]
    finally:
        watcher.stop()


def test_scan_skips_a_file_moved_away_after_the_listing(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "gone.epub").write_bytes(b"a")
    (inbox / "stays.epub").write_bytes(b"b")
    real = os.scandir

    def listing_then_move(path):
        entries = list(real(path))
        (inbox / "gone.epub").unlink()
        return iter(entries)

    monkeypatch.setattr(os, "scandir", listing_then_move)
    watcher, _, _ = collect(inbox)
    assert watcher.scan() == 1


def test_name_that_is_not_utf8_is_renamed_and_queued(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    store = Store(tmp_path / "db")
    raw = os.path.join(os.fsencode(inbox), b"caf\xe9.epub")
    with open(raw, "wb") as fh:
        fh.write(b"a book")
    job, what = enqueue(store, Path(os.fsdecode(raw)), inbox / "done")
    assert what == "queued" and job.name == "caf\ufffd.epub"
    assert (inbox / "caf\ufffd.epub").read_bytes() == b"a book"


def test_fitting_name_shortens_long_names_keeping_the_suffix():
    from voxd.audio.publish import MAX_MOVED_NAME, fitting_name

    assert fitting_name("short.epub") == "short.epub"
    long = fitting_name("\u4e66" * 80 + ".voxd.json")
    assert long.endswith("\u2026.voxd.json") and len(os.fsencode(long)) <= MAX_MOVED_NAME


def test_copy_of_a_failed_book_goes_to_failed_with_a_note(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    store = Store(tmp_path / "db")
    first = inbox / "bad.epub"
    first.write_bytes(b"not a zip")
    job, _ = enqueue(store, first, inbox / "done")
    store.claim(60)
    store.fail(job.id, "bad.epub: not a valid EPUB (zip) file")
    again = inbox / "bad again.epub"
    again.write_bytes(b"not a zip")
    _, what = enqueue(store, again, inbox / "done")
    assert what == "duplicate"
    assert (inbox / "failed" / "bad again.epub").is_file()
    note = (inbox / "failed" / "bad again.epub.error.txt").read_text()
    assert "not a valid EPUB" in note and f"voxd retry {job.id}" in note
    assert not (inbox / "done").exists()
