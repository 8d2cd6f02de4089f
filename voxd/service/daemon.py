"""The composition root: the only place that knows every part and wires them together.

Start-up order matters: the state lock first (one daemon per state directory), then
the store and crash recovery, then the inbox (scan before watch), then READY=1.
The model is not loaded here: the first job that needs it loads it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TypedDict

from ..audio.publish import fitting_name
from ..config import Settings
from ..errors import ConfigError, VoxdError
from ..files import move_into, remove_stale_temps, write_text_atomic
from ..tts.cuda_check import log_startup
from ..tts.registry import ENGINES, load_engine
from ..voices import VoiceLibrary, import_recording
from .disk import trim_cache
from .notify import Notifier, redact
from .sdnotify import notify, watchdog_interval
from .store import Store
from .watch import InboxWatcher, enqueue
from .worker import Worker

log = logging.getLogger(__name__)


def acquire_lock(state_dir: Path) -> int:
    """Hold an exclusive lock on the state directory for the life of the process."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "voxd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"another voxd daemon is already running with state_dir {state_dir}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


class _Health:
    """Turns the worker's 'still alive' calls into watchdog pings and STATUS= lines, rate-limited."""

    def __init__(self) -> None:
        self.interval = watchdog_interval()
        self._last_ping = 0.0
        self._status = ""

    def __call__(self, status: str | None) -> None:
        now = time.monotonic()
        if self.interval and now - self._last_ping >= self.interval:
            notify("WATCHDOG=1")
            self._last_ping = now
        if status and status != self._status:
            self._status = status
            notify(f"STATUS={status}")


RESTART_KEYS = ("inbox", "outbox", "state_dir", "cache_dir", "engine", "poll", "espeak", "piper", "qwen", "verify",
                "web")


class Digest(TypedDict):
    """The daily digest's template fields."""

    done: int
    failed: int
    queued: int
    hours: int
    lines: str


def digest_fields(store: Store, hours: int = 24) -> Digest:
    """What the daily digest says: jobs finished in the last day, and what is waiting."""
    since = time.time() - hours * 3600
    jobs = store.jobs()
    finished = [j for j in jobs if j.finished_at and j.finished_at >= since]
    done = [j for j in finished if j.status.value == "done"]
    failed = [j for j in finished if j.status.value == "failed"]
    queued = [j for j in jobs if j.status.value in ("queued", "running")]
    lines = [f"done: {j.title or j.name}" for j in done] + [f"failed: {j.name}: {j.error}" for j in failed]
    if queued:
        lines.append(f"{len(queued)} waiting or rendering")
    return Digest(done=len(done), failed=len(failed), queued=len(queued), hours=hours,
                  lines="\n".join(lines) or "nothing happened")


def take_voice(voices: VoiceLibrary, path: Path, inbox: Path) -> None:
    """A recording in inbox/voices/ becomes a voice; a bad one goes to inbox/failed/ with the reason."""
    if path.suffix.lower() == ".txt":
        return  # a transcript: read beside its recording
    transcript = path.with_suffix(".txt")
    try:
        info = import_recording(voices, path)
    except VoxdError as exc:
        log.error("voice from %s failed: %s", path.name, exc)
        moved = move_into(path, inbox / "failed", fitting_name(path.name))  # room for ".error.txt"
        write_text_atomic(moved.with_name(moved.name + ".error.txt"),
                          f"voxd could not make a voice from {path.name}.\n\nReason: {exc}\n")
        return
    log.info("new %s voice %r from %s (%.1f s reference%s)", info.kind, info.name, path.name, info.seconds,
             ", with transcript" if info.transcript else "")
    done = inbox / "voices" / "done"
    move_into(path, done)
    if transcript.is_file():
        move_into(transcript, done)


