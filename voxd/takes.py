"""Which take of a chunk is kept: the checks a take must pass, the retakes, the best of them.

A take is suspect when it ran into the engine's length cap (a runaway), when the engine itself
found fault with it (a server's reply cut short), when its duration is far from what its text
predicts (:class:`Check` with ``durations``) and, with the read-back on (:class:`Check`'s
``listener``), when its samples cannot be speech or a recogniser hears something else in it
(:mod:`voxd.verify`). Suspect chunks are spoken again together, with another seed each attempt,
up to ``retries`` times; the first right take is kept. When none is right, the least wrong one
is kept (never a gap in the book) and the chunk is *flagged*: listed for a person to hear, and
cached as unsettled, so that the next render of the book speaks it again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .book import Chunk
from .errors import EngineError, OutOfMemory
from .tts.base import Engine, Synthesis, Utterance, speech_seconds

if TYPE_CHECKING:
    from .verify.listener import Listener, Verdict

log = logging.getLogger("voxd.render")


@dataclass(frozen=True, slots=True)
class Check:
    """Which chunks are suspect and how often to speak them again.

    A chunk that ran into the engine's length cap is always suspect. With
    ``durations``, so is one of at least ``min_chars`` characters whose audio is
    more than ``max_ratio`` times, or less than ``min_ratio`` times, the length
    its text predicts (:func:`voxd.tts.base.speech_seconds`). With ``listener``
    every take's samples are checked, and each take (``mode = "all"``) or each
    suspect one (``"suspect"``) is read back; a take heard right is right, whatever
    its length. Engines that cannot draw another take (no ``accepts_seed``) are not
    asked again: the chunk is only flagged.
    """

    durations: bool = True
    min_ratio: float = 0.25
    max_ratio: float = 3.0
    min_chars: int = 40
    retries: int = 1
    listener: Listener | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    """A chunk kept although no take of it was right: what a report lists."""

    key: str
    chapter: int  # 0-based, as in Chunk
    index: int
    text: str
    why: str
    heard: str | None  # what the recogniser heard in the take kept, where it listened
    error: float | None
    takes: int

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "chapter": self.chapter + 1, "index": self.index + 1, "text": self.text,
                "why": self.why, "heard": self.heard, "error": self.error, "takes": self.takes}


@dataclass(frozen=True, slots=True)
class Take:
    """The audio kept for one chunk, and what it took to get it."""

    wave: np.ndarray
    rate: int
    retried: int = 0  # retakes asked for
    flagged: str | None = None  # kept although still suspect, in words
    verdict: Verdict | None = None  # the read-back's, for the take kept
    flag: Flag | None = None


@dataclass(frozen=True, slots=True)
class _Try:
    wave: np.ndarray
    truncated: bool
    engine_problem: str | None
    problem: str | None
    verdict: Verdict | None


def retry_seed(key: str, attempt: int) -> int:
    """The seed of a chunk's ``attempt``-th retake: fixed by its key, so reruns agree."""
    digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def speak(engine: Engine, batch: Sequence[Chunk], seed: int | None = None, attempt: int = 0) -> Synthesis:
    """Each utterance carries its chunk's own seed for this attempt: a take that does not
    depend on the batch, for engines that can draw per item."""
    return _checked(engine.synthesize(_utterances(batch, attempt), seed=seed), batch)


def speak_later(engine: Engine, batch: Sequence[Chunk]) -> Callable[[], Synthesis]:
    """:func:`speak` in two halves where the engine ``overlaps_decode``: what it returns gives
    the result (or raises the engine's error) once the audio is made. Other engines speak
    before this returns, as :func:`speak`."""
    if not engine.overlaps_decode:
        done = speak(engine, batch)
        return lambda: done
    collect = engine.submit(_utterances(batch, 0))
    return lambda: _checked(collect(), batch)


