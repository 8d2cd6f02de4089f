"""The read-back: every take listened to, and a verdict on whether it says its text.

The renderer asks :meth:`Listener.hear` about each take (``mode = "all"``) or about the takes the
plain checks already doubt (``"suspect"``): the samples are checked first (:mod:`.audio`), then
the recogniser writes down what it hears and :mod:`.score` compares that with the text voxd sent
(after the lexicon: what the engine was asked to say). A take is ``passed``, ``failed`` (with
why, in words) or ``unchecked`` (with why not: a language the model does not know, no recogniser):
never failed for want of a check.

A take heard right has one more test: its pace. Each voice keeps a steady pace (seconds of audio
per character of text; measured on Piper and eSpeak NG: right takes within 0.75 and 1.3 times
their voice's median), so once a voice has :data:`PACE_AFTER` right takes in this process, a take
far shorter than its pace predicts has lost words the recogniser may have filled in, and one far
longer repeats or adds what the recogniser may have collapsed ("Alexander. Alexander.").
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import Cancelled, Stopping, VoxdError
from .audio import audio_problem
from .score import Score, Thresholds, judge, score

if TYPE_CHECKING:
    from ..config import Settings
    from .recogniser import Recogniser

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "unchecked"]

#: Right takes of a voice before its pace is held to; the pace is the median of the last PACE_KEEP.
PACE_AFTER = 5
PACE_KEEP = 50
#: A take outside these times its voice's pace is wrong; texts shorter than PACE_CHARS are not timed.
PACE_LOW, PACE_HIGH = 0.7, 1.45
#: Below this, a take with a run of words not heard as written (a fifth of the text) lost words.
PACE_SHORT = 0.8
PACE_CHARS = 40
#: A text of fewer words is too short to judge by ear ("Sir?" is heard as "Sure."): only a runaway
#: after it, and its samples, are judged; it counts as not checked.
SHORT_WORDS = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    why: str | None = None  # failed: what is wrong; unchecked: why it was not checked
    score: Score | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "why": self.why, **(self.score.as_json() if self.score else {})}


class Listener:
    """A recogniser and the rules a take is judged by; ``recogniser`` None (with ``away``, the
    reason) makes every take ``unchecked`` after its plain checks."""

    def __init__(self, recogniser: Recogniser | None, *, mode: str = "all",
                 limits: Thresholds | None = None, away: str = "") -> None:
        self.recogniser = recogniser
        self.mode = mode
        self.limits = limits or Thresholds()
        self.away = away
        self._paces: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Let go of what the recogniser holds (a remote one's connections)."""
        closing = getattr(self.recogniser, "close", None)
        if closing is not None:
            closing()

    @property
    def name(self) -> str:
        return self.recogniser.name if self.recogniser else ""

    def plain(self, text: str, wave: np.ndarray, rate: int) -> Verdict | None:
        """The samples' own verdict: failed when they cannot be a reading, else None."""
        problem = audio_problem(wave, rate, text)
        return Verdict("failed", problem) if problem else None

    def hear(self, text: str, wave: np.ndarray, rate: int, language: str | None, voice: str = "") -> Verdict:
        """The whole check of one take: its samples, what is heard in them, then its pace
        against the other right takes of ``voice``."""
        plain = self.plain(text, wave, rate)
        if plain is not None:
            return plain
        if not text.strip():
            return Verdict("passed")
        if self.recogniser is None:
            return Verdict("unchecked", self.away or "no recogniser")
        if not self.recogniser.knows(language):
            return Verdict("unchecked", f"Whisper {self.recogniser.name} does not know {language!r}")
        try:
            heard = self.recogniser.transcribe(wave, rate, language)
        except VoxdError:
            raise
        except Exception as exc:  # a recogniser that fails on one take leaves it unchecked, not the book failed
            log.warning("read-back: the recogniser failed on a take: %s: %s", type(exc).__name__, exc)
            return Verdict("unchecked", f"the recogniser failed: {type(exc).__name__}: {exc}")
        s = score(text, heard.text, language)
        if s.words < SHORT_WORDS:
            if s.tail > self.limits.max_tail:
                return Verdict("failed", f"{s.tail} words heard after the text ended", s)
            return Verdict("unchecked", f"under {SHORT_WORDS} words: too short to judge by ear", s)
        why = judge(s, self.limits) or self._pace(text, wave.size / rate, f"{voice}@{rate}@{language}", s)
        return Verdict("failed" if why else "passed", why, s)

    def _pace(self, text: str, seconds: float, voice: str, s: Score) -> str | None:
        """Why this take's length is not its voice's pace; None (and the pace learned) when it is.
        A take somewhat short for its pace with a run of words not heard as written (each too
        weak alone: measured, right takes have either, a skipped clause both) lost words too."""
        chars = len(text.strip())
        if chars < PACE_CHARS:
            return None
        pace = seconds / chars
        with self._lock:
            known = self._paces.setdefault(voice, deque(maxlen=PACE_KEEP))
            usual = statistics.median(known) if len(known) >= PACE_AFTER else None
            short_and_wrong = (usual is not None and pace / usual < PACE_SHORT
                               and s.wrong_run > self.limits.max_missing and s.wrong_run * 5 >= s.words)
            if usual is None or (PACE_LOW <= pace / usual <= PACE_HIGH and not short_and_wrong):
                known.append(pace)
                return None
        expected = usual * chars
        if pace < usual:
            return f"{seconds:.1f} s of audio where this voice takes about {expected:.1f} s: words left out"
        return f"{seconds:.1f} s of audio where this voice takes about {expected:.1f} s: words repeated or added"


def listener_for(settings: Settings, report: Any = None) -> Listener | None:
    """The read-back ``[verify]`` asks for (None with ``mode = "off"``). A recogniser that
    cannot be had makes a listener that checks the samples only and says why; with
    ``required = true`` it raises :class:`~.recogniser.RecogniserUnavailable` instead (the job
    waits, as for an unusable GPU)."""
    v = settings.verify
    if v.mode == "off":
        return None
    limits = Thresholds(max_error=v.max_error, max_tail=v.max_tail, max_missing=v.max_missing)
    from .recogniser import RecogniserUnavailable, whisper_for

    if v.urls:
        from .remote import RemoteRecogniser

        return Listener(RemoteRecogniser(v.urls, model=v.model, api_key=v.api_key.get_secret_value()),
                        mode=v.mode, limits=limits)
    try:
        recogniser = whisper_for(settings, report)
    except (RecogniserUnavailable, VoxdError) as exc:
        if isinstance(exc, (Stopping, Cancelled)):  # the fetch was stopped: the job stops, it is not left unchecked
            raise
        if v.required:
            raise RecogniserUnavailable(f"the read-back is required ([verify] required) but {exc}") from None
        log.warning("read-back: not checked: %s", exc)
        return Listener(None, mode=v.mode, limits=limits, away=str(exc))
    return Listener(recogniser, mode=v.mode, limits=limits)
