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

from voxd.config import Settings
from voxd.errors import ConfigError, EngineError, OutOfMemory, VoiceError
from voxd.tts.base import Utterance
from voxd.tts.qwen import MAX_NEW_TOKENS_CAP, QwenEngine, estimate_max_new_tokens
from voxd.tts.registry import load_engine

TEXTS = [
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "Hello there.",
    "Winston Smith slipped quickly through the glass doors.",
]
GREEDY = dict(do_sample=False, subtalker_do_sample=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


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


def test_a_batch_gives_whole_codec_frames_at_24khz(engine: QwenEngine) -> None:
    result = engine.synthesize([Utterance(text, "Ryan", "en") for text in TEXTS])
    assert result.sample_rate == 24000
    for wave in result.waveforms:
        assert len(wave) > 0 and len(wave) % 1920 == 0  # whole 12.5 Hz codec frames
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
    eng.check_voices(["Vivian", "default"])
    assert not eng.loaded
    eng.synthesize([Utterance("Hi.", "Vivian", "zh")])
    assert eng.loaded
    eng.close()
    assert not eng.loaded


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
    eng = load_engine(settings).presets  # presets; cloned and designed voices route to other checkpoints
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


@pytest.mark.slow
def test_an_overlapped_decode_gives_the_same_audio_and_raises_when_collected(
    tiny_qwen_dir: Path, engine: QwenEngine
) -> None:
    """With decode_overlap, submit returns once the codes are made and the audio is decoded
    in the decoder's thread while the next batch generates: the same takes as synthesize
    (a seed per chunk, sampling, as in production), and a decode that fails fails where
    the audio is collected, typed as synthesize would type it."""
    import threading

    import torch

    first = [Utterance(t, "Ryan", "en", seed=10 + i) for i, t in enumerate(TEXTS)]
    second = [Utterance(t, "Ryan", "en", seed=20 + i) for i, t in enumerate(reversed(TEXTS))]
    expected = [engine.synthesize(first), engine.synthesize(second)]  # overlap off
    eng = QwenEngine(str(tiny_qwen_dir), decode_overlap=True)
    eng._load()
    decoder = eng._decoder
    real = decoder.real
    threads: list[str] = []

    def recorded(encoded, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(encoded, *args, **kwargs)

    decoder.real = recorded
    a = eng.submit(first)
    b = eng.submit(second)  # generates while the first batch's audio is decoded
    for got, want in zip((a(), b()), expected):
        assert got.sample_rate == want.sample_rate and got.truncated == want.truncated
        assert [len(w) for w in got.waveforms] == [len(w) for w in want.waveforms]
        for x, y in zip(got.waveforms, want.waveforms):
            np.testing.assert_allclose(x, y, rtol=0, atol=2.0**-15)
    assert len(threads) == 2 and all(name.startswith("voxd-decode") for name in threads)

    def broken(encoded, *args, **kwargs):
        raise IndexError("index out of range in self")

    def oom(encoded, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    decoder.real = broken
    collect = eng.submit(first)  # the codes were made: nothing is raised here
    with pytest.raises(EngineError) as err:
        collect()
    assert not isinstance(err.value, OutOfMemory) and "IndexError" in str(err.value)
    decoder.real = oom
    collect = eng.submit(first)
    with pytest.raises(OutOfMemory, match="smaller batch"):
        collect()
    decoder.real = recorded
    threads.clear()
    again = eng.synthesize(first)  # synthesize decodes before it returns, in the caller's thread
    assert threads == [threading.current_thread().name]
    assert [len(w) for w in again.waveforms] == [len(w) for w in expected[0].waveforms]
    eng.close()


@pytest.mark.slow
def test_a_render_with_overlapped_decodes_keeps_the_same_audio(tiny_qwen_dir: Path, engine: QwenEngine,
                                                               tmp_path: Path) -> None:
    """The render collects each batch after starting the next one when the engine overlaps:
    the same chunks in the cache as without, and a decode out of memory at collection puts
    its chunks back to be spoken in halves, as a batch out of memory at generation does."""
    import torch

    from voxd.book import Chunk, Pause
    from voxd.cache import ChunkCache
    from voxd.render import render, with_keys

    texts = [TEXTS[0], TEXTS[2], "A third one, for a second batch.", "And a fourth, for the second batch."]
    cs = with_keys([Chunk(chapter=0, index=i, text=t, pause=Pause.SENTENCE, voice="Ryan", language="en")
                    for i, t in enumerate(texts)], engine.model_id)
    plain = ChunkCache(tmp_path / "plain")
    render(cs, engine, plain, batch_size=2, check=None)
    overlapped = QwenEngine(str(tiny_qwen_dir), decode_overlap=True)
    assert overlapped.overlaps_decode and not engine.overlaps_decode
    overlapped._load()
    decoder = overlapped._decoder
    real, calls = decoder.real, []

    def short_of_memory_twice(encoded, *args, **kwargs):
        calls.append(len(encoded))
        if len(calls) in (2, 3):  # the second batch: whole, then halved to one
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(encoded, *args, **kwargs)

    decoder.real = short_of_memory_twice
    cache = ChunkCache(tmp_path / "overlapped")
    p = render(cs, overlapped, cache, batch_size=2, check=None)
    assert p.out_of_memory == 1 and p.chunks_done == len(cs)
    assert calls == [2, 2, 1, 1, 1]  # the second batch failed whole and halved, then again one chunk at a time
    for c in cs:
        ours, theirs = cache.get(c.key)[0], plain.get(c.key)[0]
        assert len(ours) == len(theirs)
        # Halved chunks are decoded alone: another batch shape's float rounding, then the
        # cache's 16-bit one, puts a sample at most one step from the other render's.
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1.5 / 32767)
    overlapped.close()


@pytest.mark.slow
def test_decode_rows_refill_a_batch_with_the_same_takes(tiny_qwen_dir: Path) -> None:
    """decode_rows: a batch of four chunks in two rows of voxd's loop, each row taking the
    next chunk when its own ends, gives each chunk the take it has in a row of its own
    (a seed per chunk, sampling). Static shapes, as with CUDA graphs, on the CPU."""
    with pytest.raises(ConfigError, match="decode_rows"):
        QwenEngine(str(tiny_qwen_dir), decode_rows=-1)
    batch = [Utterance(t, "Ryan", "en", seed=30 + i) for i, t in enumerate(TEXTS + ["One more, a fourth."])]
    takes = []
    for rows in (0, 2):
        eng = QwenEngine(str(tiny_qwen_dir), decode_rows=rows)
        eng._load()
        eng._frames.static = True  # what CUDA graphs run
        takes.append(eng.synthesize(batch))
        assert eng._frames.stats["rows"] == (rows or 4) and eng._frames.stats["refills"] == (2 if rows else 0)
        eng.close()
    wide, narrow = takes
    assert len({len(w) for w in wide.waveforms}) > 1  # the premise: the chunks end apart
    assert narrow.truncated == wide.truncated
    for a, b in zip(narrow.waveforms, wide.waveforms):
        assert len(a) == len(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=2.0**-15)


@pytest.mark.gpu
def test_a_decode_on_its_own_cuda_stream_gives_the_same_audio(tiny_qwen_dir: Path) -> None:
    """On a card: the decode of one batch on the decoder's stream while the next batch
    generates on the default one gives the audio synthesize gives."""
    first = [Utterance(t, "Ryan", "en", seed=10 + i) for i, t in enumerate(TEXTS)]
    second = [Utterance(t, "Ryan", "en", seed=20 + i) for i, t in enumerate(reversed(TEXTS))]
    plain = QwenEngine(str(tiny_qwen_dir), device="cuda", dtype="float32")
    expected = [plain.synthesize(first), plain.synthesize(second)]
    plain.close()
    eng = QwenEngine(str(tiny_qwen_dir), device="cuda", dtype="float32", decode_overlap=True)
    a = eng.submit(first)
    b = eng.submit(second)
    for got, want in zip((a(), b()), expected):
        assert [len(w) for w in got.waveforms] == [len(w) for w in want.waveforms]
        for x, y in zip(got.waveforms, want.waveforms):
            np.testing.assert_allclose(x, y, rtol=0, atol=2.0**-15)
    eng.close()


# -- memory, truncation, seeds, hub ids, the render loop ----------------------------------


def stored_hidden_state_bytes(eng: QwenEngine, batch: list[Utterance]) -> tuple[int, int, list[np.ndarray]]:
    """(bytes of hidden states generate kept, frames generated, waves) for one batch."""
    eng.synthesize(batch[:1])  # load
    talker = eng._model.model.talker
    real = talker.generate
    seen: dict[str, int] = {}

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        total = 0
        for layers, codes in out.hidden_states:
            total += sum(t.numel() * t.element_size() for t in layers)
            if codes is not None:
                total += codes.numel() * codes.element_size()
        seen["bytes"], seen["steps"] = total, len(out.hidden_states)
        return out

    talker.generate = spy
    try:
        waves = eng.synthesize(batch).waveforms
    finally:
        del talker.generate
    return seen["bytes"], seen["steps"], waves


@pytest.mark.slow
def test_trimming_hidden_states_keeps_the_audio_and_frees_the_memory(tiny_qwen_dir: Path) -> None:
    batch = [Utterance(text, "Ryan", "en") for text in TEXTS]
    full = QwenEngine(str(tiny_qwen_dir), **GREEDY, trim_hidden_states=False, decode_loop="qwen_tts")
    trimmed = QwenEngine(str(tiny_qwen_dir), **GREEDY, decode_loop="qwen_tts")
    assert trimmed.trim_hidden_states and full.model_id == trimmed.model_id
    full_bytes, full_steps, full_waves = stored_hidden_state_bytes(full, batch)
    trim_bytes, trim_steps, trim_waves = stored_hidden_state_bytes(trimmed, batch)
    assert full_steps == trim_steps
    for a, b in zip(full_waves, trim_waves):
        np.testing.assert_array_equal(a, b)
    # Per decoding step the talker kept all (layers + 1) hidden states of every item;
    # trimmed, only the last one, so what remains per step is that one and the codes.
    config = trimmed._model.model.config.talker_config
    # (The first step, over the prompt, has no codes yet.)
    hidden, codes = config.hidden_size * 4, config.num_code_groups * 8  # float32, int64
    assert trim_bytes == len(batch) * (hidden * trim_steps + codes * (trim_steps - 1))
    layers = config.num_hidden_layers + 1
    assert full_bytes > len(batch) * (layers * hidden * full_steps + codes * (full_steps - 1))  # and the prompt
    assert trim_bytes * 10 < full_bytes
    full.close()
    trimmed.close()


@pytest.mark.slow
def test_sampled_output_is_also_unchanged_by_trimming(tiny_qwen_dir: Path) -> None:
    batch = [Utterance(text, "Vivian", "en") for text in TEXTS[:2]]
    full = QwenEngine(str(tiny_qwen_dir), trim_hidden_states=False, decode_loop="qwen_tts")
    trimmed = QwenEngine(str(tiny_qwen_dir), decode_loop="qwen_tts")
    for a, b in zip(full.synthesize(batch).waveforms, trimmed.synthesize(batch).waveforms):
        np.testing.assert_array_equal(a, b)
    full.close()
    trimmed.close()


def test_an_item_that_hits_the_frame_cap_is_reported_truncated(
    greedy: QwenEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voxd.tts.qwen as qwen

    batch = [Utterance(TEXTS[0], "Ryan", "en"), Utterance("  ", "Ryan")]
    natural = greedy.synthesize(batch)
    assert natural.truncated == [False, False]
    frames = len(natural.waveforms[0]) // 1920
    monkeypatch.setattr(qwen, "estimate_max_new_tokens", lambda texts: frames - 3)
    capped = greedy.synthesize(batch)
    assert capped.truncated == [True, False]  # the blank one is silence, never truncated
    assert len(capped.waveforms[0]) == (frames - 4) * 1920
    monkeypatch.setattr(qwen, "estimate_max_new_tokens", lambda texts: frames + 5)
    assert greedy.synthesize(batch).truncated == [False, False]


@pytest.mark.slow
def test_a_seed_per_call_gives_another_take(engine: QwenEngine, greedy: QwenEngine) -> None:
    batch = [Utterance(TEXTS[2], "Ryan", "en")]
    assert engine.accepts_seed and not greedy.accepts_seed
    default = engine.synthesize(batch).waveforms[0]
    np.testing.assert_array_equal(engine.synthesize(batch, seed=0).waveforms[0], default)  # 0 is the engine's seed
    other = engine.synthesize(batch, seed=12345).waveforms[0]
    np.testing.assert_array_equal(engine.synthesize(batch, seed=12345).waveforms[0], other)
    assert other.shape != default.shape or not np.array_equal(other, default)
    np.testing.assert_array_equal(engine.synthesize(batch).waveforms[0], default)  # the engine's seed is unchanged


def fake_hub_cache(root: Path, repo_id: str, checkpoint: Path | None) -> Path:
    """The Hugging Face cache layout, holding ``checkpoint`` as ``repo_id``'s main snapshot."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = root / ("models--" + repo_id.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    if checkpoint is not None:
        shutil.copytree(checkpoint, snapshot)
    else:
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")  # an interrupted download
    return snapshot


@pytest.mark.slow
def test_a_hub_id_loads_from_the_local_cache_without_the_network(
    tiny_qwen_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub
    from huggingface_hub import constants
    from qwen_tts import Qwen3TTSModel

    repo = "Qwen/Qwen3-TTS-Tiny-CustomVoice"
    snapshot = fake_hub_cache(tmp_path / "hub", repo, tiny_qwen_dir)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("asked the hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", no_network)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", no_network)
    sources = []
    real = Qwen3TTSModel.from_pretrained.__func__

    def spy(cls, source, *args, **kwargs):
        sources.append(source)
        return real(cls, source, *args, **kwargs)

    monkeypatch.setattr(Qwen3TTSModel, "from_pretrained", classmethod(spy))
    eng = QwenEngine(repo, **GREEDY)
    assert "Vivian" in eng.voices() and not eng.loaded  # config.json from the cache
    wave = eng.synthesize([Utterance("Hello there.", "Ryan", "en")]).waveforms[0]
    assert sources == [str(snapshot)]
    assert repo in eng.model_id and str(snapshot) not in eng.model_id  # cache keys name the model, not the folder
    local = QwenEngine(str(tiny_qwen_dir), **GREEDY)
    np.testing.assert_array_equal(wave, local.synthesize([Utterance("Hello there.", "Ryan", "en")]).waveforms[0])
    eng.close()
    local.close()


def test_a_hub_id_that_is_not_cached_offline_is_an_engine_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    fake_hub_cache(tmp_path / "hub", "Qwen/Half-Downloaded", None)
    for repo in ("Qwen/Not-Here-CustomVoice", "Qwen/Half-Downloaded"):
        eng = QwenEngine(repo)
        with pytest.raises(EngineError, match="not in the local Hugging Face cache"):
            eng.synthesize([Utterance("Hello.", "Ryan", "en")])


def test_render_speaks_a_spoiled_take_again_with_the_real_engine(engine: QwenEngine, tmp_path: Path) -> None:
    from voxd.book import Chunk, Pause
    from voxd.cache import ChunkCache
    from voxd.render import render, with_keys
    from voxd.takes import Check, retry_seed
    from voxd.tts.base import Engine, Synthesis

    class SpoilOnce(Engine):
        """The real engine, but the first batch's first take comes back 0.02 s long."""

        def __init__(self, real: QwenEngine) -> None:
            self.real, self.model_id, self.lockstep = real, real.model_id, True
            self.calls: list[tuple[int, int | None]] = []

        @property
        def accepts_seed(self):
            return True

        def synthesize(self, batch, *, seed=None):
            result = self.real.synthesize(batch, seed=seed)
            self.calls.append((len(batch), seed))
            waves = list(result.waveforms)
            if len(self.calls) == 1:
                waves[0] = waves[0][:480]
            return Synthesis(waveforms=waves, sample_rate=result.sample_rate, truncated=result.truncated)

    texts = [TEXTS[0], TEXTS[2]]  # 73 and 54 characters: in one batch
    cs = with_keys(
        [Chunk(chapter=0, index=i, text=t, pause=Pause.SENTENCE, voice="Ryan", language="en")
         for i, t in enumerate(texts)],
        engine.model_id,
    )
    spoiling = SpoilOnce(engine)
    cache = ChunkCache(tmp_path)
    # The tiny model's durations mean nothing: allow anything but 0.02 s for 73 characters.
    p = render(cs, spoiling, cache, batch_size=4, check=Check(min_ratio=0.01, max_ratio=100.0))
    victim = cs[0]
    assert spoiling.calls == [(2, None), (1, retry_seed(victim.key, 1))]
    assert p.retried == 1 and p.flagged == [] and p.padding_waste is not None
    again = retry_seed(victim.key, 1)  # the chunk's own seed for its first retake
    retake = engine.synthesize([Utterance(victim.text, "Ryan", "en", seed=again)], seed=again).waveforms[0]
    kept = cache.get(victim.key)[0]
    assert len(kept) == len(retake)
    np.testing.assert_allclose(kept, retake, rtol=0, atol=1 / 32767)  # the cache keeps 16-bit samples


@pytest.mark.slow
def test_the_small_model_says_once_that_it_ignores_styles(
    tiny_qwen_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """qwen_tts drops ``instruct`` for the 0.6B CustomVoice checkpoint; voxd says so, once."""
    import json
    import shutil

    small = tmp_path / "Qwen3-TTS-tiny-small"
    shutil.copytree(tiny_qwen_dir, small)
    config = json.loads((small / "config.json").read_text())
    config["tts_model_size"] = "0b6"
    (small / "config.json").write_text(json.dumps(config))
    styled = [Utterance("Hello there.", "Ryan", "en", style="Whisper, slowly.")]
    said = {}
    for path in (small, tiny_qwen_dir):
        caplog.clear()
        engine = QwenEngine(str(path), do_sample=False, subtalker_do_sample=False)
        engine.synthesize(styled)
        engine.synthesize(styled)
        engine.synthesize([Utterance("No style here.", "Ryan", "en")])
        said[path] = [r.getMessage() for r in caplog.records if "ignores style instructions" in r.getMessage()]
        engine.close()
    assert len(said[small]) == 1 and "'Whisper, slowly.'" in said[small][0]
    assert said[tiny_qwen_dir] == []  # the 1.7B model follows them