def _utterances(batch: Sequence[Chunk], attempt: int) -> list[Utterance]:
    return [Utterance(text=c.text, voice=c.voice, language=c.language, style=c.style,
                      seed=retry_seed(c.key, attempt)) for c in batch]


def _checked(result: Synthesis, batch: Sequence[Chunk]) -> Synthesis:
    if len(result.waveforms) != len(batch):
        raise EngineError(f"engine returned {len(result.waveforms)} waveforms for {len(batch)} texts")
    if result.truncated and len(result.truncated) != len(batch):
        raise EngineError(f"engine reported truncation for {len(result.truncated)} of {len(batch)} texts")
    if result.problems and len(result.problems) != len(batch):
        raise EngineError(f"engine reported problems for {len(result.problems)} of {len(batch)} texts")
    return result


def judge(c: Chunk, wave: np.ndarray, rate: int, truncated: bool, check: Check,
          engine_problem: str | None = None) -> tuple[str | None, Verdict | None]:
    """Why this take looks wrong, in words (None when it looks right), and the read-back's verdict."""
    listener = check.listener
    if listener is not None:
        plain = listener.plain(c.text, wave, rate)
        if plain is not None:
            return plain.why, plain
    seconds = len(wave) / rate
    if truncated:
        return f"ran into the length cap at {seconds:.1f} s", None
    if engine_problem:
        return engine_problem, None
    doubt = _duration(c, seconds, check)
    if listener is None or (listener.mode == "suspect" and doubt is None):
        return doubt, None
    verdict = listener.hear(c.text, wave, rate, c.language, c.voice)
    if verdict.status == "failed":
        return verdict.why, verdict
    return (None if verdict.status == "passed" else doubt), verdict


def _duration(c: Chunk, seconds: float, check: Check) -> str | None:
    text = c.text.strip()
    if not check.durations or len(text) < check.min_chars:
        return None
    expected = speech_seconds(text)
    if seconds > check.max_ratio * expected:
        return f"{seconds:.1f} s of audio for about {expected:.0f} s of text"
    if seconds < check.min_ratio * expected:
        return f"only {seconds:.1f} s of audio for about {expected:.0f} s of text"
    return None


def _distance(c: Chunk, t: _Try, rate: int) -> tuple[bool, bool, float, float]:
    """How far a take is from right: a runaway is worst, then one whose samples or engine
    were at fault, then the read-back's error, then the duration's log-distance from the
    text's prediction."""
    expected = max(speech_seconds(c.text.strip()), 0.1)
    seconds = max(len(t.wave) / rate, 1e-3)
    plain = t.verdict is not None and t.verdict.score is None and t.verdict.failed
    error = t.verdict.score.error if t.verdict is not None and t.verdict.score is not None else 0.0
    return t.truncated, plain or t.engine_problem is not None, error, abs(math.log(seconds / expected))


def _item(result: Synthesis, i: int) -> tuple[np.ndarray, bool, str | None]:
    truncated = bool(result.truncated[i]) if result.truncated else False
    problem = result.problems[i] if result.problems else None
    return result.waveforms[i], truncated, problem


def first_judgements(batch: Sequence[Chunk], result: Synthesis, check: Check | None,
                     stop: threading.Event | None = None) -> list[tuple[str | None, Verdict | None]]:
    """The judgement of each first take of ``batch``: what :func:`settle` starts from, apart so
    that a batch can be heard while the engine speaks the next. ``stop`` set ends it early (the
    render is stopping and will not use it)."""
    if check is None:
        return [(None, None)] * len(batch)
    out = []
    for i, c in enumerate(batch):
        if stop is not None and stop.is_set():
            break
        wave, truncated, engine_problem = _item(result, i)
        out.append(judge(c, wave, result.sample_rate, truncated, check, engine_problem))
    return out