def run_daemon(settings: Settings, engine: str | None = None, *, config_path: Path | str | None = None,
               overrides: dict | None = None) -> int:
    engine_name = engine or settings.engine
    if engine_name not in ENGINES:
        raise ConfigError(f"unknown engine {engine_name!r}; choose one of {', '.join(ENGINES)}")
    load_engine(settings, engine_name).close()  # cheap: checks the settings, loads no model
    from ..web.server import WebServer, check_exposure

    check_exposure(settings)  # a page open to the network without a password: refused before anything starts

    if settings.umask:
        os.umask(int(settings.umask, 8))  # for outputs a media server running as another user must read
    lock_fd = acquire_lock(settings.state_path)
    store = Store(settings.db_path)
    for job in store.recover(settings.max_attempts, all_running=True):
        log.warning("job %d (%s) was interrupted; now %s", job.id, job.name, job.status.value)

    for stale in remove_stale_temps(settings.outbox_dir, settings.cache_path):
        log.info("removed %s, left half-written by an earlier run", stale)

    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    notifier = Notifier(store, settings.notify_urls, templates=settings.templates, events=settings.notify_events)
    stop = threading.Event()
    health = _Health()
    worker = Worker(
        settings, store, lambda: load_engine(worker.settings, engine_name), notifier, stop=stop, alive=health
    )

    page = WebServer(settings, store, wake=worker.wake.set, config_path=config_path)

    def on_ready(path: Path) -> None:
        job, what = enqueue(store, path, inbox / "done")
        if what in ("queued", "resourced"):
            worker.wake.set()
        elif what == "finished":
            worker.tidy_source(job)

    watcher = InboxWatcher(inbox, on_ready, settle_seconds=settings.settle_seconds, poll=settings.poll)
    voices = VoiceLibrary(settings.state_path / "voices")
    voice_inbox = inbox / "voices"
    voice_inbox.mkdir(exist_ok=True)
    voice_watcher = InboxWatcher(
        voice_inbox, lambda path: take_voice(voices, path, inbox), settle_seconds=settings.settle_seconds,
        poll=settings.poll,
    )

    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(watcher.scan, "interval", seconds=settings.rescan_seconds, id="rescan", coalesce=True)
    scheduler.add_job(voice_watcher.scan, "interval", seconds=settings.rescan_seconds, id="rescan-voices",
                      coalesce=True)
    scheduler.add_job(
        lambda: store.recover(worker.settings.max_attempts),
        "interval",
        seconds=max(5.0, settings.lease_seconds / 2),
        id="reap-leases",
        coalesce=True,
    )

    # The cache's cap and free-space floor (voxd.service.disk); each job's start trims it for its book too.
    scheduler.add_job(lambda: trim_cache(worker.settings, store), "interval", minutes=10, id="trim-cache",
                      coalesce=True)

    def schedule_digest(current: Settings) -> None:
        if scheduler.get_job("digest"):
            scheduler.remove_job("digest")
        if current.digest_time:
            hh, mm = current.digest_time.split(":")
            scheduler.add_job(lambda: notifier.event("digest", **digest_fields(store)), "cron",
                              hour=int(hh), minute=int(mm), id="digest", coalesce=True)

    schedule_digest(settings)

    def reload() -> None:
        from ..config import load_settings
        from ..tts.auto import resolve

        try:
            new, _ = resolve(load_settings(config_path, **(overrides or {})))  # auto: the engine chosen at start
        except ConfigError as exc:
            log.error("configuration reload failed; the running settings stay: %s", exc)
            return
        current = worker.settings
        pending = [k for k in RESTART_KEYS if getattr(new, k) != getattr(current, k)]
        new = new.model_copy(update={k: getattr(current, k) for k in RESTART_KEYS})
        worker.settings = new
        notifier.reconfigure(new.notify_urls, templates=new.templates, events=new.notify_events)
        watcher.tracker.settle_seconds = new.settle_seconds
        voice_watcher.tracker.settle_seconds = new.settle_seconds
        scheduler.reschedule_job("rescan", trigger="interval", seconds=new.rescan_seconds)
        schedule_digest(new)
        logging.getLogger().setLevel(new.log_level)
        log.info("configuration reloaded%s", f"; restart voxd to apply: {', '.join(pending)}" if pending else "")
        worker.resume()  # what the waiting jobs wait for (a key, a server) may be fixed now

    def on_hup(_signum: int, _frame) -> None:
        threading.Thread(target=reload, name="voxd-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)

    def on_signal(signum: int, _frame) -> None:
        log.info("received %s: finishing the batch in flight, then stopping", signal.Signals(signum).name)
        notify("STOPPING=1")
        stop.set()
        worker.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        watcher.start()
        voice_watcher.start()
        scheduler.start()
        notifier.start()
        page.start()
        log.info(
            "voxd ready: inbox %s, outbox %s, engine %s, state %s%s",
            inbox, settings.outbox_dir, engine_name, settings.state_path,
            "".join(f", notify {redact(u.get_secret_value())}" for u in settings.notify_urls),
        )
        notify("READY=1")
        notify("STATUS=idle: waiting for books in the inbox")
        if engine_name == "qwen":  # what it will run on, and why not the GPU (imports torch: not before READY)
            threading.Thread(target=log_startup, args=(settings.qwen.device, log), name="voxd-gpu-check",
                             daemon=True).start()
        worker.run()
    finally:
        notify("STOPPING=1")
        page.stop()
        watcher.stop()
        voice_watcher.stop()
        scheduler.shutdown(wait=False)
        worker.close()
        notifier.close()
        store.close()
        os.close(lock_fd)
        log.info("voxd stopped")
    return 0
