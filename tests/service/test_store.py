"""The job store against a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from voxd.service.records import Status
from voxd.service.store import SCHEMA_VERSION, Store


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> Store:
    return Store(tmp_path / "voxd.sqlite3", clock=clock)


def test_schema_is_versioned_and_wal(store, tmp_path):
    conn = sqlite3.connect(tmp_path / "voxd.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version == SCHEMA_VERSION


def test_reopening_keeps_jobs(tmp_path):
    Store(tmp_path / "db").put("a" * 64, "/in/book.epub")
    again = Store(tmp_path / "db")
    assert [j.name for j in again.jobs()] == ["book.epub"]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db"
    Store(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer voxd"):
        Store(path)


def test_same_content_is_one_job(store):
    job, created = store.put("a" * 64, "/in/book.epub")
    again, created_again = store.put("a" * 64, "/in/copy of book.epub")
    assert created and not created_again
    assert again.id == job.id
    assert len(store.jobs()) == 1
    assert job.status is Status.QUEUED


def test_claim_takes_oldest_and_leases(store, clock):
    first, _ = store.put("a" * 64, "/in/a.epub")
    store.put("b" * 64, "/in/b.epub")
    job = store.claim(lease_seconds=60)
    assert job.id == first.id
    assert job.status is Status.RUNNING
    assert job.attempts == 1
    assert job.lease_until == clock.t + 60
    assert store.claim(60).name == "b.epub"
    assert store.claim(60) is None


def test_claims_from_threads_never_share_a_job(tmp_path):
    path = tmp_path / "db"
    store = Store(path)
    for n in range(40):
        store.put(f"{n:064d}", f"/in/{n}.epub")
    claimed: list[int] = []
    lock = threading.Lock()

    def worker():
        mine = Store(path)
        while (job := mine.claim(60)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(j.id for j in store.jobs())


def test_finish_and_events(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    assert store.finish(job.id, "/out/a.m4b")
    done = store.get(job.id)
    assert done.status is Status.DONE and done.output == "/out/a.m4b" and done.lease_until is None
    assert [e.kind for e in store.events(job.id)] == ["queued", "started", "done"]


def test_fail_records_reason(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    store.fail(job.id, "a.epub: not a valid EPUB")
    failed = store.get(job.id)
    assert failed.status is Status.FAILED and failed.error == "a.epub: not a valid EPUB"
    assert store.events(job.id)[-1].message == "a.epub: not a valid EPUB"


def test_expired_lease_goes_back_to_queue(store, clock):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(lease_seconds=60)
    clock.t += 30
    assert store.recover(max_attempts=3) == []  # lease still valid
    clock.t += 31
    [recovered] = store.recover(max_attempts=3)
    assert recovered.status is Status.QUEUED
    again = store.claim(60)
    assert again.id == job.id and again.attempts == 2


def test_heartbeat_extends_lease(store, clock):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(lease_seconds=60)
    clock.t += 50
    assert store.heartbeat(job.id, 60)
    clock.t += 50
    assert store.recover(max_attempts=3) == []


def test_startup_recovery_takes_all_running(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(lease_seconds=3600)
    [recovered] = store.recover(max_attempts=3, all_running=True)
    assert recovered.id == job.id and recovered.status is Status.QUEUED


def test_poison_job_fails_after_max_attempts(store, clock):
    job, _ = store.put("a" * 64, "/in/a.epub")
    for _ in range(3):
        store.claim(60)
        clock.t += 61
        store.recover(max_attempts=3)
    final = store.get(job.id)
    assert final.status is Status.FAILED
    assert "gave up after 3 attempts" in final.error


def test_requeue_on_shutdown_does_not_count(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    store.requeue(job.id, "stopping", count_attempt=False)
    assert store.get(job.id).attempts == 0
    assert store.claim(60).attempts == 1


def test_requeue_with_delay_waits(store, clock):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    store.requeue(job.id, "out of memory", delay=100)
    assert store.claim(60) is None
    assert store.get(job.id).error == "out of memory"  # why it waits, for voxd jobs
    clock.t += 101
    assert store.claim(60).id == job.id
    assert store.get(job.id).error is None  # running again: the reason is past


def test_cancel_stops_finish(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    assert store.cancel(job.id)
    assert not store.heartbeat(job.id, 60)
    assert not store.finish(job.id, "/out/a.m4b")
    assert store.get(job.id).status is Status.CANCELLED
    assert not store.cancel(job.id)


def test_a_stopped_job_keeps_no_eta_or_phase(store):
    """A cancelled (or failed, finished, requeued) job has no time left and does nothing: `voxd jobs
    --json` shows neither, even when the worker's last progress lands after a cancel."""
    stopped = []
    for n, stop in enumerate((lambda i: store.cancel(i), lambda i: store.fail(i, "bad"),
                              lambda i: store.finish(i, "/out/a.m4b"), lambda i: store.requeue(i, "later"))):
        job, _ = store.put(f"{n:064d}", f"/in/{n}.epub")
        store.claim(60)
        store.progress(job.id, chunks_total=100, chunks_done=25, render_seconds=50.0, chunks_rendered=25,
                       phase="downloading Qwen/x: 1.0 of 4.5 GB (22%)")
        assert store.get(job.id).eta_seconds is not None and store.get(job.id).phase
        stop(job.id)
        stopped.append(store.get(job.id))
        if n < 3:  # ended: the worker's last word, a moment late, changes nothing
            store.progress(job.id, phase="downloading Qwen/x: 1.1 of 4.5 GB (24%)")
            stopped.append(store.get(job.id))
    assert [(j.eta_seconds, j.phase) for j in stopped] == [(None, None)] * 7, stopped