def settle(engine: Engine, batch: Sequence[Chunk], result: Synthesis, check: Check | None,
           checkpoint: Callable[[], None] | None = None,
           judged: Sequence[tuple[str | None, Verdict | None]] | None = None) -> list[Take]:
    """The take of each chunk of ``batch`` (``result`` holds its first takes) to keep: that
    one if it looks right, else the best of it and up to ``check.retries`` retakes, each
    with another seed; flagged if none is right. With no ``check`` the first takes are
    kept as they are. The suspect chunks are spoken again together, one batch per
    attempt, since a batch of them costs about what one does (the steps of a lockstep
    batch take as long at 1 item as at 32). A retake's seed comes from
    the keys of the chunks retaken with it and the attempt, so reruns agree. ``checkpoint``
    runs before each retake batch, as before any batch: the daemon's watchdog hears of it,
    and a stop may end the render there. ``judged``: the first takes' judgements, made already
    (:func:`first_judgements`)."""
    rate = result.sample_rate
    firsts = [_item(result, i) for i in range(len(batch))]
    if check is None:
        return [Take(wave, rate) for wave, _, _ in firsts]
    kept: list[Take | None] = [None] * len(batch)
    tries: dict[int, list[_Try]] = {}
    judged = judged if judged is not None else first_judgements(batch, result, check)
    for i, (wave, truncated, engine_problem) in enumerate(firsts):
        problem, verdict = judged[i]
        if problem is None:
            kept[i] = Take(wave, rate, verdict=verdict)
        else:
            tries[i] = [_Try(wave, truncated, engine_problem, problem, verdict)]
    suspects = sorted(tries)
    asked = dict.fromkeys(suspects, 0)  # retakes asked for, each chunk
    for attempt in range(1, (check.retries if engine.accepts_seed else 0) + 1):
        if not suspects:
            break
        for i in suspects:
            c = batch[i]
            log.info("chunk %d of chapter %d %s; speaking it again", c.index + 1, c.chapter + 1, tries[i][-1].problem)
            asked[i] += 1
        again_chunks = [batch[i] for i in suspects]
        if checkpoint:
            checkpoint()
        try:
            again = speak(engine, again_chunks, seed=retry_seed("".join(c.key for c in again_chunks), attempt),
                          attempt=attempt)
        except OutOfMemory as exc:  # the retakes did not fit beside what is loaded: keep what we have
            log.warning("could not speak %d suspect chunks again: %s", len(suspects), exc)
            break
        if again.sample_rate != rate:
            raise EngineError(f"engine changed its sample rate from {rate} to {again.sample_rate} Hz")
        still = []
        for n, i in enumerate(suspects):
            wave, truncated, engine_problem = _item(again, n)
            problem, verdict = judge(batch[i], wave, rate, truncated, check, engine_problem)
            if problem is None:
                kept[i] = Take(wave, rate, asked[i], verdict=verdict)
            else:
                tries[i].append(_Try(wave, truncated, engine_problem, problem, verdict))
                still.append(i)
        suspects = still
    for i, options in tries.items():
        if kept[i] is None:
            kept[i] = _best(batch[i], options, rate, asked[i])
    return [take for take in kept if take is not None]


def _best(c: Chunk, tries: list[_Try], rate: int, retried: int) -> Take:
    """The least wrong of a chunk's takes, none of which looked right, kept and flagged."""
    best = min(tries, key=lambda t: _distance(c, t, rate))
    preview = c.text.strip()
    preview = preview if len(preview) <= 60 else preview[:57] + "..."
    note = (
        f"chapter {c.chapter + 1}, chunk {c.index + 1}: {best.problem}"
        f" (kept the best of {len(tries)} take{'s' if len(tries) > 1 else ''}): {preview!r}"
    )
    log.warning("suspect audio: %s", note)
    score = best.verdict.score if best.verdict is not None else None
    flag = Flag(key=c.key, chapter=c.chapter, index=c.index, text=c.text, why=best.problem or "",
                heard=score.heard if score else None, error=round(score.error, 3) if score else None,
                takes=len(tries))
    return Take(best.wave, rate, retried, note, best.verdict, flag)
