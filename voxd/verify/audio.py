"""Plain checks of a take, before anyone listens: is this sound at all?

A server that lies, or an engine that breaks, hands back things no recogniser should be asked
about: samples that are not numbers, a wave stuck at full scale, silence, or ten minutes of audio
for one sentence. Each is caught here from the samples alone, in microseconds.
"""

from __future__ import annotations

import numpy as np

from ..tts.base import speech_seconds

#: A sample this close to full scale counts as clipped.
_FULL_SCALE = 0.999
#: More than this share of clipped samples is a broken take, not a loud one.
_MAX_CLIPPED = 0.01
#: Peak below this (about -46 dBFS) is silence.
_SILENT_PEAK = 0.005
#: A take longer than this many times its text's predicted length, plus a margin, ran on.
_MAX_RATIO = 4.0
_MARGIN_SECONDS = 3.0
#: A text of at least this many characters must last at least _MIN_RATIO of its prediction.
_MIN_CHARS = 20
_MIN_RATIO = 0.2


def audio_problem(wave: np.ndarray, rate: int, text: str) -> str | None:
    """Why ``wave`` cannot be a reading of ``text``, in words; None when it may be."""
    if wave.ndim != 1 or wave.size == 0 or rate <= 0:
        return "no audio"
    if not np.isfinite(wave).all():
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        return f"{bad} samples are not numbers (NaN or infinite)"
    words = text.strip()
    if not words:
        return None
    clipped = float(np.count_nonzero(np.abs(wave) >= _FULL_SCALE)) / wave.size
    if clipped > _MAX_CLIPPED:
        return f"{clipped:.0%} of the samples at full scale"
    if float(np.abs(wave).max()) < _SILENT_PEAK:
        return "silence"
    seconds, expected = wave.size / rate, speech_seconds(words)
    if seconds > _MAX_RATIO * expected + _MARGIN_SECONDS:
        return f"{seconds:.1f} s of audio for about {expected:.1f} s of text"
    if len(words) >= _MIN_CHARS and seconds < _MIN_RATIO * expected:
        return f"only {seconds:.1f} s of audio for about {expected:.1f} s of text"
    return None
