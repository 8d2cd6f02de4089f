"""The Qwen3-TTS engine, through a tiny random-weight checkpoint (tests/tiny_qwen.py)
loaded by the real ``Qwen3TTSModel.from_pretrained``; nothing in qwen_tts is mocked
except where a test says so (a CUDA out-of-memory cannot happen on this CPU)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qwen_tts")

from voxd.config import Settings  # noqa: E402
from voxd.errors import ConfigError, EngineError, OutOfMemory, VoiceError  # noqa: E402
from voxd.tts.base import Utterance  # noqa: E402
from voxd.tts.qwen import MAX_NEW_TOKENS_CAP, QwenEngine, estimate_max_new_tokens  # noqa: E402
from voxd.tts.registry import load_engine  # noqa: E402

TEXTS = [
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "Hello there.",
    "Winston Smith slipped quickly through the glass doors.",
]
GREEDY = dict(do_sample=False, subtalker_do_sample=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Two threads on this busy two-core machine are many times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine(tiny_qwen_dir: Path) -> Iterator[QwenEngine]:
    eng = QwenEngine(str(tiny_qwen_dir))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def greedy(tiny_qwen_dir: Path) -> Iterator[QwenEngine]:
    eng = QwenEngine(str(tiny_qwen_dir), **GREEDY)
    yield eng
    eng.close()


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))


def test_a_batch_gives_one_float32_wave_per_text_at_24khz(engine: QwenEngine) -> None:
    result = engine.synthesize([Utterance(text, "Ryan", "en") for text in TEXTS])
    assert result.sample_rate == 24000
    assert len(result.waveforms) == len(TEXTS)
    for wave in result.waveforms:
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert len(wave) > 0 and len(wave) % 1920 == 0  # whole 12.5 Hz codec frames
        assert np.all(np.abs(wave) <= 1.0)
        assert rms(wave) > 0.01


def test_the_seed_makes_sampling_repeatable(engine: QwenEngine) -> None:
    batch = [Utterance(text, "Serena", "en") for text in TEXTS]
    first, second = engine.synthesize(batch).waveforms, engine.synthesize(batch).waveforms
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_batched_greedy_output_equals_one_at_a_time(greedy: QwenEngine) -> None:
    batch = [
        Utterance(TEXTS[0], "Ryan", "en-US"),
        Utterance(TEXTS[1], "vivian", "de", style="Speak slowly and warmly."),
        Utterance(TEXTS[2], "default", None),
    ]
    together = greedy.synthesize(batch).waveforms
    alone = [greedy.synthesize([u]).waveforms[0] for u in batch]
    for a, b in zip(together, alone):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    # Different texts, speakers and instructions really are different audio.
    assert not np.allclose(together[0][:1920], together[1][:1920], atol=1e-3)


def test_default_voice_is_a_real_speaker(greedy: QwenEngine) -> None:
    assert greedy.default_voice == "Ryan"
    assert greedy.narrator("default") == "Qwen3-TTS (Ryan)"
    assert greedy.narrator("uncle_fu") == "Qwen3-TTS (Uncle_Fu)"
    by_default = greedy.synthesize([Utterance(TEXTS[1], "default", "en")]).waveforms[0]
    by_name = greedy.synthesize([Utterance(TEXTS[1], "RYAN", "en")]).waveforms[0]
    np.testing.assert_array_equal(by_default, by_name)


def test_blank_text_is_a_short_silence(engine: QwenEngine) -> None:
    result = engine.synthesize([Utterance("  ", "Ryan"), Utterance(TEXTS[1], "Ryan")])
    silence, speech = result.waveforms
    assert silence.dtype == np.float32 and 0 < len(silence) <= result.sample_rate and not silence.any()
    assert rms(speech) > 0.01


def test_unknown_speaker_names_the_valid_ones_before_loading(tiny_qwen_dir: Path) -> None:
    eng = QwenEngine(str(tiny_qwen_dir))
    with pytest.raises(VoiceError) as err:
        eng.synthesize([Utterance("Hello.", "Chelsie", "en")])
    message = str(err.value)
    assert "'Chelsie'" in message and "Ryan" in message and "Vivian" in message and "Uncle_Fu" in message
    assert not eng.loaded  # the checkpoint's config.json was enough to tell


def test_unknown_language_names_the_valid_ones(engine: QwenEngine) -> None:
    with pytest.raises(VoiceError) as err:
        engine.synthesize([Utterance("Hallo daar.", "Ryan", "nl")])
    message = str(err.value)
    assert "'nl'" in message and "English (en)" in message and "German (de)" in message


def test_language_tags_map_to_the_models_names(engine: QwenEngine) -> None:
    _, languages = engine._speakers_and_languages()
    expect = {
        None: "Auto", "": "Auto", "und": "Auto", "en": "English", "en-US": "English", "en_GB": "English",
        "deu": "German", "de-AT": "German", "zh-Hans-CN": "Chinese", "ja": "Japanese", "Korean": "Korean",
        "pt-BR": "Portuguese",
    }
    for tag, name in expect.items():
        assert engine._language_for(tag, languages) == name, tag
    assert engine.voices() == ["Aiden", "Dylan", "Eric", "Ono_Anna", "Ryan", "Serena", "Sohee", "Uncle_Fu", "Vivian"]


def test_model_loads_on_first_synthesize_and_close_frees_it(tiny_qwen_dir: Path) -> None:
    eng = QwenEngine(str(tiny_qwen_dir))
    assert not eng.loaded
    assert "Vivian" in eng.voices()  # from config.json, still not loaded
    assert not eng.loaded
    eng.synthesize([Utterance("Hi.", "Vivian", "zh")])
    assert eng.loaded
    eng.close()
    assert not eng.loaded
    with pytest.raises(EngineError):
        eng.synthesize([Utterance("Hi.", "Vivian")])


def test_import_and_construction_do_not_import_torch(tiny_qwen_dir: Path) -> None:
    code = (
        "import sys, voxd.tts.qwen; assert 'torch' not in sys.modules;"
        "from voxd.config import Settings; from voxd.tts.registry import load_engine;"
        f"e = load_engine(Settings(engine='qwen', qwen={{'custom_voice_model': {str(tiny_qwen_dir)!r}}}));"
        "e.voices(); e.narrator('default');"
        "heavy = [m for m in ('torch', 'transformers', 'qwen_tts') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_registry_builds_the_engine_from_settings(tiny_qwen_dir: Path) -> None:
    settings = Settings(engine="qwen", qwen={"custom_voice_model": str(tiny_qwen_dir), "temperature": 0.7, "seed": 3})
    eng = load_engine(settings)
    assert isinstance(eng, QwenEngine) and not eng.loaded
    assert str(tiny_qwen_dir) in eng.model_id and "t=0.7" in eng.model_id and "seed=3" in eng.model_id


def test_model_id_changes_with_every_generation_setting(tiny_qwen_dir: Path) -> None:
    base = QwenEngine(str(tiny_qwen_dir)).model_id
    assert QwenEngine(str(tiny_qwen_dir)).model_id == base
    changes = [
        dict(temperature=0.7), dict(top_k=20), dict(top_p=0.8), dict(repetition_penalty=1.1),
        dict(do_sample=False), dict(subtalker_do_sample=False), dict(subtalker_temperature=0.5),
        dict(subtalker_top_k=10), dict(subtalker_top_p=0.9), dict(seed=1), dict(default_voice="Vivian"),
    ]
    ids = {QwenEngine(str(tiny_qwen_dir), **change).model_id for change in changes}
    assert base not in ids and len(ids) == len(changes)
    assert QwenEngine("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice").model_id != base


def test_max_new_tokens_grows_with_the_text_and_is_capped() -> None:
    short, medium, long = (estimate_max_new_tokens([t]) for t in ("Hi.", "x" * 300, "x" * 600))
    assert 50 <= short < medium < long <= MAX_NEW_TOKENS_CAP
    assert medium >= 300 / 15 * 12.5 * 1.5  # room for a slow reader
    assert estimate_max_new_tokens(["Hi.", "x" * 600]) == long  # the batch's longest text decides
    assert estimate_max_new_tokens(["x" * 100_000]) == MAX_NEW_TOKENS_CAP
    assert estimate_max_new_tokens(["字" * 100]) > estimate_max_new_tokens(["x" * 100])  # CJK is slower


def test_bad_settings_and_wrong_checkpoint_kind_are_config_errors(tmp_path: Path) -> None:
    from tests.tiny_qwen import build_tiny_checkpoint

    with pytest.raises(ConfigError):
        QwenEngine("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", device="gpu0")
    with pytest.raises(ConfigError, match="not a directory"):
        QwenEngine(str(tmp_path / "no-such-model"))
    design = build_tiny_checkpoint(tmp_path / "design", kind="voice_design")
    with pytest.raises(ConfigError, match="CustomVoice"):
        QwenEngine(str(design))


def test_out_of_memory_is_typed_and_other_failures_are_engine_errors(
    tiny_qwen_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    eng = QwenEngine(str(tiny_qwen_dir))
    eng.synthesize([Utterance("Hi.", "Ryan")])  # load it
    model = eng._model

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(model, "generate_custom_voice", oom)
    with pytest.raises(OutOfMemory, match="smaller batch"):
        eng.synthesize([Utterance("Hi.", "Ryan")] * 4)

    def broken(*args, **kwargs):
        raise IndexError("index out of range in self")

    monkeypatch.setattr(model, "generate_custom_voice", broken)
    with pytest.raises(EngineError) as err:
        eng.synthesize([Utterance("Hi.", "Ryan")])
    assert not isinstance(err.value, OutOfMemory) and "IndexError" in str(err.value)
    eng.close()
