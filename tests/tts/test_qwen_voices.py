"""Cloned and designed voices through the tiny Base and VoiceDesign checkpoints and the real qwen_tts."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile

from voxd.book import Chunk, Pause
from voxd.config import Settings
from voxd.errors import VoiceError
from voxd.render import with_keys
from voxd.tts.base import Utterance
from voxd.tts.registry import load_engine
from voxd.voices import VoiceLibrary

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def checkpoints(tiny_qwen_checkpoints):
    return tiny_qwen_checkpoints


@pytest.fixture
def engine(tmp_path, checkpoints):
    settings = Settings(engine="qwen", state_dir=tmp_path / "state", qwen={
        "custom_voice_model": str(checkpoints["custom"]), "base_model": str(checkpoints["base"]),
        "voice_design_model": str(checkpoints["design"]),
    })
    eng = load_engine(settings)
    yield eng, VoiceLibrary(settings.state_path / "voices")
    eng.close()


from tests.support import recording  # noqa: E402


def test_cloned_voice_renders_through_the_base_checkpoint(engine, tmp_path):
    eng, library = engine
    library.add_recording(recording(tmp_path / "Me.wav"))
    out = eng.synthesize([Utterance("Hello there.", "Me"), Utterance("A second line.", "Me")])
    assert len(out.waveforms) == 2 and out.sample_rate == 24000
    assert all(w.dtype == np.float32 and w.size > 0 and np.abs(w).max() > 0 for w in out.waveforms)
    assert eng._engines["cloned"].loaded and not eng.presets.loaded
    assert list(library.folder("Me").glob("prompt-*.pt")), "the clone prompt is cached beside the voice"
    assert eng.narrator("Me") == "Qwen3-TTS (Me, cloned voice)"


@pytest.mark.slow
def test_cached_prompt_is_reused_by_a_new_engine(engine, tmp_path, checkpoints):
    eng, library = engine
    library.add_recording(recording(tmp_path / "Me.wav"))
    eng.synthesize([Utterance("One.", "Me")])
    [cached] = library.folder("Me").glob("prompt-*.pt")
    stamp = cached.stat().st_mtime_ns
    eng.close()
    again = load_engine(Settings(engine="qwen", state_dir=tmp_path / "state", qwen={
        "custom_voice_model": str(checkpoints["custom"]), "base_model": str(checkpoints["base"])}))
    again.synthesize([Utterance("Two.", "Me")])
    assert cached.stat().st_mtime_ns == stamp
    again.close()


def test_style_with_a_cloned_voice_is_a_warning_not_speech(engine, tmp_path, caplog):
    eng, library = engine
    library.add_recording(recording(tmp_path / "Me.wav"))
    with caplog.at_level(logging.WARNING):
        eng.synthesize([Utterance("Hello.", "Me", style="whisper dramatically")])
    assert "take no style prompt" in caplog.text and "whisper dramatically" in caplog.text


def test_designed_voice_and_one_model_at_a_time(engine):
    eng, library = engine
    library.add_design("Warm", "a warm, low, unhurried voice")
    out = eng.synthesize([Utterance("Hello.", "Warm", style="calm")])
    assert out.waveforms[0].size > 0
    assert eng._engines["designed"].loaded
    eng.synthesize([Utterance("Now a preset.", "Vivian")])
    assert eng.presets.loaded and not eng._engines["designed"].loaded


def test_mixed_batch_keeps_order(engine, tmp_path):
    eng, library = engine
    library.add_design("Warm", "a warm voice")
    batch = [Utterance("Preset one.", "Ryan"), Utterance("Designed.", "Warm"), Utterance("Preset two.", "Vivian")]
    out = eng.synthesize(batch)
    assert len(out.waveforms) == 3 and all(w.size for w in out.waveforms)


def test_unknown_voice_names_the_valid_ones(engine):
    eng, _ = engine
    with pytest.raises(VoiceError, match="Vivian"):
        eng.synthesize([Utterance("Hi.", "Nobody")])


def test_re_recorded_voice_gets_new_cache_keys(engine, tmp_path):
    eng, library = engine
    library.add_recording(recording(tmp_path / "Me.wav"))
    chunk = [Chunk(chapter=0, index=0, text="Same text.", pause=Pause.SENTENCE, voice="Me")]
    first = with_keys(chunk, eng.model_id, eng.voice_identity)[0].key
    assert with_keys(chunk, eng.model_id, eng.voice_identity)[0].key == first
    library.add_recording(recording(tmp_path / "Me.wav"))  # the same name, recorded again
    assert with_keys(chunk, eng.model_id, eng.voice_identity)[0].key != first


@pytest.mark.slow
def test_design_frozen_into_a_clone_through_the_cli(tmp_path, checkpoints):
    import os
    import subprocess
    import sys

    cfg = tmp_path / "voxd.toml"
    cfg.write_text(f'state_dir = "state"\nengine = "qwen"\n[qwen]\ncustom_voice_model = "{checkpoints["custom"]}"\n'
                   f'base_model = "{checkpoints["base"]}"\nvoice_design_model = "{checkpoints["design"]}"\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "voxd", "voices", "design", "Warm", "a warm voice", "--freeze",
                          "--config", str(cfg)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "froze 'Warm' into a cloned voice" in out.stdout
    info = VoiceLibrary(tmp_path / "state" / "voices").get("Warm")
    assert info.kind == "cloned" and info.transcript and "a warm voice" in info.source
    preview = subprocess.run([sys.executable, "-m", "voxd", "voices", "preview", "Warm", "Hello.", "-o",
                              str(tmp_path / "p.wav"), "--config", str(cfg)],
                             capture_output=True, text=True, timeout=300, env=env)
    assert preview.returncode == 0, preview.stderr
    assert soundfile.info(str(tmp_path / "p.wav")).frames > 0
