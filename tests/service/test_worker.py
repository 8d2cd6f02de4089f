"""The worker in-process, with a real store, real books, the real eSpeak engine and real folders."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from voxd.config import Settings
from voxd.errors import EngineError
from voxd.samples import build_sample
from voxd.service.notify import Notifier
from voxd.service.records import Status
from voxd.service.store import Store
from voxd.service.watch import enqueue
from voxd.service.worker import Worker, format_duration
from voxd.tts import base

from ..support import Spy


class Engine(Spy, base.Engine):
    """The real eSpeak engine with a hook that runs before each batch."""

    def __init__(self, before=None):
        super().__init__()
        self.before = before
        self.calls = 0

    def synthesize(self, batch, *, seed=None):
        self.calls += 1
        if self.before:
            self.before(self.calls)
        return self.real.synthesize(batch)


@pytest.fixture
def env(tmp_path):
    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", state_dir=tmp_path / "state",
                        engine="espeak", espeak={"batch_size": 2})
    settings.inbox_dir.mkdir(parents=True)
    store = Store(settings.db_path)
    return settings, store


def make_worker(settings, store, engine=None):
    engine = engine or Engine()
    return Worker(settings, store, lambda: engine, Notifier(store, []), stop=threading.Event()), engine


def queue(settings, store, path: Path):
    job, what = enqueue(store, path, settings.inbox_dir / "done")
    assert what == "queued"
    return store.claim(settings.lease_seconds)


def test_good_book_is_published_and_source_moved(env):
    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")
    worker, _ = make_worker(settings, store)
    job = queue(settings, store, src)
    worker.process(job)
    done = store.get(job.id)
    assert done.status is Status.DONE
    assert Path(done.output).is_file()
    assert Path(done.output).parent.parent.name == "Lewis Carroll"
    assert (settings.inbox_dir / "done" / "alice.epub").is_file() and not src.exists()
    assert done.source == str(settings.inbox_dir / "done" / "alice.epub")
    assert done.chunks_done == done.chunks_total and done.audio_seconds > 10 and done.chapters == 3


def test_corrupt_book_fails_with_note(env):
    settings, store = env
    src = settings.inbox_dir / "broken.epub"
    src.write_bytes(b"PK\x03\x04 truncated zip")
    worker, _ = make_worker(settings, store)
    job = queue(settings, store, src)
    worker.process(job)
    failed = store.get(job.id)
    assert failed.status is Status.FAILED
    assert "broken.epub" in failed.error
    note = settings.inbox_dir / "failed" / "broken.epub.error.txt"
    assert (settings.inbox_dir / "failed" / "broken.epub").is_file()
    assert failed.error in note.read_text() and f"voxd retry {job.id}" in note.read_text()


def test_unsupported_file_type_fails(env):
    settings, store = env
    src = settings.inbox_dir / "notes.txt"
    src.write_text("hello")
    worker, _ = make_worker(settings, store)
    job = queue(settings, store, src)
    worker.process(job)
    assert "unsupported file type" in store.get(job.id).error
    # retrying the same bytes cannot help: the note says what voxd reads instead
    note = (settings.inbox_dir / "failed" / "notes.txt.error.txt").read_text()
    assert "voxd retry" not in note, note
    assert "convert it to EPUB or PDF" in note and "drop that into the inbox" in note


def test_deleted_while_queued(env):
    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")
    worker, _ = make_worker(settings, store)
    job = queue(settings, store, src)
    src.unlink()
    worker.process(job)
    assert "no longer in the inbox" in store.get(job.id).error


def test_replaced_by_new_version_fails_old_job_and_keeps_the_file(env):
    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")
    worker, _ = make_worker(settings, store)
    job = queue(settings, store, src)
    src.write_bytes(src.read_bytes() + b"\0")  # a different version under the same name
    worker.process(job)
    assert "replaced by a different version" in store.get(job.id).error
    assert src.exists()


def test_cancel_during_render_stops_between_batches(env):
    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")
    holder = {}
    engine = Engine(before=lambda n: store.cancel(holder["job"].id) if n == 1 else None)
    worker, _ = make_worker(settings, store, engine)
    holder["job"] = job = queue(settings, store, src)
    worker.process(job)
    assert store.get(job.id).status is Status.CANCELLED
    assert engine.calls == 1
    assert not list(settings.outbox_dir.rglob("*.m4b"))


def test_engine_failure_retries_then_gives_up(env):
    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")

    def boom(_):
        raise EngineError("CUDA error: device lost")

    worker, _ = make_worker(settings, store, Engine(before=boom))
    job = queue(settings, store, src)
    worker.process(job)
    j = store.get(job.id)
    assert j.status is Status.QUEUED and j.not_before is not None  # back-off
    for _ in range(settings.max_attempts - 1):
        store._connect().execute("UPDATE jobs SET not_before = NULL")
        worker.process(store.claim(60))
    final = store.get(job.id)
    assert final.status is Status.FAILED
    assert "device lost" in final.error and "gave up after 3 attempts" in final.error


def test_audio_gone_from_the_cache_before_assembly_is_retried_not_failed(env):
    """Not the book's fault: the job backs off and the next attempt renders that audio again."""
    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")

    def lose_the_first_batch(n):
        if n == 2:  # the first batch's audio is gone before the assembler wrote any of it
            for cached in settings.cache_path.rglob("*.vxa"):
                cached.unlink()

    worker, _ = make_worker(settings, store, Engine(before=lose_the_first_batch))
    job = queue(settings, store, src)
    worker.process(job)
    j = store.get(job.id)
    assert j.status is Status.QUEUED and j.not_before is not None and j.attempts == 1  # back-off, not failed
    assert "missing from the cache" in store.events(job.id)[-1].message
    assert src.is_file() and not (settings.inbox_dir / "failed").exists()
    store._connect().execute("UPDATE jobs SET not_before = NULL")
    worker.process(store.claim(60))
    done = store.get(job.id)
    assert done.status is Status.DONE and Path(done.output).is_file()


