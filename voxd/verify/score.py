"""How far what was heard is from what was said, and whether that is a wrong take.

Both sides are normalised with Whisper's own normalisers (``whisper-normalizer``: case,
punctuation, numbers and British/American spellings for English, a basic one elsewhere), so
"Mr. Bennet paid $3.50" and "Mister Bennett paid three dollars fifty" meet halfway; the words are
then aligned by ``jiwer``. Four things are kept, because each is a different failure of a speech
engine: the error rate (substitutions, deletions, insertions over the text's words), the words
heard after the text ended (a runaway that would not stop), the longest run of words missing
(a clause skipped), and phrases heard more often than the text has them (a loop).

"Something else" is judged by the character error rate over the normalised words, not the word
error rate: a small recogniser mangles rare and archaic words ("learn'd coterie" heard as "Lauren
Coder", "Bingley" as "Ben Lee"), which costs a whole word each but only a few letters, while
another text altogether differs in most of its letters (measured: right takes of Piper and eSpeak
NG up to 0.54, another chunk's take at least 0.70; ``bench/verify.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..tts.languages import primary_subtag


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where a take stops being the text. Chosen on real speech (``bench/verify.py``): right takes
    of Piper and eSpeak NG read back by Whisper tiny.en, against takes with injected faults."""

    max_error: float = 0.6  # character error rate over the normalised words
    max_tail: int = 3  # words heard after the text's last word
    max_missing: int = 3  # words in a row not heard, beyond this (and a quarter of the text or more)
    max_repeats: int = 2  # phrases of three words heard more often than written, beyond this


@dataclass(frozen=True, slots=True)
class Score:
    """One take read back."""

    heard: str  # what the recogniser wrote, as it wrote it
    words: int  # the text's words, normalised
    error: float  # character error rate over the normalised words
    word_error: float  # word error rate
    tail: int  # words heard after the text ended
    missing: int  # the longest run of the text's words not heard
    repeats: int  # three-word phrases heard more often than the text has them
    #: the longest run of the text's words not heard as written (missing or heard otherwise; one
    #: word heard right inside does not end it): where a clause was skipped, a recogniser often
    #: fills the gap with words of its own
    wrong_run: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"heard": self.heard, "error": round(self.error, 3), "word_error": round(self.word_error, 3),
                "tail": self.tail,
                "missing": self.missing, "repeats": self.repeats}


@cache
def _normaliser(language: str) -> Any:
    if language == "en":
        from whisper_normalizer.english import EnglishTextNormalizer

        return EnglishTextNormalizer()
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer()


_BRACKETS = re.compile(r"[\[\](){}<>]")


def normalise(text: str, language: str | None) -> list[str]:
    """The words of ``text`` as both sides are compared: Whisper's normaliser for the language.
    Brackets go first: Whisper's normalisers drop what they enclose (as a transcript's
    "[music]"), where a book's parentheses are read aloud."""
    words = _normaliser(primary_subtag(language, "en")).__call__(_BRACKETS.sub(" ", text)).split()
    return [w for w in words if any(ch.isalnum() for ch in w)]


def _repeats(words: list[str]) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i:i + 3]) for i in range(len(words) - 2))


def score(text: str, heard: str, language: str | None) -> Score:
    """``heard`` against ``text``."""
    import jiwer

    said, got = normalise(text, language), normalise(heard, language)
    if not said:
        return Score(heard, 0, 0.0 if not got else 1.0, 0.0 if not got else 1.0, len(got), 0, 0)
    if not got:
        return Score(heard, len(said), 1.0, 1.0, 0, len(said), 0, len(said))
    out = jiwer.process_words(" ".join(said), " ".join(got))
    tail = sum(a.hyp_end_idx - a.hyp_start_idx for a in out.alignments[0]
               if a.type == "insert" and a.ref_start_idx >= len(said))
    missing = max((a.ref_end_idx - a.ref_start_idx for a in out.alignments[0] if a.type == "delete"), default=0)
    heard_grams = _repeats(got)
    repeats = sum(n for gram, n in (heard_grams - _repeats(said)).items() if heard_grams[gram] > 1)
    error = float(jiwer.cer(" ".join(said), " ".join(got)))
    return Score(heard, len(said), error, float(out.wer), tail, missing, repeats, _wrong_run(out.alignments[0]))


def _wrong_run(chunks: list[Any]) -> int:
    best = run = 0
    for c in chunks:
        n = c.ref_end_idx - c.ref_start_idx
        if c.type == "equal":
            if n >= 2:
                run = 0
        elif c.type in ("delete", "substitute"):
            run += n
            best = max(best, run)
    return best


def judge(s: Score, limits: Thresholds | None = None) -> str | None:
    """Why the take is not the text, in words; None when it is."""
    limits = limits or Thresholds()
    if s.words == 0:
        return None
    if s.tail > limits.max_tail:
        return f"{s.tail} words heard after the text ended"
    if s.missing > limits.max_missing and s.missing * 4 >= s.words:
        return f"{s.missing} words in a row not heard"
    if s.repeats > limits.max_repeats:
        return f"phrases repeated {s.repeats} times more than written"
    if s.error > limits.max_error:
        return f"heard something else ({s.error:.0%} of the letters differ)"
    if s.wrong_run > limits.max_missing and s.wrong_run * 5 >= s.words * 2:
        return f"{s.wrong_run} words in a row not heard as written"
    return None
