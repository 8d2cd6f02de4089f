"""voxd.verify.audio: takes that cannot be speech are caught from their samples alone."""

from __future__ import annotations

import numpy as np
import pytest

from voxd.tts.base import Utterance
from voxd.tts.espeak import EspeakEngine
from voxd.verify.audio import audio_problem

TEXT = "The keeper climbed the narrow stairs each evening and counted every step."


@pytest.fixture(scope="module")
def take() -> tuple[np.ndarray, int]:
    result = EspeakEngine().synthesize([Utterance(TEXT, "en-us")])
    return result.waveforms[0], result.sample_rate


def test_real_speech_passes(take) -> None:
    wave, rate = take
    assert audio_problem(wave, rate, TEXT) is None


@pytest.mark.parametrize("fault, message", [
    ("nan", r"samples are not numbers"),
    ("inf", r"samples are not numbers"),
    ("clipped", r"of the samples at full scale"),
    ("silent", r"^silence$"),
    ("long", r"s of audio for about 4\.9 s of text"),
    ("short", r"^only 0\.\d s of audio"),
    ("empty", r"^no audio$"),
])
def test_a_broken_take_is_named(take, fault: str, message: str) -> None:
    wave, rate = take
    wave = wave.copy()
    if fault == "nan":
        wave[100] = np.nan
    elif fault == "inf":
        wave[-5:] = np.inf
    elif fault == "clipped":
        wave = np.sign(wave) * 1.0
    elif fault == "silent":
        wave = np.zeros_like(wave)
    elif fault == "long":
        wave = np.concatenate([wave, np.zeros(rate * 600, np.float32)])  # ten minutes for one sentence
    elif fault == "short":
        wave = wave[: rate // 2]
    elif fault == "empty":
        wave = wave[:0]
    assert audio_problem(wave.astype(np.float32), rate, TEXT) is not None
    import re

    assert re.search(message, audio_problem(wave.astype(np.float32), rate, TEXT) or "")


def test_a_blank_text_may_be_silence() -> None:
    assert audio_problem(np.zeros(2205, np.float32), 22050, "  ") is None