def test_closed_window_requeues_without_counting(env, tmp_path):
    settings, store = env
    now = datetime.now()
    closed = f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"
    settings = settings.model_copy(update={"render_window": closed})
    src = build_sample(settings.inbox_dir / "alice.epub")
    worker, engine = make_worker(settings, store)
    job = queue(settings, store, src)
    worker.process(job)
    j = store.get(job.id)
    assert j.status is Status.QUEUED and j.attempts == 0
    assert engine.calls == 0
    assert "render window" in store.events(job.id)[-1].message


def test_format_duration():
    assert format_duration(59.6) == "1m00s"
    assert format_duration(3725) == "1h02m05s"


def test_a_models_download_is_a_phase_that_pings_and_a_stop_ends_it(env):
    """The engine's fetch reports progress; the worker makes each report a ping with the status, shows
    it as the job's phase in voxd jobs, and a stop during the download requeues the job at once."""
    from voxd.tts.hub import FetchProgress

    settings, store = env
    src = build_sample(settings.inbox_dir / "alice.epub")
    said: list[str | None] = []
    phases: list[str | None] = []

    class Fetching(Engine):
        def prepare(self, voices, report=None):
            report(FetchProgress("Qwen/X", 1_000_000, 4_000_000))
            phases.append(store.require(job.id).phase)
            worker.stop.set()  # SIGTERM while the model downloads
            report(FetchProgress("Qwen/X", 2_000_000, 4_000_000))

    engine = Fetching()
    worker = Worker(settings, store, lambda: engine, Notifier(store, []), stop=threading.Event(), alive=said.append)
    job = queue(settings, store, src)
    worker.process(job)
    assert f"job {job.id}: downloading Qwen/X: 1.0 of 4.0 MB (25%)" in said
    assert phases == ["downloading Qwen/X: 1.0 of 4.0 MB (25%)"]
    after = store.require(job.id)
    assert after.status is Status.QUEUED and after.attempts == 0 and engine.calls == 0
    assert "stopping" in store.events(job.id)[-1].message


@pytest.mark.slow
def test_a_pause_holds_the_queue_and_a_reload_ends_the_wait(env):
    """A pause is for what every book needs (the servers, the disk): the next book is not read
    only to pause too, every retry_delay_seconds, all night. A reload ends the wait at once."""
    from voxd.errors import ServersUnavailable
    from voxd.samples import build_epub

    settings, store = env

    def down(_calls):
        raise ServersUnavailable("no speech server answered: http://gpu-box:8000/v1: refused the connection")

    for n in range(3):
        book = build_epub(settings.inbox_dir / f"b{n}.epub", title=f"Book {n}", authors=("A",),
                          chapters=[("One", [f"Book {n} has a sentence or two to speak."])])
        enqueue(store, book, settings.inbox_dir / "done")
    worker, engine = make_worker(settings, store, Engine(before=down))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        paused = lambda: [j for j in store.jobs() if j.status is Status.QUEUED and j.error]  # noqa: E731
        deadline = time.monotonic() + 60
        while not paused() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # a worker that went on would have read the next book by now
        [first] = paused()
        assert "no speech server answered" in first.error and first.attempts == 0
        assert [j.chunks_total for j in store.jobs() if j.id != first.id] == [None, None]  # not even read
        pauses = lambda: [e for e in store.events(first.id) if e.kind == "requeued"]  # noqa: E731
        assert len(pauses()) == 1
        worker.resume()  # as a reload does
        deadline = time.monotonic() + 60
        while len(pauses()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pauses()) == 2  # tried again at once, not a minute later
    finally:
        worker.stop.set()
        worker.wake.set()
        thread.join(30)
    assert not thread.is_alive()


def test_the_log_says_why_the_chunks_to_speak_are_fewer(env, caplog):
    """A text said twice is spoken once (one cache key): the log's count and the progress's differ,
    and the log says why."""
    from tests.ingest.test_epub import build_epub

    settings, store = env
    body = "<h1>Refrain</h1><p>The bell rang over the quiet harbour, and nobody answered it.</p>"
    src = build_epub(settings.inbox_dir / "refrain.epub",
                     [("a.xhtml", "Refrain", body), ("b.xhtml", "Refrain", body),
                      ("c.xhtml", "Coda", "<h1>Coda</h1><p>Then the boats came home.</p>")])
    worker, _ = make_worker(settings, store)
    job = queue(settings, store, src)
    with caplog.at_level("INFO", logger="voxd.service.worker"):
        worker.process(job)
    done = store.require(job.id)
    assert done.status is Status.DONE and done.chunks_total == 4
    [line] = [r.getMessage() for r in caplog.records if "chapters," in r.getMessage()]
    assert "3 chapters, 6 chunks (4 to speak: 2 repeat a text said before and are spoken once)" in line, line
