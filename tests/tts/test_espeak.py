"""The eSpeak NG engine against the real library (from espeakng-loader); no mocks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from voxd.errors import VoiceError
from voxd.tts.base import Utterance
from voxd.tts.espeak import EspeakEngine

SHORT = "Hello."
LONG = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "Winston Smith slipped quickly through the glass doors of Victory Mansions."
)


@pytest.fixture(scope="module")
def engine() -> Iterator[EspeakEngine]:
    eng = EspeakEngine()
    yield eng
    eng.close()


def seconds(wave: np.ndarray, engine: EspeakEngine) -> float:
    return len(wave) / engine.sample_rate


def near(a: float, b: float) -> bool:
    """Durations in seconds agree. eSpeak is not sample-exact from call to call
    (some synthesis state carries over between utterances), so the same text
    may come back a few pitch periods longer or shorter."""
    return abs(a - b) <= 0.02 * max(a, b) + 0.03


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))


def test_speech_at_22050_hz_lasts_as_long_as_its_text(engine: EspeakEngine) -> None:
    long, short = engine.synthesize([Utterance(LONG, "en-us"), Utterance(SHORT, "en-us")]).waveforms
    assert engine.sample_rate == 22050
    assert rms(long) > 0.02
    assert 3.0 < seconds(long, engine) < 20.0
    assert seconds(long, engine) > 4 * seconds(short, engine)


def test_an_unknown_voice_lists_valid_ones(engine: EspeakEngine) -> None:
    with pytest.raises(VoiceError, match="zz-notavoice") as info:
        engine.synthesize([Utterance(SHORT, "en-us"), Utterance(SHORT, "zz-notavoice")])
    assert "en-us" in str(info.value)  # lists valid voices


def test_unknown_default_voice_is_refused() -> None:
    with pytest.raises(VoiceError, match="zz-notavoice"):
        EspeakEngine(default_voice="zz-notavoice")


@pytest.mark.parametrize("voice", ["en-us", "de", "fr-fr", "en-gb", "en-us+f3"])
def test_voices_speak(engine: EspeakEngine, voice: str) -> None:
    (wave,) = engine.synthesize([Utterance("Eins zwei drei, one two three.", voice)]).waveforms
    assert rms(wave) > 0.02
    assert seconds(wave, engine) > 0.5


def test_voices_differ_and_are_listed(engine: EspeakEngine) -> None:
    text = "Guten Morgen, wie geht es Ihnen heute?"
    english, german = engine.synthesize([Utterance(text, "en-us"), Utterance(text, "de")]).waveforms
    assert len(english) != len(german) or not np.array_equal(english, german)
    listed = engine.voices()
    assert {"en-us", "en-gb", "de", "fr"} <= set(listed)


def test_default_voice_follows_language_then_falls_back(engine: EspeakEngine) -> None:
    text = "1999"  # "nineteen ninety-nine" against "neunzehnhundertneunundneunzig"
    german, by_tag, fallback, english = (
        seconds(wave, engine)
        for wave in engine.synthesize(
            [
                Utterance(text, "de"),
                Utterance(text, "default", language="de-AT"),
                Utterance(text, "default", language="und"),
                Utterance(text, "en-us"),
            ]
        ).waveforms
    )
    assert german > 1.2 * english
    assert near(by_tag, german)
    assert near(fallback, english)


def test_concurrent_threads_get_their_own_audio() -> None:
    fast, slow = EspeakEngine(rate_wpm=300), EspeakEngine(rate_wpm=120)
    jobs = [
        (fast, LONG, "en-us"),
        (slow, SHORT, "de"),
        (slow, LONG, "en-gb"),
        (fast, SHORT, "en-us"),
    ] * 2
    expected = [seconds(eng.synthesize([Utterance(t, v)]).waveforms[0], eng) for eng, t, v in jobs]
    got: list[float | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        eng, text, voice = jobs[index]
        try:
            for _ in range(3):
                got[index] = seconds(eng.synthesize([Utterance(text, voice)]).waveforms[0], eng)
                assert near(got[index], expected[index]), (got[index], expected[index])
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert all(n is not None and near(n, e) for n, e in zip(got, expected))


def test_model_id_names_the_rate() -> None:
    slow, normal, fast = EspeakEngine(rate_wpm=120), EspeakEngine(), EspeakEngine(rate_wpm=300)
    assert normal.model_id.startswith("espeak-ng/")
    assert "rate=175" in normal.model_id
    assert len({slow.model_id, normal.model_id, fast.model_id}) == 3
    assert EspeakEngine(rate_wpm=120).model_id == slow.model_id
    assert EspeakEngine(default_voice="en-gb").model_id != normal.model_id  # "default" is another voice's audio


def test_default_in_the_default_voices_language_is_the_default_voice() -> None:
    from tests.support import envelope_correlation, spectrum_distance

    engine = EspeakEngine()  # en-us
    default, named, british = engine.synthesize([Utterance(LONG, "default", language="en"),
                                                 Utterance(LONG, "en-us", language="en"),
                                                 Utterance(LONG, "default", language="en-GB")]).waveforms
    assert spectrum_distance(default, named) < 0.15 and envelope_correlation(default, named) > 0.95
    assert spectrum_distance(british, named) > 0.2  # a region of its own is that region's voice
    assert engine.narrator("default") == "eSpeak NG (en-us)"


def test_higher_rate_gives_shorter_audio() -> None:
    slow, fast = EspeakEngine(rate_wpm=120), EspeakEngine(rate_wpm=320)
    slow_s = len(slow.synthesize([Utterance(LONG, "en-us")]).waveforms[0])
    fast_s = len(fast.synthesize([Utterance(LONG, "en-us")]).waveforms[0])
    assert fast_s < 0.7 * slow_s
