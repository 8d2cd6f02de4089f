"""The job store's SQLite schema, one migration per version (``PRAGMA user_version``).

Kept apart from :mod:`voxd.service.store` because it only grows: a migration, once released, is
never edited, and a database of any earlier version is brought up to date in place.
"""

from __future__ import annotations

SCHEMA_VERSION = 9

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        id            INTEGER PRIMARY KEY,
        sha256        TEXT NOT NULL UNIQUE,
        source        TEXT NOT NULL,
        name          TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        attempts      INTEGER NOT NULL DEFAULT 0,
        lease_until   REAL,
        not_before    REAL,
        title         TEXT,
        author        TEXT,
        chapters      INTEGER,
        chunks_total  INTEGER,
        chunks_done   INTEGER NOT NULL DEFAULT 0,
        audio_seconds REAL NOT NULL DEFAULT 0,
        render_seconds REAL NOT NULL DEFAULT 0,
        output        TEXT,
        error         TEXT,
        created_at    REAL NOT NULL,
        started_at    REAL,
        finished_at   REAL,
        updated_at    REAL NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status, id);
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        job_id  INTEGER REFERENCES jobs (id) ON DELETE CASCADE,
        at      REAL NOT NULL,
        kind    TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_job ON events (job_id, id);
    """,
    # Notifications are an outbox: written in the same transaction as the outcome they
    # announce, delivered by a background thread, marked sent per URL. A crash can
    # neither lose one nor send one twice (short of dying between delivery and marking).
    2: """
    CREATE TABLE notifications (
        id            INTEGER PRIMARY KEY,
        job_id        INTEGER REFERENCES jobs (id) ON DELETE CASCADE,
        event         TEXT NOT NULL,
        title         TEXT NOT NULL,
        body          TEXT NOT NULL,
        kind          TEXT NOT NULL,
        created_at    REAL NOT NULL,
        delivered_to  TEXT NOT NULL DEFAULT '',
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_try      REAL NOT NULL DEFAULT 0,
        sent_at       REAL,
        gave_up_at    REAL,
        error         TEXT
    );
    CREATE INDEX notifications_pending ON notifications (sent_at, gave_up_at, next_try);
    """,
    # Small things learned while running, kept across restarts (e.g. the batch size
    # that fits a model on a GPU after an out-of-memory).
    3: """
    CREATE TABLE kv (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # A book's expected length (stated before its render), a ceiling set for one job
    # (`voxd retry --max-hours`), and each job's chunk keys, so that a cancelled book's
    # chunks can be removed (`voxd cancel --purge`) without those other books share.
    4: """
    ALTER TABLE jobs ADD COLUMN expected_seconds REAL;
    ALTER TABLE jobs ADD COLUMN max_hours REAL;
    ALTER TABLE jobs ADD COLUMN purge INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE job_chunks (
        job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        key    TEXT NOT NULL,
        PRIMARY KEY (job_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX job_chunks_key ON job_chunks (key, job_id);
    """,
    # What a running job does besides rendering, in words (fetching a model: "downloading
    # Qwen/...: 1.23 of 4.52 GB (27%)"); cleared when the job is claimed again.
    5: """
    ALTER TABLE jobs ADD COLUMN phase TEXT;
    """,
    # What this run rendered itself, as against found in the cache: a resumed job's speed
    # and ETA are measured on these (its render_seconds are this run's too).
    6: """
    ALTER TABLE jobs ADD COLUMN rendered_audio_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN chunks_rendered INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET rendered_audio_seconds = audio_seconds, chunks_rendered = chunks_done;
    """,
    # The read-back: how many of a job's chunks were heard right, could not be checked (and
    # why), or stayed wrong; each flagged chunk for `voxd report`; and each chunk's place in
    # the book, so that `voxd retry --chunks 12,40` can name them as the report numbers them.
    7: """
    ALTER TABLE jobs ADD COLUMN chunks_checked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN chunks_unchecked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN unchecked_why TEXT;
    ALTER TABLE jobs ADD COLUMN chunks_flagged INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE job_chunks ADD COLUMN position INTEGER;
    CREATE TABLE chunk_flags (
        job_id   INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        chapter  INTEGER NOT NULL,
        idx      INTEGER NOT NULL,
        start    REAL,
        key      TEXT NOT NULL,
        text     TEXT NOT NULL,
        why      TEXT NOT NULL,
        heard    TEXT,
        error    REAL,
        takes    INTEGER NOT NULL,
        PRIMARY KEY (job_id, position)
    );
    """,
    # Each job's chapters and every chunk of each in order with the pause after it (a text
    # said twice is there twice): what the web page lists and plays a chapter from, while the
    # rest of the book renders.
    8: """
    CREATE TABLE job_chapters (
        job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        chapter INTEGER NOT NULL,
        title   TEXT NOT NULL,
        PRIMARY KEY (job_id, chapter)
    ) WITHOUT ROWID;
    CREATE TABLE job_plan (
        job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        chapter INTEGER NOT NULL,
        key     TEXT NOT NULL,
        pause   TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) WITHOUT ROWID;
    """,
    # What the read-back heard of each of a job's chunks ('passed', 'unchecked', 'flagged'): the
    # job's counts are counted from these, so a chunk spoken again by a retry is counted once.
    9: """
    ALTER TABLE job_chunks ADD COLUMN heard TEXT;
    """,
}
