"""voxd.tts.gpu without a GPU: the batch-size table, model sizes, the VRAM line, the choice in convert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voxd.config import Settings
from voxd.service.store import SCHEMA_VERSION, Store
from voxd.tts import gpu
from voxd.tts.gpu import MAX_BATCH, GiB, format_vram, model_size, recommended_batch_size
from voxd.tts.gpu import batch_size_for as _batch_size

BIG = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
SMALL = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"


RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def test_the_sizes_grow_with_memory_from_one_to_a_cap():
    sizes = [recommended_batch_size(BIG, int(g * GiB)) for g in range(0, 200)]
    assert sizes == sorted(sizes)
    assert min(sizes) == 1  # never zero, even on a card too small to load the model
    assert max(sizes) == MAX_BATCH
    idle_24gb = recommended_batch_size(BIG, int(23.5 * GiB))
    assert 60 <= idle_24gb <= 120  # room the codec decoder's sub-batches leave to generation
    assert recommended_batch_size(BIG, int(79 * GiB)) == MAX_BATCH  # an 80 GB card


def test_a_batch_and_the_decoder_fit_what_was_measured():
    """Generation's peak measured on an H100 (full-size random weights) stays under what
    the memory model plans per item, and the planned batch plus the weights and the
    decoder's reserve fit in the free memory."""
    run = json.loads((RESULTS / "gpu-2026-11-26-h100.json").read_text())
    measured = [b for r in run["runs"]["h100-suite/batching.json"]["results"] for b in r["phases"]]
    assert len(measured) >= 8
    for b in measured:
        assert b["generate_peak_mib"] / 2**10 <= gpu.GENERATION_FIXED_GIB + b["rows"] * gpu.ITEM_GIB, b
    for gib in (8, 12, 16, 24, 48, 80):
        size = recommended_batch_size(BIG, gib * GiB)
        if size > 1:
            planned = (gpu.WEIGHTS_GIB["1.7B"] + gpu.GENERATION_FIXED_GIB + gpu.DECODE_RESERVE_GIB
                       + size * gpu.ITEM_GIB)
            assert planned <= gib, gib


def test_the_small_model_gets_the_room_of_its_smaller_weights():
    for gib in (8, 12, 16, 24, 40):
        assert recommended_batch_size(SMALL, gib * GiB) > recommended_batch_size(BIG, gib * GiB), gib
    assert recommended_batch_size(SMALL, 80 * GiB) == MAX_BATCH


def test_an_out_of_memory_while_others_took_the_card_is_not_learned(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.db")
    settings = Settings(engine="qwen")
    before = fake_card(monkeypatch, 20)
    plan = _batch_size(settings, store)
    assert plan.remember is not None
    # Another program took 6 GiB while the render ran: the smaller size is its doing.
    monkeypatch.setattr(gpu, "probe", lambda device="auto": gpu.Card(0, before.name, before.free - 6 * GiB,
                                                                     before.total, held=before.held))
    plan.remember(10)
    fake_card(monkeypatch, 20)
    assert _batch_size(settings, store).size == plan.size
    # This process's own growth is not another program's: remembered.
    monkeypatch.setattr(gpu, "probe", lambda device="auto": gpu.Card(0, before.name, before.free - 6 * GiB,
                                                                     before.total, held=before.held + 6 * GiB))
    plan.remember(10)
    fake_card(monkeypatch, 20)
    assert _batch_size(settings, store).size == 10


@pytest.mark.parametrize(
    "name, size",
    [
        (BIG, "1.7B"),
        (SMALL, "0.6B"),
        ("/models/qwen3-tts-0.6b-customvoice", "0.6B"),
        ("/models/Qwen3-TTS-12Hz-1_7B-CustomVoice", "1.7B"),
        ("someone/finetune-0p6b", "0.6B"),
        ("Qwen/Qwen3-TTS-12Hz-10.6B-CustomVoice", "1.7B"),  # not 0.6B: unknown, so the bigger one
        ("my-own-model", "1.7B"),
    ],
)
def test_model_size_from_the_name(name, size):
    assert model_size(name) == size


def test_model_size_from_config_json_beats_the_name(tmp_path: Path):
    small = tmp_path / "voice-1.7B-renamed"
    small.mkdir()
    (small / "config.json").write_text(json.dumps({"tts_model_size": "0b6", "tts_model_type": "custom_voice"}))
    assert model_size(str(small)) == "0.6B"
    assert recommended_batch_size(str(small), 24 * GiB) == recommended_batch_size(SMALL, 24 * GiB)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"tts_model_size": "1b7"}))
    assert model_size(str(plain)) == "1.7B"
    broken = tmp_path / "broken-0.6B"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert model_size(str(broken)) == "0.6B"  # falls back to the name


