"""The Engine contract (voxd/tts/base.py), held once against every engine.

:class:`EngineContract` states what the renderer, the assembler and ``voxd serve``
rely on; each engine's class below only says how to build it, which voice it
speaks, and how alike two takes of the same text must be. Engine-specific
behaviour (eSpeak's voice names, Qwen3-TTS's frames and sampling, the voice
library's routing, the remote engine's failures) is tested in the engine's own
module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxd.config import Settings
from voxd.errors import EngineError, VoiceError
from voxd.tts.base import Engine, Synthesis, Utterance
from voxd.tts.registry import load_engine

SHORT = "Hello there."
LONG = (
    "It was a bright cold day in April, and the clocks were striking thirteen, "
    "and Winston Smith slipped quickly through the glass doors of Victory Mansions."
)
UNKNOWN = "zz-no-such-voice"


class EngineContract:
    """Every engine keeps these promises. Subclasses provide ``build`` and ``voice``."""

    #: A voice the engine speaks, other than "default".
    voice: str = ""
    language: str | None = "en"

    def build(self, tmp_path: Path) -> Engine:
        raise NotImplementedError

    def same_take(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether two takes of the same text by the same voice are the same audio: exact
        for deterministic engines; subclasses loosen it where an engine is not."""
        return a.shape == b.shape and np.allclose(a, b, atol=1e-4)

    @pytest.fixture
    def engine(self, tmp_path: Path) -> Iterator[Engine]:
        eng = self.build(tmp_path)
        yield eng
        eng.close()

    def say(self, *texts: str, voice: str | None = None) -> list[Utterance]:
        return [Utterance(t, voice or self.voice, self.language) for t in texts]

    # -- the promises -----------------------------------------------------------------

    def test_it_is_an_engine(self, engine: Engine) -> None:
        assert Engine in type(engine).__mro__  # subclassed explicitly: the defaults come from one place
        assert isinstance(engine.lockstep, bool) and isinstance(engine.concurrent, bool)
        assert isinstance(engine.accepts_seed, bool) and isinstance(engine.overlaps_decode, bool)
        assert engine.window() >= 1

    def test_one_float32_mono_wave_in_range_per_utterance(self, engine: Engine) -> None:
        result = engine.synthesize(self.say(LONG, SHORT, LONG))
        assert isinstance(result, Synthesis)
        assert isinstance(result.sample_rate, int) and 8000 <= result.sample_rate <= 48000
        assert len(result.waveforms) == 3
        for wave in result.waveforms:
            assert wave.dtype == np.float32 and wave.ndim == 1 and wave.size > 0
            assert np.all(np.abs(wave) <= 1.0) and np.abs(wave).max() > 0.01
        assert result.truncated in ([], [False] * 3) or len(result.truncated) == 3
        assert result.problems in ([], [None] * 3)

    def test_the_batch_order_is_kept(self, engine: Engine) -> None:
        first = engine.synthesize(self.say(LONG, SHORT)).waveforms
        second = engine.synthesize(self.say(SHORT, LONG)).waveforms
        assert self.same_take(first[0], second[1]) and self.same_take(first[1], second[0])
        assert not self.same_take(first[0], first[1])  # the two texts really are different audio

    def test_blank_text_is_a_short_silence(self, engine: Engine) -> None:
        result = engine.synthesize(self.say("", "  \n ", SHORT))
        for wave in result.waveforms[:2]:
            assert wave.dtype == np.float32 and 0 < wave.size <= result.sample_rate / 2 and not wave.any()
        assert np.abs(result.waveforms[2]).max() > 0.01

    def test_an_empty_batch_gives_no_waves(self, engine: Engine) -> None:
        assert engine.synthesize([]).waveforms == []

    def test_an_unknown_voice_is_a_voice_error_naming_it(self, engine: Engine) -> None:
        with pytest.raises(VoiceError, match=UNKNOWN):
            engine.check_voices([self.voice, UNKNOWN])
        with pytest.raises(VoiceError, match=UNKNOWN):
            engine.synthesize(self.say(SHORT) + self.say(SHORT, voice=UNKNOWN))
        engine.check_voices([self.voice, "default"])  # and the known ones pass

    def test_the_default_voice_is_the_named_default(self, engine: Engine) -> None:
        by_default = engine.synthesize(self.say(LONG, voice="default")).waveforms[0]
        by_name = engine.synthesize(self.say(LONG, voice=engine.default_voice)).waveforms[0]
        assert self.same_take(by_default, by_name)
        assert engine.narrator("default") and engine.narrator(self.voice)

    def test_model_id_is_stable(self, engine: Engine, tmp_path: Path) -> None:
        before = engine.model_id
        engine.synthesize(self.say(SHORT))
        assert engine.model_id == before and before
        twin = self.build(tmp_path / "twin")
        try:
            assert twin.model_id == before
        finally:
            twin.close()

    def test_voice_identity_is_a_string(self, engine: Engine) -> None:
        assert isinstance(engine.voice_identity(self.voice), str)
        assert engine.voice_identity(self.voice) == engine.voice_identity(self.voice)

    def test_a_seed_is_taken_by_every_engine(self, engine: Engine) -> None:
        a = engine.synthesize(self.say(SHORT), seed=7).waveforms[0]
        b = engine.synthesize(self.say(SHORT), seed=7).waveforms[0]
        assert self.same_take(a, b)

    def test_submit_gives_what_synthesize_gives(self, engine: Engine) -> None:
        a = engine.synthesize(self.say(SHORT), seed=7).waveforms[0]
        b = engine.submit(self.say(SHORT), seed=7)().waveforms[0]
        assert self.same_take(a, b)

    def test_after_close_it_refuses_to_speak(self, tmp_path: Path) -> None:
        eng = self.build(tmp_path)
        eng.synthesize(self.say(SHORT))
        eng.close()
        eng.close()  # twice is harmless
        with pytest.raises(EngineError):
            eng.synthesize(self.say(SHORT))


