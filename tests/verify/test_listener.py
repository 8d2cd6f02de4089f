"""voxd.verify.listener: the real Whisper tiny.en (the test extra's package, loaded by name as
production loads it) reading back the real Piper voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxd.config import Settings, VerifySettings
from voxd.tts.base import Utterance
from voxd.tts.registry import load_engine
from voxd.verify.listener import Listener, listener_for
from voxd.verify.recogniser import RecogniserUnavailable

SAID = "The old keeper climbed the narrow stairs each evening and counted every step."
OTHER = "Nobody in the village remembered a winter as long as that one had been."


def settings(tmp_path: Path, **verify: object) -> Settings:
    """With the read-back on (the suite's environment turns it off for every other test)."""
    base = Settings(state_dir=tmp_path, engine="piper", piper={"noise_scale": 0.0, "noise_w": 0.0})
    return base.model_copy(update={"verify": VerifySettings(**{"mode": "all", **verify})})


@pytest.fixture(scope="module")
def takes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], int]:
    engine = load_engine(settings(tmp_path_factory.mktemp("piper")))
    try:
        result = engine.synthesize([Utterance(SAID, "default", "en"), Utterance(OTHER, "default", "en")])
    finally:
        engine.close()
    return result.waveforms, result.sample_rate


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Listener:
    made = listener_for(settings(tmp_path_factory.mktemp("state")))
    assert made is not None and made.recogniser is not None, made and made.away
    return made


def test_a_right_take_is_heard_right(listener: Listener, takes) -> None:
    (said, _), rate = takes
    verdict = listener.hear(SAID, said, rate, "en")
    assert verdict.status == "passed" and verdict.score is not None and verdict.score.error < 0.2
    assert "keeper" in verdict.score.heard.lower()


def test_a_take_of_another_text_fails_saying_what_was_heard(listener: Listener, takes) -> None:
    (_, other), rate = takes
    verdict = listener.hear(SAID, other, rate, "en")
    assert verdict.failed and "heard something else" in (verdict.why or "")
    assert verdict.score is not None and "village" in verdict.score.heard.lower()


def test_a_take_cut_in_half_fails(listener: Listener, takes) -> None:
    (said, _), rate = takes
    verdict = listener.hear(SAID, said[: said.size // 2], rate, "en")
    assert verdict.failed


def test_samples_that_are_not_speech_fail_before_anyone_listens(listener: Listener, takes) -> None:
    (said, _), rate = takes
    broken = said.copy()
    broken[10] = np.nan
    verdict = listener.hear(SAID, broken, rate, "en")
    assert verdict.failed and verdict.score is None and "not numbers" in (verdict.why or "")


def test_a_language_the_model_does_not_know_is_not_checked(listener: Listener, takes) -> None:
    (said, _), rate = takes
    verdict = listener.hear("Es war einmal ein alter Leuchtturmwärter.", said, rate, "de")
    assert verdict.status == "unchecked" and "does not know 'de'" in (verdict.why or "")


def test_no_recogniser_leaves_takes_unchecked_with_the_reason(tmp_path: Path, takes) -> None:
    away = listener_for(settings(tmp_path, model=str(tmp_path / "no-such-model")))
    assert away is not None and away.recogniser is None and "no-such-model" in away.away
    (said, _), rate = takes
    verdict = away.hear(SAID, said, rate, "en")
    assert verdict.status == "unchecked" and "no-such-model" in (verdict.why or "")
    assert away.hear(SAID, np.zeros_like(said), rate, "en").failed  # the samples are still checked


def test_a_required_recogniser_that_cannot_be_had_makes_the_job_wait(tmp_path: Path) -> None:
    with pytest.raises(RecogniserUnavailable, match=r"required.*no-such-model"):
        listener_for(settings(tmp_path, model=str(tmp_path / "no-such-model"), required=True))


def test_mode_off_makes_no_listener(tmp_path: Path) -> None:
    assert listener_for(settings(tmp_path, mode="off")) is None


@pytest.mark.slow
def test_a_take_far_from_its_voice_s_pace_fails_once_the_pace_is_known(tmp_path: Path) -> None:
    import librosa

    texts = [f"Sentence number {n} of a quiet story about the keeper, the village and the sea." for n in range(7)]
    engine = load_engine(settings(tmp_path / "piper"))
    try:
        result = engine.synthesize([Utterance(t, "default", "en") for t in texts])
    finally:
        engine.close()
    made = listener_for(settings(tmp_path / "state"))
    assert made is not None
    rate = result.sample_rate
    stretched = librosa.effects.time_stretch(result.waveforms[6], rate=0.6).astype(np.float32)  # 1.7x as long
    assert made.hear(texts[6], stretched, rate, "en", "joe").status == "passed"  # no pace known yet: words only
    for text, wave in zip(texts[:6], result.waveforms[:6]):
        assert made.hear(text, wave, rate, "en", "joe").status == "passed"
    slow = made.hear(texts[6], stretched, rate, "en", "joe")
    assert slow.failed and "words repeated or added" in (slow.why or "")
    assert made.hear(texts[6], stretched, rate, "en", "another voice").status == "passed"  # each voice its own pace
    assert made.hear(texts[6], result.waveforms[6], rate, "en", "joe").status == "passed"


def test_a_text_too_short_to_judge_by_ear_is_not_checked_but_a_runaway_after_it_fails(listener: Listener,
                                                                                       tmp_path: Path, takes) -> None:
    engine = load_engine(settings(tmp_path))
    try:
        result = engine.synthesize([Utterance("Sir?", "default", "en")])
    finally:
        engine.close()
    short, rate = result.waveforms[0], result.sample_rate
    verdict = listener.hear("Sir?", short, rate, "en")
    assert verdict.status == "unchecked" and "too short to judge" in (verdict.why or "")
    (said, other), _ = takes
    runaway = listener.hear("Sir?", np.concatenate([short, other]), rate, "en")
    assert runaway.failed  # by its length alone, before the recogniser is asked
