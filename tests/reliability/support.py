"""Shared pieces of the reliability tests: one fast daemon per module, small books, waiting."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import Daemon
from voxd.samples import build_epub
from voxd.service.records import Job

#: Settings that make a small book go through quickly: a short quiet period, frequent rescans.
FAST_ENV = {"VOXD_SETTLE_SECONDS": "0.5", "VOXD_RESCAN_SECONDS": "2", "VOXD_LOG_LEVEL": "INFO"}
TERMINAL = ("done", "failed", "cancelled")


def start_daemon(root: Path, **env: str) -> Daemon:
    return Daemon(root, {**FAST_ENV, **env}).start()


def stop_daemon(d: Daemon) -> None:
    if d.proc is not None and d.proc.poll() is None:
        try:
            d.stop(30)
        except Exception:  # noqa: BLE001 - a hung daemon is killed, the test has already reported
            d.proc.kill()
            d.proc.wait(10)


def small_book(path: Path, n: int, *, title: str | None = None, author: str = "Rel Tester",
               chapters: int = 1) -> Path:
    """A tiny distinct EPUB: one or two short chapters, an identifier of its own."""
    chs = [(f"Part {c + 1}", [f"Book {n}, part {c + 1}. A short line to read."]) for c in range(chapters)]
    return build_epub(path, title=title or f"Book {n:02d}", authors=(author,), chapters=chs,
                      identifier=f"voxd-reliability-{n}-{path.stem}")


def jobs(d: Daemon) -> list[Job]:
    store = d.store()
    try:
        return store.jobs()
    finally:
        store.close()


def events(d: Daemon, job_id: int | None = None):
    store = d.store()
    try:
        return store.events(job_id)
    finally:
        store.close()


def wait_until(d: Daemon, predicate, timeout: float, what: str, poll: float = 0.2):
    """Like Daemon.wait_for, polling less often (the store is read in-process)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if d.proc is not None and d.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({d.proc.returncode}) waiting for {what}:\n{d.log()[-5000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}:\n{d.log()[-5000:]}")
        time.sleep(poll)


def by_name(d: Daemon) -> dict[str, Job]:
    """The newest job for each file name."""
    return {j.name: j for j in jobs(d)}


def drop(src: Path, inbox: Path, name: str | None = None) -> Path:
    """Put a finished file into the inbox in one step (rename from outside), as `mv` does."""
    target = inbox / (name or src.name)
    src.rename(target)
    return target
