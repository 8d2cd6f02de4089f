"""Speech segment detection on recordings made in the test: eSpeak speech with silence,
noise, a tone, a chord and clipping mixed in at known places."""

from __future__ import annotations

import numpy as np
import pytest

from voxd.audio.segment import RecordingError, choose_reference, extract, regions, speech_frames
from voxd.tts.base import Utterance
from voxd.tts.espeak import EspeakEngine

TEXT = ("The quick brown fox jumps over the lazy dog. Then it ran away across the field, towards the old barn "
        "where the farmer kept his tools and a sleepy cat.")


@pytest.fixture(scope="module")
def speech():
    out = EspeakEngine().synthesize([Utterance(TEXT, "en-us")])
    return out.waveforms[0], out.sample_rate


def silence(seconds, rate):
    return np.zeros(int(seconds * rate), np.float32)


def noise(seconds, rate, level=0.2, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * level).astype(np.float32)


def tone(seconds, rate, freq=440.0, level=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chord(seconds, rate):
    return sum(tone(seconds, rate, f, 0.15) for f in (261.6, 329.6, 392.0)).astype(np.float32)


def test_chosen_segment_lies_inside_the_speech_and_avoids_the_rest(speech):
    voice, rate = speech
    parts = [silence(1, rate), noise(3, rate), silence(0.5, rate), tone(2, rate), silence(0.5, rate)]
    start = sum(len(p) for p in parts) / rate
    parts += [voice, silence(1, rate), chord(3, rate), silence(1, rate)]
    end = start + len(voice) / rate
    rec = np.concatenate(parts)
    rec = rec + (np.random.default_rng(1).standard_normal(rec.size) * 0.002).astype(np.float32)  # room tone
    choice = choose_reference(rec, rate)
    for seg in choice.segments:
        assert start - 0.05 <= seg.start and seg.end <= end + 0.05, (seg, start, end)
    assert choice.duration >= 5.0
    assert len(extract(rec, rate, choice)) == pytest.approx(choice.duration * rate, abs=rate * 0.05)


def test_long_speech_is_trimmed_to_fifteen_seconds(speech):
    voice, rate = speech
    rec = np.concatenate([voice, silence(0.2, rate), voice, silence(0.2, rate), voice])
    choice = choose_reference(rec, rate)
    assert len(choice.segments) == 1
    assert 14.9 <= choice.duration <= 15.01


def test_clipped_speech_is_avoided(speech):
    voice, rate = speech
    clipped = np.clip(voice * 20, -1, 1)
    rec = np.concatenate([clipped, silence(1, rate), voice])
    [seg] = choose_reference(rec, rate).segments
    assert seg.start >= len(clipped) / rate


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: silence(10, r), "no speech"),
        (lambda r: noise(10, r), "no speech"),
        (lambda r: tone(10, r), "no speech"),
        (lambda r: np.zeros(0, np.float32), "empty"),
    ],
)
def test_unusable_recordings_say_why(make, message):
    with pytest.raises(RecordingError, match=message):
        choose_reference(make(22050), 22050, name="memo.wav")


def test_too_little_speech(speech):
    voice, rate = speech
    short = voice[: int(1.5 * rate)]
    with pytest.raises(RecordingError, match=r"only .* s of clean speech"):
        choose_reference(np.concatenate([silence(2, rate), short, silence(2, rate)]), rate)


def test_pauses_between_sentences_do_not_split_a_region(speech):
    voice, rate = speech
    found = regions(speech_frames(np.concatenate([silence(1, rate), voice, silence(1, rate)]), rate))
    assert len([r for r in found if r.duration > 1]) == 1
