"""The time-stretch for speeds an engine has no rate for: FFmpeg's atempo through PyAV."""

from __future__ import annotations

import numpy as np
import pytest

from voxd.audio.tempo import stretch

RATE = 24000


def tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def pitch(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / RATE)[np.argmax(spectrum)])


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.5, 2.0, 3.0, 4.0])
def test_the_length_changes_and_the_pitch_does_not(speed: float) -> None:
    wave = tone(2.0)
    out = stretch(wave, RATE, speed)
    assert out.dtype == np.float32
    assert out.size == pytest.approx(wave.size / speed, rel=0.03)
    assert pitch(out) == pytest.approx(220.0, abs=3.0)


def test_speed_one_is_the_wave_itself_and_out_of_range_is_refused() -> None:
    wave = tone(0.5)
    assert stretch(wave, RATE, 1.0) is wave
    with pytest.raises(ValueError, match="from 0.25 to 4.0"):
        stretch(wave, RATE, 4.5)
