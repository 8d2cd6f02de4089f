"""When rendering may run: an optional daily window such as 23:00-07:00.

The GPU is often a shared desktop card, free only at night. Outside the window
jobs queue up; a batch in flight finishes, then the worker waits for the window
to open again. A window may wrap past midnight.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def in_window(now: datetime, window: tuple[int, int] | None) -> bool:
    if window is None:
        return True
    start, end = window
    minute = now.hour * 60 + now.minute
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def next_opening(now: datetime, window: tuple[int, int] | None) -> datetime:
    """The next moment the window opens (now, if it is open)."""
    if in_window(now, window):
        return now
    start, _ = window  # type: ignore[misc]
    opening = now.replace(hour=start // 60 % 24, minute=start % 60, second=0, microsecond=0)
    if start >= 24 * 60:
        opening = opening + timedelta(days=1)
    if opening <= now:
        opening += timedelta(days=1)
    return opening


def describe(window: tuple[int, int] | None) -> str:
    if window is None:
        return "any time"
    start, end = window
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