def test_vram_line_format_and_none_without_cuda():
    line = format_vram(int(3.52 * GiB), int(4.1 * GiB), int(79.1 * GiB))
    assert line == "VRAM: Alloc 3.52GB | Rsrv 4.10GB / 79.1GB (5%)"
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu.vram_line() is None
    assert gpu.vram() is None
    assert gpu.probe("auto") is None
    gpu.release_cached_memory()  # harmless without CUDA


@pytest.mark.gpu
def test_the_cuda_device_is_probed_with_its_memory():
    card = gpu.probe("auto")
    assert card is not None and card.index == 0 and card.name
    assert 0 < card.free <= card.total
    free_total = gpu.vram()
    assert free_total is not None and free_total[1] == card.total
    import torch

    torch.cuda.init()  # vram_line speaks only for a process that uses CUDA
    line = gpu.vram_line()
    assert line is not None and line.startswith("VRAM: Alloc ") and line.endswith("%)")


def test_cpu_and_mps_are_not_cuda():
    assert gpu.probe("cpu") is None
    assert gpu.probe("mps") is None
    assert gpu._device_index("cuda:1") == 1 and gpu._device_index("auto") == 0


def test_importing_gpu_does_not_import_torch():
    code = "import sys, voxd.tts.gpu, voxd.render; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the choice convert makes -----------------------------------------------------------


def fake_card(monkeypatch, free_gib: float, name: str = "NVIDIA GeForce RTX 4090"):
    card = gpu.Card(index=0, name=name, free=int(free_gib * GiB), total=int(24 * GiB))
    monkeypatch.setattr(gpu, "probe", lambda device="auto": None if device == "cpu" else card)
    return card


def test_espeak_keeps_its_setting(tmp_path):
    settings = Settings(engine="espeak", espeak={"batch_size": 7})
    assert _batch_size(settings, Store(tmp_path / "s.db")) == (7, None, None)


def test_qwen_on_the_cpu_gets_a_small_default():
    if gpu.probe("auto") is not None:
        pytest.skip("this machine has CUDA")
    size, remember, _ = _batch_size(Settings(engine="qwen"))
    assert size == gpu.CPU_BATCH_SIZE == 4 and remember is None
    assert _batch_size(Settings(engine="qwen", qwen={"batch_size": 2}))[0] == 2


def test_qwen_on_a_gpu_uses_free_memory_then_what_an_oom_taught(tmp_path, monkeypatch):
    fake_card(monkeypatch, 24)
    store = Store(tmp_path / "s.db")
    settings = Settings(engine="qwen")
    estimate = recommended_batch_size(BIG, 24 * GiB)
    size, remember, ceiling = _batch_size(settings, store)
    assert size == ceiling == estimate
    remember(12)  # what render's on_resize does after a batch of 12 worked
    key = gpu.memory_key("NVIDIA GeForce RTX 4090", settings.qwen.custom_voice_model, "voxd")
    assert store.get_value(key) == "12"
    assert _batch_size(settings, store)[:3:2] == (12, estimate)  # it may grow back to the estimate
    # Another model, decode loop or card has learned nothing yet.
    assert _batch_size(settings, store, model=SMALL).size == recommended_batch_size(SMALL, 24 * GiB)
    assert _batch_size(Settings(engine="qwen", qwen={"decode_loop": "qwen_tts"}), store).size == estimate
    fake_card(monkeypatch, 24, name="NVIDIA RTX A5000")
    assert _batch_size(settings, store).size == estimate
    # Less free memory than when it was learned: the smaller estimate wins.
    fake_card(monkeypatch, 8)
    assert _batch_size(settings, store).size == recommended_batch_size(BIG, 8 * GiB) < 12
    # A size in the settings beats both.
    fake_card(monkeypatch, 24)
    assert _batch_size(Settings(engine="qwen", qwen={"batch_size": 40}), store).size == 40
    # Without a store nothing is remembered, and nothing breaks.
    size, remember, _ = _batch_size(settings, None)
    assert size == estimate and remember is None
    # device = "cpu" on a machine with a GPU: the CPU default.
    assert _batch_size(Settings(engine="qwen", qwen={"device": "cpu"}), store).size == gpu.CPU_BATCH_SIZE
    # The second book in a daemon: the model from the first one holds memory, which counts as free.
    monkeypatch.setattr(gpu, "probe", lambda device="auto": gpu.Card(0, "Other GPU", int(19.5 * GiB), 24 * GiB,
                                                                     held=int(4.5 * GiB)))
    assert _batch_size(settings, store).size == estimate


def test_store_remembers_values_across_restarts(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.get_value("k") is None
    store.set_value("k", "1")
    store.set_value("k", "2")
    store.close()
    again = Store(tmp_path / "s.db")
    assert again.get_value("k") == "2" and again.schema_version == SCHEMA_VERSION
