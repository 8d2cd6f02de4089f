"""The job queue and its history, in one SQLite file.

Promises (each method's docstring says which one it keeps):

* A job *is* its source file's sha256: the same book dropped twice is one job.
* A claimed job carries a lease. A daemon that dies leaves the lease to expire;
  :meth:`Store.recover` puts such jobs back in the queue, and gives up on a job
  after ``max_attempts`` so a poison file cannot crash-loop the daemon.
* Events are append-only: what happened to a job, when, in words.

Every connection runs in WAL mode with a busy timeout, so ``voxd jobs`` can read
while the daemon writes. Read-then-write transactions use ``BEGIN IMMEDIATE``:
a deferred transaction that later upgrades to a write fails with SQLITE_BUSY
instead of waiting.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .records import Event, Job, Notification, Outgoing, PlannedChapter, Status
from .schema import MIGRATIONS, SCHEMA_VERSION


class Store:
    """Jobs and events in SQLite; safe to share between threads (one connection each)."""

    def __init__(self, path: Path, *, clock=time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._local = threading.local()
        self._migrate()

    # -- connections -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), committed on success."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} was written by a newer voxd (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade voxd or point state_dir elsewhere"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")

    @property
    def schema_version(self) -> int:
        return self._connect().execute("PRAGMA user_version").fetchone()[0]

    # -- remembered values ---------------------------------------------------

    def get_value(self, key: str) -> str | None:
        """The value last stored under ``key`` with :meth:`set_value`, or None."""
        row = self._connect().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_value(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing what was there; it survives restarts."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, str(value), self._clock()),
            )

    # -- events ------------------------------------------------------------

    def _event(self, conn: sqlite3.Connection, job_id: int | None, kind: str, message: str) -> None:
        conn.execute(
            "INSERT INTO events (job_id, at, kind, message) VALUES (?, ?, ?, ?)",
            (job_id, self._clock(), kind, message),
        )

    def event(self, job_id: int | None, kind: str, message: str) -> None:
        """Append one line to the job's history."""
        with self.transaction() as conn:
            self._event(conn, job_id, kind, message)

    def events(self, job_id: int | None = None) -> list[Event]:
        conn = self._connect()
        if job_id is None:
            rows = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        else:
            rows = conn.execute("SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        return [Event(**dict(row)) for row in rows]

    # -- jobs --------------------------------------------------------------

    def put(self, sha256: str, source: Path | str, name: str | None = None) -> tuple[Job, bool]:
        """Queue the file unless its content is already a job; returns (job, created)."""
        source = str(source)
        name = name or Path(source).name
        now = self._clock()
        with self.transaction() as conn:
            row = conn.execute(
                "INSERT INTO jobs (sha256, source, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (sha256) DO NOTHING RETURNING *",
                (sha256, source, name, now, now),
            ).fetchone()
            if row is not None:
                self._event(conn, row["id"], "queued", f"queued {name}")
                return Job.from_row(row), True
            row = conn.execute("SELECT * FROM jobs WHERE sha256 = ?", (sha256,)).fetchone()
            return Job.from_row(row), False

    def get(self, job_id: int) -> Job | None:
        """The job with this id, or None: an id beyond SQLite's 64-bit integers names no job."""
        if not -(2**63) <= job_id < 2**63:
            return None
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def require(self, job_id: int) -> Job:
        """A job that exists (jobs are never deleted): a missing one is a bug, a KeyError."""
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        return job

    def by_sha256(self, sha256: str) -> Job | None:
        row = self._connect().execute("SELECT * FROM jobs WHERE sha256 = ?", (sha256,)).fetchone()
        return Job.from_row(row) if row else None

    def jobs(self, status: Status | None = None) -> list[Job]:
        conn = self._connect()
        if status is None:
            rows = conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            rows = conn.execute("SELECT * FROM jobs WHERE status = ? ORDER BY id", (status.value,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def claim(self, lease_seconds: float) -> Job | None:
        """Atomically take the oldest queued job that may run now, under a lease."""
        now = self._clock()
        with self.transaction() as conn:
            row = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?,"
                " started_at = COALESCE(started_at, ?), updated_at = ?, error = NULL, phase = NULL"
                " WHERE id = (SELECT id FROM jobs WHERE status = 'queued'"
                "             AND (not_before IS NULL OR not_before <= ?) ORDER BY id LIMIT 1)"
                " RETURNING *",
                (now + lease_seconds, now, now, now),
            ).fetchone()
            if row is None:
                return None
            self._event(conn, row["id"], "started", f"attempt {row['attempts']}")
            return Job.from_row(row)

    def heartbeat(self, job_id: int, lease_seconds: float) -> bool:
        """Extend a running job's lease; False when the job is no longer ours to run (cancelled)."""
        now = self._clock()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND status = 'running'",
                (now + lease_seconds, now, job_id),
            )
            return cur.rowcount == 1

    def progress(self, job_id: int, **values: object) -> None:
        """Record how far a running job is (chunks, audio seconds, title...)."""
        allowed = {"title", "author", "chapters", "chunks_total", "chunks_done", "audio_seconds", "render_seconds",
                   "expected_seconds", "phase", "rendered_audio_seconds", "chunks_rendered", "chunks_checked",
                   "chunks_unchecked", "unchecked_why", "chunks_flagged"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not progress fields: {sorted(unknown)}")
        if not values:
            return
        # a phase is what a job does now: one that arrives after it was cancelled, failed or done is dropped
        assignments = ", ".join("phase = CASE WHEN status IN ('queued', 'running') THEN ? END" if k == "phase"
                                else f"{k} = ?" for k in values)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",
                (*values.values(), self._clock(), job_id),
            )

    def finish(self, job_id: int, output: str, message: str = "", notify: Outgoing | None = None,
               duration: float | None = None) -> bool:
        """Mark a running job done, queueing its notification in the same transaction.
        ``duration``, the finished book's length (its pauses too), becomes its audio_seconds:
        what `voxd jobs` shows is what the log and the notification say.

        False (and nothing changes) if the job was cancelled meanwhile.
        """
        now = self._clock()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET phase = NULL, status = 'done', output = ?, lease_until = NULL, finished_at = ?,"
                " updated_at = ?, audio_seconds = COALESCE(?, audio_seconds) WHERE id = ? AND status = 'running'",
                (output, now, now, duration, job_id),
            )
            if cur.rowcount:
                self._event(conn, job_id, "done", message or f"wrote {output}")
                if notify is not None:
                    self._notification(conn, job_id, notify)
            return cur.rowcount == 1

    def fail(self, job_id: int, reason: str, notify: Outgoing | None = None) -> bool:
        """Mark a job failed for good, with the reason a person will read (and its notification)."""
        now = self._clock()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET phase = NULL, status = 'failed', error = ?, lease_until = NULL, finished_at = ?,"
                " updated_at = ? WHERE id = ? AND status IN ('running', 'queued')",
                (reason, now, now, job_id),
            )
            if cur.rowcount:
                self._event(conn, job_id, "failed", reason)
                if notify is not None:
                    self._notification(conn, job_id, notify)
            return cur.rowcount == 1

    # -- the notification outbox ---------------------------------------------

    def _notification(self, conn: sqlite3.Connection, job_id: int | None, n: Outgoing) -> int:
        return conn.execute(
            "INSERT INTO notifications (job_id, event, title, body, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            (job_id, n.event, n.title, n.body, n.kind, self._clock()),
        ).fetchone()[0]

    def add_notification(self, job_id: int | None, n: Outgoing) -> int:
        """Queue a notification that goes with no state change (job started, digest)."""
        with self.transaction() as conn:
            return self._notification(conn, job_id, n)

    def notifications(self, *, pending_only: bool = False) -> list[Notification]:
        conn = self._connect()
        if pending_only:
            rows = conn.execute(
                "SELECT * FROM notifications WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_try <= ?"
                " ORDER BY id",
                (self._clock(),),
            ).fetchall()
        else:
            rows = conn.execute("SELECT * FROM notifications ORDER BY id").fetchall()
        return [Notification(**dict(r)) for r in rows]

    def mark_delivered(self, notification_id: int, url_id: str) -> None:
        """Record that one URL has the message, so a retry or a restart never sends it there again."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE notifications SET delivered_to = trim(delivered_to || ' ' || ?) WHERE id = ?",
                (url_id, notification_id),
            )

    def mark_sent(self, notification_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE notifications SET sent_at = ? WHERE id = ?", (self._clock(), notification_id))

    def mark_attempt(self, notification_id: int, error: str, *, retry_in: float | None) -> None:
        """A failed delivery: try again after retry_in seconds, or give up (None)."""
        now = self._clock()
        with self.transaction() as conn:
            if retry_in is None:
                conn.execute(
                    "UPDATE notifications SET attempts = attempts + 1, error = ?, gave_up_at = ? WHERE id = ?",
                    (error, now, notification_id),
                )
            else:
                conn.execute(
                    "UPDATE notifications SET attempts = attempts + 1, error = ?, next_try = ? WHERE id = ?",
                    (error, now + retry_in, notification_id),
                )

    def requeue(self, job_id: int, reason: str, *, delay: float = 0.0, count_attempt: bool = True) -> bool:
        """Put a running job back in the queue (a retryable failure, or a clean shutdown). The
        reason stays as the job's ``error`` until it is claimed again: what ``voxd jobs`` shows
        of a job that waits (for the servers, for disk space) and why."""
        now = self._clock()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET phase = NULL, status = 'queued', lease_until = NULL, not_before = ?, updated_at = ?,"
                " attempts = attempts - ?, error = ? WHERE id = ? AND status = 'running'",
                (now + delay if delay else None, now, 0 if count_attempt else 1, reason, job_id),
            )
            if cur.rowcount:
                self._event(conn, job_id, "requeued", reason)
            return cur.rowcount == 1

    def release_waiting(self) -> int:
        """End every queued job's wait (a back-off, a pause): they may be claimed now."""
        with self.transaction() as conn:
            return conn.execute(
                "UPDATE jobs SET not_before = NULL, updated_at = ? WHERE status = 'queued' AND not_before IS NOT NULL",
                (self._clock(),),
            ).rowcount

    def move_source(self, job_id: int, source: Path | str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET source = ?, updated_at = ? WHERE id = ?",
                         (str(source), self._clock(), job_id))

    def cancel(self, job_id: int, *, purge: bool = False) -> bool:
        """Cancel a queued or running job; a running one stops within a second or so.

        ``purge``: its chunks are to be removed from the cache (:meth:`purgeable_keys`),
        which the worker does again once it has let go of a running job.
        """
        now = self._clock()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET phase = NULL, status = 'cancelled', lease_until = NULL, finished_at = ?,"
                " updated_at = ?, purge = ? WHERE id = ? AND status IN ('queued', 'running')",
                (now, now, int(purge), job_id),
            )
            if cur.rowcount:
                self._event(conn, job_id, "cancelled",
                            "cancelled by request" + ("; its chunks are removed from the cache" if purge else ""))
            return cur.rowcount == 1

    def retry(self, job_id: int, *, max_hours: float | None = None) -> bool:
        """Queue a finished, failed or cancelled job again, with a fresh attempt count;
        ``max_hours`` sets its own ceiling on the book's length (see ``max_book_hours``)."""
        now = self._clock()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET phase = NULL, status = 'queued', attempts = 0, error = NULL, not_before = NULL,"
                " lease_until = NULL, chunks_done = 0, finished_at = NULL, updated_at = ?, purge = 0,"
                " max_hours = COALESCE(?, max_hours)"
                " WHERE id = ? AND status IN ('done', 'failed', 'cancelled')",
                (now, max_hours, job_id),
            )
            if cur.rowcount:
                said = "" if max_hours is None else f", with max_book_hours {max_hours:g} for this book"
                self._event(conn, job_id, "queued", f"queued again by request{said}")
            return cur.rowcount == 1

    # -- each job's chunks ----------------------------------------------------

    def set_chunks(self, job_id: int, keys: Iterable[str]) -> None:
        """Record the cache keys of the job's book in book order (all of them, replacing what was
        there), numbered from 1; a key said twice is one chunk, at its first place (as ``voxd
        report`` numbers them)."""
        wanted = list(dict.fromkeys(keys))
        with self.transaction() as conn:
            # what the read-back heard of a chunk the book still has stays: it is in the cache as it was heard
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_keys (key TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM wanted_keys")
            conn.executemany("INSERT OR IGNORE INTO wanted_keys (key) VALUES (?)", ((k,) for k in wanted))
            conn.execute("DELETE FROM job_chunks WHERE job_id = ? AND key NOT IN (SELECT key FROM wanted_keys)",
                         (job_id,))
            conn.executemany("INSERT INTO job_chunks (job_id, key, position) VALUES (?, ?, ?)"
                             " ON CONFLICT (job_id, key) DO UPDATE SET position = excluded.position",
                             ((job_id, key, n) for n, key in enumerate(wanted, 1)))
            conn.execute("DELETE FROM wanted_keys")

    def set_heard(self, job_id: int, heard: Iterable[tuple[str, str]]) -> tuple[int, int]:
        """Record what the read-back heard of these chunks ((key, 'passed' | 'unchecked' | 'flagged'),
        the latest take's verdict replacing an earlier one's); returns the job's chunks heard right
        and not checked, each chunk counted once however often it was spoken."""
        with self.transaction() as conn:
            conn.executemany("UPDATE job_chunks SET heard = ? WHERE job_id = ? AND key = ?",
                             ((verdict, job_id, key) for key, verdict in heard))
            row = conn.execute("SELECT SUM(heard = 'passed') AS passed, SUM(heard = 'unchecked') AS unchecked"
                               " FROM job_chunks WHERE job_id = ?", (job_id,)).fetchone()
        return int(row["passed"] or 0), int(row["unchecked"] or 0)

    def chunk_keys(self, job_id: int, positions: Iterable[int]) -> dict[int, str]:
        """The keys at these places of the job's book (those that exist)."""
        wanted = sorted(set(positions))
        if not wanted:
            return {}
        rows = self._connect().execute(
            f"SELECT position, key FROM job_chunks WHERE job_id = ? AND position IN ({','.join('?' * len(wanted))})",
            (job_id, *wanted),
        ).fetchall()
        return {int(r["position"]): str(r["key"]) for r in rows}

    def set_plan(self, job_id: int, titles: Sequence[str], chunks: Iterable[tuple[int, str, str]]) -> None:
        """Record the job's chapter titles and every chunk as (chapter, key, pause) in book order,
        replacing an earlier run's: what a chapter is made of, to play it before the book is done."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM job_chapters WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM job_plan WHERE job_id = ?", (job_id,))
            conn.executemany("INSERT INTO job_chapters (job_id, chapter, title) VALUES (?, ?, ?)",
                             ((job_id, n, title) for n, title in enumerate(titles)))
            conn.executemany("INSERT INTO job_plan (job_id, seq, chapter, key, pause) VALUES (?, ?, ?, ?, ?)",
                             ((job_id, seq, chapter, key, pause) for seq, (chapter, key, pause) in enumerate(chunks)))

    def chapters(self, job_id: int) -> list[PlannedChapter]:
        """The job's chapters as its last run read them, each with its chunks in order; empty
        until the book has been read."""
        conn = self._connect()
        titles = conn.execute("SELECT chapter, title FROM job_chapters WHERE job_id = ? ORDER BY chapter",
                              (job_id,)).fetchall()
        chunks: dict[int, list[tuple[str, str]]] = {}
        for row in conn.execute("SELECT chapter, key, pause FROM job_plan WHERE job_id = ? ORDER BY seq", (job_id,)):
            chunks.setdefault(int(row["chapter"]), []).append((str(row["key"]), str(row["pause"])))
        return [PlannedChapter(index=int(r["chapter"]), title=str(r["title"]),
                               chunks=tuple(chunks.get(int(r["chapter"]), ()))) for r in titles]

    def set_flags(self, job_id: int, flags: Iterable[dict]) -> None:
        """The job's flagged chunks (replacing those of its earlier runs): each a dict of
        position, chapter, idx, start, key, text, why, heard, error, takes."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM chunk_flags WHERE job_id = ?", (job_id,))
            conn.executemany(
                "INSERT OR REPLACE INTO chunk_flags (job_id, position, chapter, idx, start, key, text, why, heard,"
                " error, takes) VALUES (:job_id, :position, :chapter, :idx, :start, :key, :text, :why, :heard,"
                " :error, :takes)",
                ({**f, "job_id": job_id} for f in flags),
            )

    def flags(self, job_id: int) -> list[dict]:
        """The job's flagged chunks, in book order."""
        rows = self._connect().execute("SELECT * FROM chunk_flags WHERE job_id = ? ORDER BY position", (job_id,))
        return [{k: r[k] for k in r.keys() if k != "job_id"} for r in rows.fetchall()]  # noqa: SIM118 (a Row)

    def purgeable_keys(self, job_id: int) -> list[str]:
        """The job's chunk keys that no other queued, running or finished job uses: what
        removing its chunks may remove without costing another book anything."""
        rows = self._connect().execute(
            "SELECT key FROM job_chunks WHERE job_id = ? AND key NOT IN ("
            " SELECT c.key FROM job_chunks c JOIN jobs j ON j.id = c.job_id"
            " WHERE c.job_id != ? AND j.status IN ('queued', 'running', 'done'))",
            (job_id, job_id),
        ).fetchall()
        return [row["key"] for row in rows]

    def recover(self, max_attempts: int, *, all_running: bool = False) -> list[Job]:
        """Return running jobs whose lease ran out to the queue, or fail them after max_attempts.

        ``all_running`` is for start-up: the daemon holds the state directory's lock,
        so every job still marked running belongs to a process that died.
        """
        now = self._clock()
        touched: list[Job] = []
        with self.transaction() as conn:
            if all_running:
                rows = conn.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE status = 'running' AND lease_until < ?", (now,)
                ).fetchall()
            for row in rows:
                if row["attempts"] >= max_attempts:
                    reason = (
                        f"gave up after {row['attempts']} attempts: voxd stopped unexpectedly during "
                        "each of them (see the log for a crash or out-of-memory kill)"
                    )
                    conn.execute(
                        "UPDATE jobs SET phase = NULL, status = 'failed', error = ?, lease_until = NULL,"
                        " finished_at = ?, updated_at = ? WHERE id = ?",
                        (reason, now, now, row["id"]),
                    )
                    self._event(conn, row["id"], "failed", reason)
                else:
                    conn.execute(
                        "UPDATE jobs SET phase = NULL, status = 'queued', lease_until = NULL, updated_at = ?"
                        " WHERE id = ?",
                        (now, row["id"]),
                    )
                    self._event(conn, row["id"], "recovered", "lease expired; the job is queued again")
                touched.append(Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()))
        return touched
