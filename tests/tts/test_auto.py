"""``engine = "auto"``: Qwen3-TTS where a usable GPU is, else Piper with a voice, else eSpeak.

The GPU is judged from nvidia-smi (a program first on PATH printing what real ones print:
tests/nvidia), /proc and torch's own files; this machine has no GPU, so the Piper and eSpeak
choices are its own, and the Qwen3-TTS one is the H200's nvidia-smi with this torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import fake_nvidia_smi
from voxd.config import Settings
from voxd.tts import auto, cuda_check
from voxd.tts.auto import choose, resolve

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def path_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """PATH with only the given machine's nvidia-smi on it (None: no nvidia-smi at all)."""
    if cuda_check.gather_proc()[0]:
        pytest.skip("this machine has NVIDIA hardware: its own GPU would be judged")

    def point(machine: str | None) -> None:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        if machine:
            fake_nvidia_smi(folder, machine)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/usr/bin{os.pathsep}/bin")
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return point


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", **values)


def test_auto_is_the_default() -> None:
    assert Settings().engine == "auto"


def test_without_a_gpu_piper_speaks_when_a_voice_is_installed(tmp_path, path_with) -> None:
    path_with(None)
    choice = choose(settings(tmp_path))
    assert choice.engine == "piper", choice
    assert "Piper (en_US-joe-medium)" in choice.why and "no NVIDIA GPU on this machine" in choice.why
    chosen, said = resolve(settings(tmp_path))
    assert chosen.engine == "piper" and said == choice


def test_without_a_gpu_or_a_piper_voice_espeak_speaks(tmp_path, path_with, monkeypatch) -> None:
    from voxd.tts import piper_voices

    path_with(None)
    monkeypatch.setattr(piper_voices, "packaged_voices", lambda: ())  # a machine without the voice package
    choice = choose(settings(tmp_path))
    assert choice.engine == "espeak" and "no Piper voice is installed" in choice.why, choice


def test_a_usable_gpu_means_qwen(tmp_path, path_with) -> None:
    pytest.importorskip("qwen_tts")
    path_with("h200")
    choice = choose(settings(tmp_path))
    assert choice.engine == "qwen", choice
    assert "the NVIDIA H200, compute capability 9.0, with torch 2.11" in choice.why and "CUDA 13.0" in choice.why


def test_a_gpu_torch_cannot_use_is_no_reason_for_qwen(tmp_path, path_with) -> None:
    path_with("rtx3090-535")  # driver 535: CUDA 12.2, and this torch is a CUDA 13 build
    choice = choose(settings(tmp_path))
    assert choice.engine == "piper", choice
    assert "torch cannot use it" in choice.why and "supports CUDA up to 12.2" in choice.why
    assert "; to use it: update the NVIDIA driver to 580 or newer" in choice.why


def test_device_cpu_is_no_gpu_for_auto(tmp_path, path_with) -> None:
    path_with("h200")
    assert choose(settings(tmp_path, qwen={"device": "cpu"})).engine == "piper"


def test_a_named_engine_is_kept_and_auto_is_chosen_once(tmp_path, path_with) -> None:
    path_with(None)
    named, said = resolve(settings(tmp_path, engine="espeak"))
    assert named.engine == "espeak" and said is None
    first = resolve(settings(tmp_path))[1]
    path_with("h200")  # the machine changes under a running daemon: its choice stays
    assert resolve(settings(tmp_path))[1] is first
    auto._chosen.clear()


def test_choosing_imports_no_torch(tmp_path) -> None:
    code = ("import sys; from voxd.config import Settings; from voxd.tts.auto import resolve;"
            f"s, c = resolve(Settings(state_dir={str(tmp_path)!r})); print(c.engine);"
            "assert 'torch' not in sys.modules, 'choosing the engine imported torch'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
