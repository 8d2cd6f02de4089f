"""The inbox: notice new files, wait until they are complete, hand them to the queue.

Events from watchdog are hints, never proof: a file counts as complete only once
its size and mtime have stayed the same for ``settle_seconds`` and it can be
opened. A scan at start-up and a periodic rescan catch what events miss (files
copied while voxd was down, network shares where inotify sees nothing).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from .records import Job
    from .store import Store

log = logging.getLogger(__name__)

SKIP_DIRS = frozenset({"done", "failed"})
TEMP_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download", ".swp", "~")
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "@eadir", "__macosx", ".ds_store", ".stfolder"})
#: An empty file may be a copy that has not written its first byte yet, so it must stay
#: empty for this many quiet periods before it is handed over (to fail as an empty book
#: rather than sit in the inbox unseen forever).
EMPTY_SETTLE_FACTOR = 10
#: Events that only say someone read the file (voxd itself, hashing it): never a change.
READ_EVENTS = frozenset({"opened", "closed_no_write"})


#: Cover images that a manifest beside them names ("cover": "cover.jpg"): never books, and
#: never moved away from under the manifest that needs them.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def is_candidate_name(name: str) -> bool:
    """False for names that are never books: dotfiles, temp names, OS junk, cover images."""
    lower = name.lower()
    if name.startswith(".") or name.startswith("._") or lower in JUNK_NAMES:
        return False
    return not lower.endswith(TEMP_SUFFIXES + IMAGE_SUFFIXES)


@dataclass(slots=True)
class _Seen:
    size: int
    mtime_ns: int
    since: float


class StabilityTracker:
    """Decides when a file has stopped changing for long enough to be read."""

    def __init__(self, settle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._seen: dict[Path, _Seen] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path) -> None:
        """Something happened to this path: track it; its quiet period restarts if it changed."""
        with self._lock:
            self._observe(path)

    def _observe(self, path: Path) -> None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            self._seen.pop(path, None)
            return
        if not stat.S_ISREG(st.st_mode):
            self._seen.pop(path, None)
            return
        old = self._seen.get(path)
        if old is None or old.size != st.st_size or old.mtime_ns != st.st_mtime_ns:
            self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, self._clock())

    def ready(self) -> list[Path]:
        """Paths unchanged for the whole quiet period (ten of them while empty) and readable;
        they leave the tracker."""
        now = self._clock()
        done: list[Path] = []
        with self._lock:
            for path in list(self._seen):
                self._observe(path)
                seen = self._seen.get(path)
                quiet = self.settle_seconds * (EMPTY_SETTLE_FACTOR if seen is not None and seen.size == 0 else 1)
                if seen is None or now - seen.since < quiet:
                    continue
                if _opens(path):
                    done.append(path)
                    del self._seen[path]
        return done

    def __len__(self) -> int:
        return len(self._seen)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    """What makes a file "the same as when it was handed over": inode, size, mtime."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _opens(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            fh.read(1)
        return True
    except OSError:
        return False


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in READ_EVENTS:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.watcher.hint(Path(os.fsdecode(raw)))


