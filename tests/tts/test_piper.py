"""voxd.tts.piper: the real piper-tts with the en_US-joe-medium voice the test extra installs.

The Engine contract is held in tests/tts/test_base.py; here is what only Piper does: sentences
joined with voxd's pause, Piper's own silence trimmed, an abbreviation that does not break a
sentence, workers that give the audio one would, a book's language choosing the voice, and
bad voices and texts told apart from a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voxd.config import Settings
from voxd.errors import ConfigError, VoiceError
from voxd.tts.base import Utterance
from voxd.tts.piper import PiperEngine, trim
from voxd.tts.registry import load_engine

from ..support import piper_voice

RATE = 22050


def make(tmp_path: Path, **piper: object) -> PiperEngine:
    """The engine ``engine = "piper"`` builds, deterministic (no noise) unless told otherwise."""
    options = {"noise_scale": 0.0, "noise_w": 0.0, **piper}
    engine = load_engine(Settings(engine="piper", state_dir=tmp_path / "state", piper=options))
    assert isinstance(engine, PiperEngine)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[PiperEngine]:
    eng = make(tmp_path)
    yield eng
    eng.close()


def longest_silence(wave: np.ndarray, rate: int = RATE) -> float:
    """The longest run of near-silence inside ``wave`` (its two ends left out), in seconds."""
    frame = int(rate * 0.01)
    levels = np.abs(wave[: len(wave) // frame * frame]).reshape(-1, frame).max(axis=1)
    quiet = levels < 0.01
    loud = np.flatnonzero(~quiet)
    if loud.size == 0:
        return 0.0
    longest = run = 0
    for q in quiet[loud[0]: loud[-1] + 1]:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest * 0.01


def installed_as(folder: Path, name: str, language: str) -> Path:
    """The joe voice installed again under ``name``, its config saying ``language``."""
    folder.mkdir(parents=True, exist_ok=True)
    model, config = piper_voice()
    (folder / f"{name}.onnx").symlink_to(model)
    data = json.loads(config.read_text())
    data["language"] = {"code": language.replace("-", "_")}
    (folder / f"{name}.onnx.json").write_text(json.dumps(data))
    return folder / f"{name}.onnx"


def say(engine: PiperEngine, *texts: str, language: str | None = "en") -> list[np.ndarray]:
    return engine.synthesize([Utterance(t, "default", language) for t in texts]).waveforms


# -- what is said -----------------------------------------------------------------------------


def test_the_silence_at_each_end_is_trimmed_to_a_short_margin() -> None:
    voice = np.sin(np.linspace(0, 400, RATE)).astype(np.float32) * 0.5
    padded = np.concatenate([np.zeros(RATE // 2, np.float32), voice, np.zeros(RATE, np.float32)])
    cut = trim(padded, RATE)
    assert len(voice) < len(cut) <= len(voice) + 2 * int(0.04 * RATE) + 1
    assert trim(np.zeros(100, np.float32), RATE).size == 0


def test_piper_s_own_silence_is_gone_from_a_take(engine: PiperEngine) -> None:
    wave = say(engine, "The rabbit ran down the hole.")[0]
    edge = int(0.06 * RATE)
    assert np.abs(wave[:edge]).max() > 0.01 or np.abs(wave[edge: 2 * edge]).max() > 0.01
    assert np.abs(wave[-2 * edge:]).max() > 0.01  # speech reaches the last 0.1 s: no trailing pause


def test_sentences_are_joined_with_voxd_s_sentence_pause(tmp_path: Path) -> None:
    text = "The rabbit ran. The girl followed it."
    gaps = []
    for pause in (0.35, 1.2):
        eng = load_engine(Settings(engine="piper", state_dir=tmp_path / str(pause), pause_sentence=pause,
                                   piper={"noise_scale": 0.0, "noise_w": 0.0}))
        try:
            gaps.append(longest_silence(say(eng, text)[0]))
        finally:
            eng.close()
    assert 0.3 <= gaps[0] < 0.6
    assert gaps[1] - gaps[0] == pytest.approx(1.2 - 0.35, abs=0.1)


def test_an_abbreviation_does_not_break_a_sentence(engine: PiperEngine) -> None:
    abbreviated, ended = say(engine, "Mr. Bennet came home late.", "Mister. Bennet came home late.")
    assert longest_silence(ended) >= 0.3  # the premise: a real sentence end gets the pause
    assert longest_silence(abbreviated) < 0.2


def test_double_brackets_from_a_book_are_read_as_text_not_phonemes(engine: PiperEngine) -> None:
    bracketed, plain = say(engine, "See [[note]] here.", "See [ [note] ] here.")
    assert bracketed.shape == plain.shape and np.allclose(bracketed, plain)


@pytest.mark.slow
def test_workers_give_the_audio_one_worker_gives(tmp_path: Path) -> None:
    texts = ["A short one.", "A somewhat longer sentence, with a comma in it.", "Third.",
             "It was the best of times, it was the worst of times, it was the age of wisdom."]
    one, four = make(tmp_path / "one", workers=1), make(tmp_path / "four", workers=4)
    try:
        assert four.workers == 4
        alone, together = say(one, *texts), say(four, *texts)
    finally:
        one.close()
        four.close()
    assert len({w.size for w in alone}) == len(texts)  # the premise: every text's audio differs
    for a, b in zip(alone, together):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-5)


def test_noise_makes_each_take_another_and_is_part_of_the_model_id(tmp_path: Path) -> None:
    noisy = make(tmp_path / "n", noise_scale=0.667, noise_w=0.8)
    quiet = make(tmp_path / "q")
    try:
        assert noisy.accepts_seed and not quiet.accepts_seed
        assert noisy.model_id != quiet.model_id
        a, b = say(noisy, "Another take, please."), say(noisy, "Another take, please.")
        assert a[0].shape != b[0].shape or not np.allclose(a[0], b[0])
    finally:
        noisy.close()
        quiet.close()


def test_length_scale_slows_the_narration(tmp_path: Path) -> None:
    text = "It was a bright cold day in April, and the clocks were striking thirteen."
    fast, slow = make(tmp_path / "f", length_scale=1.0), make(tmp_path / "s", length_scale=1.3)
    try:
        ratio = say(slow, text)[0].size / say(fast, text)[0].size
    finally:
        fast.close()
        slow.close()
    assert 1.1 < ratio < 1.4  # the pauses inside a sentence do not all stretch


def test_a_text_the_phonemizer_refuses_is_a_flagged_silence_not_a_crash(engine: PiperEngine) -> None:
    loaded = engine._load(engine.catalogue.default)  # type: ignore[arg-type]
    real = loaded.voice.phonemize

    def phonemize(text: str) -> list[list[str]]:
        if "refuse" in text:
            raise RuntimeError("phonemizer refused")
        return real(text)

    loaded.voice.phonemize = phonemize  # a fault in piper-tts itself, for one text only
    result = engine.synthesize([Utterance("Please refuse this.", "default", "en"),
                                Utterance("But say this.", "default", "en")])
    assert result.problems[0] is not None and "phonemizer refused" in result.problems[0]
    assert result.problems[1] is None
    assert not result.waveforms[0].any() and np.abs(result.waveforms[1]).max() > 0.01


# -- voices and languages ------------------------------------------------------------------------


def test_a_language_with_no_voice_fails_naming_it_and_the_voices_installed(engine: PiperEngine) -> None:
    with pytest.raises(VoiceError, match=r"'de'.*en_US-joe-medium \(en-US\)"):
        say(engine, "Guten Tag.", language="de")


def test_a_voice_installed_for_a_language_is_chosen_for_its_books(tmp_path: Path) -> None:
    installed_as(tmp_path / "state" / "voices" / "piper", "de_DE-test-medium", "de-DE")
    eng = make(tmp_path)
    try:
        assert eng.check_language("de-AT").name == "de_DE-test-medium"
        assert eng.check_language("en-GB").name == "en_US-joe-medium"
        assert eng.check_language(None) is eng.catalogue.default
        assert say(eng, "Guten Tag.", language="de")[0].size > 0
        # and the tags credit the voice that spoke, not the default one
        assert eng.narrator("default", "de-AT") == "Piper (de_DE-test-medium)"
        assert eng.narrator("default", "en-GB") == "Piper (en_US-joe-medium)"
    finally:
        eng.close()


def test_the_voices_setting_maps_a_language_to_a_voice(tmp_path: Path) -> None:
    model, _ = piper_voice()
    eng = make(tmp_path, voices={"fr": str(model)})
    try:
        assert eng.check_language("fr-CA").name == "en_US-joe-medium"
    finally:
        eng.close()


def test_installing_a_voice_changes_the_default_voice_s_identity(tmp_path: Path) -> None:
    before = make(tmp_path)
    identity = before.voice_identity("default")
    before.close()
    installed_as(tmp_path / "state" / "voices" / "piper", "de_DE-test-medium", "de-DE")
    after = make(tmp_path)
    try:
        assert after.voice_identity("default") != identity  # German books would now be read by another voice
        assert after.voice_identity("en_US-joe-medium") == after.voice_identity("en_US-joe-medium")
    finally:
        after.close()


@pytest.mark.parametrize("fault, message", [
    ("missing", r"\[piper\] voice: .*nowhere\.onnx: no such Piper voice file"),
    ("no-config", r"\[piper\] voice: .*lonely\.onnx: its config lonely\.onnx\.json is missing"),
    ("garbage", r"garbage\.onnx: Piper could not load this voice"),
    ("bad-config", r"bad-config\.onnx\.json: not a Piper voice config"),
    ("espeak", r"espeak\.onnx\.json: Piper cannot read text for this voice"),
    ("name", r"\[piper\] voice: no Piper voice 'nobody' is installed; installed: en_US-joe-medium"),
])
def test_a_broken_voice_is_a_config_error_naming_it_at_start(tmp_path: Path, fault: str, message: str) -> None:
    model, config = piper_voice()
    path = tmp_path / f"{fault}.onnx"
    if fault == "missing":
        path = tmp_path / "nowhere.onnx"
    elif fault == "no-config":
        path = tmp_path / "lonely.onnx"
        path.symlink_to(model)
    elif fault == "garbage":
        path.write_bytes(b"\x08\x07not an onnx model" * 100)
        path.with_name(path.name + ".json").write_text(config.read_text())
    elif fault == "bad-config":
        path.symlink_to(model)
        path.with_name(path.name + ".json").write_text('{"audio": {}}')
    elif fault == "espeak":
        path.symlink_to(model)
        data = json.loads(config.read_text())
        data["espeak"]["voice"] = "zz-no-such-espeak-voice"
        path.with_name(path.name + ".json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message):
        make(tmp_path, voice="nobody" if fault == "name" else str(path))


def test_no_voice_at_all_says_where_to_put_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voxd.tts import piper_voices

    monkeypatch.setattr(piper_voices, "packaged_voices", lambda: ())  # a machine without the voice package
    with pytest.raises(ConfigError, match=r"no Piper voice is installed.*voices/piper/"):
        make(tmp_path)


def test_a_speaker_the_voice_does_not_have_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    path = installed_as(folder, "en_US-many-medium", "en-US")
    data = json.loads(path.with_name(path.name + ".json").read_text())
    data["speaker_id_map"] = {"alice": 0, "bob": 1}
    path.with_name(path.name + ".json").write_text(json.dumps(data))
    from voxd.tts.piper_voices import read_voice

    voice = read_voice(path, "test")
    assert voice.speaker_id("bob") == 1 and voice.speaker_id("0") == 0 and voice.speaker_id("") is None
    with pytest.raises(ConfigError, match=r"no speaker 'carol'; it has alice, bob"):
        voice.speaker_id("carol")