def test_retry_only_finished_jobs(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    assert not store.retry(job.id)  # queued
    store.claim(60)
    store.fail(job.id, "bad")
    assert store.retry(job.id)
    again = store.get(job.id)
    assert again.status is Status.QUEUED and again.attempts == 0 and again.error is None


def test_progress_and_eta(store, clock):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    store.progress(job.id, chunks_total=100, chunks_done=25, audio_seconds=500.0, render_seconds=50.0,
                   rendered_audio_seconds=500.0, chunks_rendered=25, title="Emma", author="Jane Austen", chapters=55)
    j = store.get(job.id)
    assert (j.title, j.author, j.chapters) == ("Emma", "Jane Austen", 55)
    assert j.speed == pytest.approx(10.0)
    assert j.eta_seconds == pytest.approx(150.0)
    with pytest.raises(ValueError):
        store.progress(job.id, status="done")


def test_a_resumed_jobs_speed_and_eta_count_what_this_run_rendered(store):
    # 60 of 100 chunks were in the cache from an earlier run; this run rendered 20 more
    # (100 s of audio) in 50 s: 2x, and 20 chunks left at 2.5 s each.
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    store.progress(job.id, chunks_total=100, chunks_done=80, audio_seconds=400.0, render_seconds=50.0,
                   rendered_audio_seconds=100.0, chunks_rendered=20)
    j = store.require(job.id)
    assert j.speed == pytest.approx(2.0)  # not 400 / 50
    assert j.eta_seconds == pytest.approx(50.0)  # not 20 x 50 / 80
    # a run that found everything in the cache measured no pace at all
    store.progress(job.id, chunks_done=100, audio_seconds=500.0, render_seconds=0.2, rendered_audio_seconds=0.0,
                   chunks_rendered=0)
    assert store.require(job.id).speed is None
    # done: the book's length, pauses and all, as the log and the notification say it
    assert store.finish(job.id, "/out/a.m4b", duration=531.5)
    assert store.require(job.id).audio_seconds == 531.5


def test_reader_sees_no_lock_while_writer_writes(tmp_path):
    path = tmp_path / "db"
    writer = Store(path)
    job, _ = writer.put("a" * 64, "/in/a.epub")
    writer.claim(3600)
    stop = threading.Event()
    errors: list[Exception] = []

    def write():
        n = 0
        while not stop.is_set():
            n += 1
            writer.progress(job.id, chunks_done=n)

    t = threading.Thread(target=write)
    t.start()
    reader = Store(path)
    try:
        for _ in range(300):
            try:
                reader.jobs()
            except sqlite3.OperationalError as exc:
                errors.append(exc)
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert reader.get(job.id).chunks_done > 0


def test_version_1_database_is_migrated_in_place(tmp_path):
    from voxd.service.schema import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[1].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO jobs (sha256, source, name, created_at, updated_at) VALUES ('x', '/a', 'a', 1, 1)")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    assert [j.name for j in store.jobs()] == ["a"]
    assert store.notifications() == []


def test_phase_says_what_a_running_job_does_and_a_new_claim_clears_it(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    store.progress(job.id, phase="downloading Qwen/X: 1.23 of 4.52 GB (27%)")
    assert store.require(job.id).phase == "downloading Qwen/X: 1.23 of 4.52 GB (27%)"
    store.requeue(job.id, "voxd is stopping", count_attempt=False)
    store.claim(60)
    assert store.require(job.id).phase is None


def test_version_3_database_gains_the_newer_columns(tmp_path):
    from voxd.service.schema import MIGRATIONS

    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path)
    for version in (1, 2, 3):
        for statement in MIGRATIONS[version].split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO jobs (sha256, source, name, created_at, updated_at, chunks_done, audio_seconds,"
                 " render_seconds) VALUES ('x', '/a', 'a', 1, 1, 40, 600.0, 60.0)")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION == 9
    [job] = store.jobs()
    assert job.chunks_checked == job.chunks_flagged == job.chunks_unchecked == 0  # 7: the read-back
    assert store.chapters(job.id) == []  # 8: each job's chapters, for the web page
    assert store.flags(job.id) == []
    assert job.name == "a" and job.phase is None  # 5: the fetch phase
    assert job.speed == 10.0 and job.chunks_rendered == 40  # 6: what a run rendered itself, as known before
    assert job.expected_seconds is None and job.max_hours is None and not job.purge  # 4: lengths, purges


def test_a_job_s_chunks_keep_their_places_and_its_flags_are_replaced_by_each_run(tmp_path):
    store = Store(tmp_path / "voxd.sqlite3")
    job, _ = store.put("a" * 64, tmp_path / "a.epub")
    store.set_chunks(job.id, ["k1", "k2", "k1", "k3"])  # a text said twice is one chunk, at its first place
    assert store.chunk_keys(job.id, [1, 2, 3, 9]) == {1: "k1", 2: "k2", 3: "k3"}
    assert store.chunk_keys(job.id, []) == {}
    flag = {"position": 2, "chapter": 1, "idx": 2, "start": 12.5, "key": "k2", "text": "Two.", "why": "heard else",
            "heard": "Too.", "error": 0.5, "takes": 3}
    store.set_flags(job.id, [flag])
    assert store.flags(job.id) == [flag]
    store.set_flags(job.id, [])
    assert store.flags(job.id) == []


def test_a_jobs_plan_keeps_each_chapter_and_every_chunk_in_order_with_its_pause(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    job, _ = store.put("a" * 64, "/in/a.epub")
    # a text said twice is one chunk to render, but twice in the chapter
    store.set_plan(job.id, ["One", "Two"], [(0, "k1", "sentence"), (0, "k2", "paragraph"), (0, "k1", "chapter"),
                                            (1, "k3", "chapter")])
    one, two = store.chapters(job.id)
    assert (one.index, one.title, one.chunks) == (0, "One", (("k1", "sentence"), ("k2", "paragraph"),
                                                             ("k1", "chapter")))
    assert (two.index, two.title, two.chunks) == (1, "Two", (("k3", "chapter"),))
    # a new run's reading replaces the last one's
    store.set_plan(job.id, ["Only"], [(0, "k9", "chapter")])
    assert [(c.title, c.chunks) for c in store.chapters(job.id)] == [("Only", (("k9", "chapter"),))]
    other, _ = store.put("b" * 64, "/in/b.epub")
    assert store.chapters(other.id) == []


def test_what_was_heard_is_counted_once_per_chunk_and_kept_while_the_book_keeps_the_chunk(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.set_chunks(job.id, ["k1", "k2", "k3"])
    assert store.set_heard(job.id, [("k1", "passed"), ("k2", "unchecked"), ("k3", "flagged")]) == (1, 1)
    # a second run speaks k1 again (heard right again) and k3 (now right): each counted once
    assert store.set_heard(job.id, [("k1", "passed"), ("k3", "passed")]) == (2, 1)
    # the book read again keeps what was heard of the chunks it still has, and forgets the rest
    store.set_chunks(job.id, ["k3", "k4"])
    assert store.set_heard(job.id, []) == (1, 0)
    assert store.chunk_keys(job.id, [1, 2]) == {1: "k3", 2: "k4"}
