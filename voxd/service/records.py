"""What the job store holds, as Python sees it: a job, its planned chapters, its events and
notifications. Plain frozen dataclasses built from SQLite rows, kept apart from
:mod:`voxd.service.store` so that code that only reads them imports no SQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from enum import Enum


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A rendered notification, before it is stored."""

    event: str
    title: str
    body: str
    kind: str = "info"


class Status(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    sha256: str
    source: str
    name: str
    status: Status
    attempts: int
    lease_until: float | None
    not_before: float | None
    title: str | None
    author: str | None
    chapters: int | None
    chunks_total: int | None
    chunks_done: int
    audio_seconds: float
    render_seconds: float
    output: str | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    expected_seconds: float | None  # the audio its text predicts, known once it is read
    max_hours: float | None  # this job's max_book_hours, when set apart from the config's
    purge: bool  # cancelled with --purge: its chunks go when the worker lets go of it
    phase: str | None = None  # what the running job does besides rendering (fetching a model)
    rendered_audio_seconds: float = 0.0  # of the chunks this run rendered (render_seconds is this run's)
    chunks_rendered: int = 0  # by this run; the others came from the cache
    chunks_checked: int = 0  # heard right by the read-back
    chunks_unchecked: int = 0  # that it could not check, for unchecked_why
    unchecked_why: str | None = None
    chunks_flagged: int = 0  # no take of them was heard right: `voxd report` lists them

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["status"] = Status(values["status"])
        values["purge"] = bool(values["purge"])
        return cls(**values)

    @property
    def speed(self) -> float | None:
        """Audio seconds rendered per wall second, once there is something to measure: of the
        chunks this run rendered, not of those it found in the cache (a resumed book would
        otherwise look several times faster than the engine)."""
        if self.render_seconds > 0 and self.rendered_audio_seconds > 0:
            return self.rendered_audio_seconds / self.render_seconds
        return None

    @property
    def eta_seconds(self) -> float | None:
        """Time left at the measured pace, assuming the chunks left are like the ones this
        run rendered. None for a job that is not running: a cancelled or failed one has no time left."""
        if self.status is not Status.RUNNING:
            return None
        if not self.chunks_total or self.chunks_rendered <= 0 or self.render_seconds <= 0:
            return None
        per_chunk = self.render_seconds / self.chunks_rendered
        return max(0.0, (self.chunks_total - self.chunks_done) * per_chunk)


@dataclass(frozen=True, slots=True)
class PlannedChapter:
    """A chapter of a job's book: its place (0-based), title and chunks as (key, pause) in order."""

    index: int
    title: str
    chunks: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Notification:
    """A message waiting in (or delivered from) the notification outbox."""

    id: int
    job_id: int | None
    event: str
    title: str
    body: str
    kind: str
    created_at: float
    delivered_to: str  # space-separated ids of the URLs that already have it
    attempts: int
    next_try: float
    sent_at: float | None
    gave_up_at: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    job_id: int | None
    at: float
    kind: str
    message: str