class InboxWatcher:
    """Watches the inbox's top level and calls ``on_ready(path)`` once per complete file.

    The callback decides what a file means (new job, duplicate...); the watcher
    only promises that the file was complete when it was handed over.
    """

    def __init__(
        self,
        inbox: Path,
        on_ready: Callable[[Path], None],
        *,
        settle_seconds: float,
        poll: bool = False,
        tick: float = 0.5,
    ) -> None:
        self.inbox = inbox
        self.on_ready = on_ready
        self.tracker = StabilityTracker(settle_seconds)
        self.poll = poll
        self.tick = tick
        self._observer: BaseObserver | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handed: dict[Path, tuple[int, int, int]] = {}

    def hint(self, path: Path) -> None:
        if path.parent != self.inbox or not is_candidate_name(path.name):
            return
        try:
            if self._handed.get(path) == _identity(path.lstat()):
                return  # already handed over as it is now (an event from reading it, say)
        except FileNotFoundError:
            pass
        self.tracker.touch(path)

    def scan(self) -> int:
        """Look at every file in the inbox; returns how many were new or changed."""
        count = 0
        try:
            entries = list(os.scandir(self.inbox))
        except FileNotFoundError:
            return 0
        present = set()
        for entry in entries:
            path = Path(entry.path)
            if entry.name in SKIP_DIRS or not is_candidate_name(entry.name):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # moved away (to done/ by the worker, say) since the listing
            present.add(path)
            if self._handed.get(path) == _identity(st):
                continue  # already handed over as it is now
            self.tracker.touch(path)
            count += 1
        for path in list(self._handed):
            if path not in present:
                del self._handed[path]
        return count

    def check(self) -> None:
        """Hand over every file that has become complete."""
        for path in self.tracker.ready():
            try:
                st = path.lstat()
                self._handed[path] = _identity(st)
            except FileNotFoundError:
                continue
            try:
                self.on_ready(path)
            except Exception:  # a bad file must not stop the watcher
                log.exception("could not queue %s", path.name)

    def start(self) -> None:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        self.inbox.mkdir(parents=True, exist_ok=True)
        self.scan()  # before the observer, so nothing dropped while we were down is missed
        self._observer = PollingObserver(timeout=2) if self.poll else Observer()
        self._observer.schedule(_Handler(self), str(self.inbox), recursive=False)
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="voxd-inbox", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)


def enqueue(store: Store, path: Path, done_dir: Path) -> tuple[Job, str]:
    """Turn a complete inbox file into a job; returns (job, what happened).

    Identity is content: a file whose sha256 is already a job is a duplicate. It is
    moved to ``done_dir`` and recorded on the existing job, unless it is that job's
    own source file (seen again by a rescan) or replaces a source that vanished.
    """
    from ..audio.publish import fitting_name
    from ..files import move_into, sha256_file

    path = _utf8_name(path)
    digest = sha256_file(path)
    job, created = store.put(digest, path)
    if created:
        log.info("queued %s as job %d", path.name, job.id)
        return job, "queued"
    if Path(job.source) == path:
        # Its own source, seen again; "finished" when a crash left it in the inbox after the job ended.
        return job, ("finished" if job.status.value in ("done", "failed") else "known")
    if job.status.value in ("queued", "running") and not Path(job.source).exists():
        store.move_source(job.id, path)
        return job, "resourced"
    if job.status.value == "failed":
        # Same bytes, same failure: it belongs beside the first copy, not among finished books.
        from ..files import write_text_atomic

        moved = move_into(path, done_dir.parent / "failed", fitting_name(path.name))
        write_text_atomic(
            moved.with_name(moved.name + ".error.txt"),
            f"{path.name} has the same content as {job.name}, which failed (job {job.id}):\n{job.error}\n\n"
            f"To try again after fixing the cause: voxd retry {job.id}\n",
        )
    else:
        moved = move_into(path, done_dir, fitting_name(path.name))
    store.event(job.id, "duplicate", f"{path.name} has the same content as {job.name}; moved to {moved}")
    log.info(
        "%s has the same content as job %d (%s, %s); moved to %s",
        path.name, job.id, job.name, job.status.value, moved,
    )
    return job, "duplicate"


def _utf8_name(path: Path) -> Path:
    """A name that is not UTF-8 (bytes from a Latin-1 system, say) cannot go into the store:
    rename the file, undecodable bytes becoming U+FFFD, and carry on with the new name."""
    try:
        path.name.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    from ..audio.publish import fitting_name
    from ..files import NAME_MAX, unique_path

    # Each undecodable byte becomes three (U+FFFD): the new name may need cutting to fit.
    target = unique_path(path.parent, fitting_name(os.fsencode(path.name).decode("utf-8", "replace"), NAME_MAX))
    os.rename(path, target)
    log.warning("renamed %s to %s: its name was not valid UTF-8", ascii(path.name), target.name)
    return target
