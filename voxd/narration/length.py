"""How long a book will play, known from its text before anything is rendered, and its ceiling.

A small file can hold a huge book: 192 KB of words without a sentence end became
29 hours of audio and 8.8 GB of chunk cache. The length follows from the text
alone (:func:`voxd.tts.base.speech_seconds`, the pace every estimate in voxd
uses, plus the pauses), so it is stated before the render starts (the daemon's
log, ``voxd jobs``, ``voxd render``), and a book longer than ``max_book_hours``
fails at once, with the way to let it through, instead of hours of GPU time and
gigabytes later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..book import Chunk, Pause
from ..config import Settings
from ..errors import TooLong
from ..tts.base import speech_seconds


def pause_seconds(settings: Settings) -> dict[Pause, float]:
    return {p: settings.pause_seconds(p) for p in Pause}


def expected_seconds(chunks: Iterable[Chunk], settings: Settings) -> float:
    """The audiobook's length as its text predicts: every chunk spoken, every pause kept."""
    pause = pause_seconds(settings)
    return sum(speech_seconds(c.text) + pause.get(c.pause, 0.0) for c in chunks)


def hours(seconds: float) -> str:
    """'29.3 hours', '45 minutes': a length as a person says it."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def check(name: str, seconds: float, settings: Settings) -> None:
    """Raise :class:`TooLong` when ``seconds`` of audio is past ``max_book_hours`` (0: no ceiling)."""
    limit = settings.max_book_hours
    if limit <= 0 or seconds <= limit * 3600:
        return
    raise TooLong(
        f"{name} would make about {hours(seconds)} of audio, more than max_book_hours ({limit:g}). Text that "
        "never ends a sentence, or that is not words at all, can do that: `voxd plan` shows what would be read. "
        "If the book really is that long, raise max_book_hours in the configuration (0 means no limit)",
        seconds=seconds, limit_hours=limit,
    )


def enough_hours(seconds: float) -> int:
    """A ``--max-hours`` that lets a book of ``seconds`` through."""
    return math.floor(seconds / 3600) + 1
