"""What ``voxd jobs`` prints: one line per job, the columns lined up, whatever the names hold.

Titles, file names and error messages come from strangers' files: a newline or a
tab in one must not start a new row, a control character must not move the
terminal's cursor (it is shown escaped, :mod:`voxd.terminal`), and a Chinese or Japanese
title takes two columns per character on screen, not one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..terminal import one_line
from ..verify.report import summary
from .records import Job
from .worker import format_duration

HEADER = ("ID", "STATUS", "BOOK", "CH", "CHUNKS", "AUDIO", "SPEED", "ETA / NOTE")
BOOK_WIDTH = 40
#: The note is never cut narrower than this, however narrow the terminal: a line that wraps
#: is better than a reason nobody can read.
NOTE_MIN_WIDTH = 30


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide (CJK) characters two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def clip(text: str, columns: int) -> str:
    """``text`` cut to at most ``columns`` terminal columns, "…" marking a cut."""
    if width(text) <= columns:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > columns - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def audio(job: Job) -> str:
    """Rendered audio, and what the whole book will be once its text is known."""
    done = format_duration(job.audio_seconds) if job.audio_seconds else ""
    if job.expected_seconds and job.status.value in ("queued", "running", "failed", "cancelled"):
        expected = "~" + format_duration(job.expected_seconds)
        return f"{done} of {expected}" if done else expected
    return done or "-"


def table(jobs: Sequence[Job], columns: int = 0) -> str:
    """The job table. ``columns``: the terminal's width, which the last column (the ETA, or why a
    job failed or waits) is cut to fit; 0 (not a terminal: a pipe, a file) cuts nothing."""
    rows: list[tuple[str, ...]] = [HEADER]
    for job in jobs:
        read = summary(job)
        chunks = f"{job.chunks_done}/{job.chunks_total}" if job.chunks_total else "-"
        speed = f"{job.speed:.1f}x" if job.speed else "-"
        if job.status.value == "running" and job.phase:
            note = one_line(job.phase)
        elif job.status.value == "running" and job.eta_seconds is not None:
            note = format_duration(job.eta_seconds) + (f"; {read}" if read else "")
        elif job.status.value in ("failed", "queued"):  # a queued job's error: why it waits
            note = one_line(job.error or "")
        elif job.status.value == "done":
            note = one_line(job.output or "") + (f" ({read})" if read else "")
        else:
            note = ""
        rows.append((
            str(job.id), job.status.value, clip(one_line(job.title or job.name), BOOK_WIDTH),
            str(job.chapters or "-"), chunks, audio(job), speed, note,
        ))
    widths = [max(width(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    room = columns - sum(widths) - 2 * len(widths) if columns > 0 else 0
    return "\n".join(
        ("  ".join(pad(cell, w) for cell, w in zip(r[:-1], widths)) + "  "
         + (clip(r[-1], max(room, NOTE_MIN_WIDTH)) if columns > 0 else r[-1])).rstrip()
        for r in rows
    )