# -- the engines ---------------------------------------------------------------------------


class TestEspeak(EngineContract):
    voice = "en-us"

    def build(self, tmp_path: Path) -> Engine:
        return load_engine(Settings(engine="espeak", state_dir=tmp_path))

    def same_take(self, a: np.ndarray, b: np.ndarray) -> bool:
        # eSpeak is not sample-exact from call to call (some state carries over), so the
        # same text may come back a few pitch periods longer or shorter; but it is the same
        # voice (its spectrum) saying the same thing at the same times (its loudness), which
        # another voice or variant of the same text is not.
        from tests.support import envelope_correlation, spectrum_distance

        longer = max(a.size, b.size)
        # two words' spectrum is a noisy estimate (the same voice twice measures 0.13 to 0.19 on
        # "Hello there.", against en-gb 0.58); a sentence's is steady (0.06 to 0.09, against 0.25)
        limit = 0.22 if min(a.size, b.size) > 2 * 22050 else 0.3
        return (abs(a.size - b.size) <= 0.02 * longer + 0.03 * 22050 and spectrum_distance(a, b) < limit
                and envelope_correlation(a, b) > 0.95)


def _greedy(checkpoints: dict[str, Path], tmp_path: Path) -> Settings:
    return Settings(engine="qwen", state_dir=tmp_path / "state", qwen={
        "custom_voice_model": str(checkpoints["custom"]), "base_model": str(checkpoints["base"]),
        "voice_design_model": str(checkpoints["design"]), "do_sample": False, "subtalker_do_sample": False,
    })


@pytest.mark.usefixtures("one_torch_thread")
class TestQwenCustomVoice(EngineContract):
    """The tiny CustomVoice checkpoint through the real qwen_tts (greedy, so takes compare)."""

    voice = "Vivian"

    @pytest.fixture(autouse=True)
    def _checkpoints(self, tiny_qwen_checkpoints: dict[str, Path]) -> None:
        self.checkpoints = tiny_qwen_checkpoints

    def build(self, tmp_path: Path) -> Engine:
        return load_engine(_greedy(self.checkpoints, tmp_path)).presets  # type: ignore[attr-defined]


@pytest.mark.usefixtures("one_torch_thread")
class TestQwenVoiceLibrary(EngineContract):
    """The engine ``engine = "qwen"`` builds: presets, and a cloned voice from the library."""

    voice = "Narrator"

    @pytest.fixture(autouse=True)
    def _checkpoints(self, tiny_qwen_checkpoints: dict[str, Path], tmp_path_factory: Any) -> None:
        self.checkpoints = tiny_qwen_checkpoints
        from tests.support import recording

        self.reference = recording(tmp_path_factory.mktemp("rec") / "Narrator.wav")

    def build(self, tmp_path: Path) -> Engine:
        from voxd.voices import VoiceLibrary

        settings = _greedy(self.checkpoints, tmp_path)
        library = VoiceLibrary(settings.state_path / "voices")
        if library.get(self.voice) is None:
            library.add_recording(self.reference)
        return load_engine(settings)


class TestRemoteThroughServe(TestEspeak):
    """The remote engine, speaking through a real ``voxd serve --engine espeak`` on loopback:
    what comes back over HTTP keeps the same promises as the engine behind it."""

    @pytest.fixture(autouse=True)
    def _server(self, serve_espeak: Any) -> None:
        self.url, self.key = serve_espeak.url, serve_espeak.key

    def build(self, tmp_path: Path) -> Engine:
        return load_engine(Settings(engine="remote", state_dir=tmp_path,
                                    remote={"urls": [self.url], "api_key": self.key}))


class TestPiper(EngineContract):
    """Piper with the voice the test extra installs, its noise off so that takes compare."""

    voice = "en_US-joe-medium"

    def build(self, tmp_path: Path) -> Engine:
        return load_engine(Settings(engine="piper", state_dir=tmp_path,
                                    piper={"noise_scale": 0.0, "noise_w": 0.0, "workers": 2}))


class TestRemoteThroughPiperServe(TestPiper):
    """The remote engine through a real ``voxd serve --engine piper``: a CPU box in the fleet."""

    @pytest.fixture(autouse=True)
    def _server(self, serve_piper: Any) -> None:
        self.url, self.key = serve_piper.url, serve_piper.key

    def build(self, tmp_path: Path) -> Engine:
        return load_engine(Settings(engine="remote", state_dir=tmp_path,
                                    remote={"urls": [self.url], "api_key": self.key}))
