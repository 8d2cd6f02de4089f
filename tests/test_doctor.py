"""``voxd doctor`` as a person runs it: the CUDA facts of a machine (nvidia-smi first on PATH printing
what a real one prints), the configured card's free memory, the models on disk; and ``voxd doctor
--fetch`` fetching them from a hub on 127.0.0.1, killed half-way and run again (it resumes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakehub import FakeHub, partial_bytes
from tests.support import fake_nvidia_smi

CUSTOM = "test-org/Qwen3-TTS-tiny-CustomVoice"
BASE = "test-org/Qwen3-TTS-tiny-Base"
WEIGHTS = "model.safetensors"


def checkpoint(weights: int, kind: str) -> dict[str, bytes]:
    """A checkpoint in the Qwen3-TTS layout, its weights random bytes (fetched, never loaded)."""
    return {
        "config.json": f'{{"tts_model_type": "{kind}"}}'.encode(),
        "model.safetensors": os.urandom(weights),
        "speech_tokenizer/config.json": b'{"model_type": "qwen3_tts_tokenizer_12hz"}',
        "speech_tokenizer/model.safetensors": os.urandom(1 << 20),
    }


def write_local(folder: Path, kind: str) -> Path:
    for name, data in checkpoint(1024, kind).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def doctor(tmp_path: Path, *args: str, env: dict[str, str], background: bool = False):
    argv = [sys.executable, "-m", "voxd", "doctor", "--config", str(tmp_path / "voxd.toml"), *args]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    if background:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
                                cwd=tmp_path)
    return subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=300)


@pytest.mark.slow
def test_doctor_says_the_cuda_facts_and_the_configured_cards_free_memory(tmp_path):
    fake_nvidia_smi(tmp_path / "bin", "two-cards")
    (tmp_path / "voxd.toml").write_text('engine = "qwen"\nstate_dir = "state"\n[qwen]\ndevice = "cuda:1"\n')
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1"}
    out = doctor(tmp_path, env=env).stdout
    lines = {line[4:13].strip(): line[13:] for line in out.splitlines() if len(line) > 13}
    assert lines["torch"].startswith("2.11.0") and "built for CUDA 13.0, kernels for sm_75 to sm_120" in lines["torch"]
    assert lines["driver"] == "NVIDIA 580.95.05, supports CUDA up to 13.0"
    assert lines["gpu 0"] == "NVIDIA GeForce RTX 4090, compute capability 8.9: supported by this torch build"
    assert lines["gpu 1"] == "NVIDIA RTX A6000, compute capability 8.6: supported by this torch build"
    # The card [qwen] device names, not the first one.
    assert lines["vram"].startswith("cuda:1 (NVIDIA RTX A6000): 47.5 of 48.0 GiB free")
    models = [text for line in out.splitlines() if line[4:13].strip() == "model" for text in [line[13:]]]
    assert len(models) == 3 and all("not on this machine yet (about 4.50 GB)" in m for m in models)
    assert "voxd doctor --fetch" in models[0]
    assert str(tmp_path / "hf" / "hub") in lines["models"] and "GB free" in lines["models"]


@pytest.mark.slow
def test_doctor_fetch_gets_the_models_and_resumes_an_interrupted_fetch(tmp_path):
    design = write_local(tmp_path / "design", "voice_design")
    (tmp_path / "voxd.toml").write_text(
        f'engine = "qwen"\nstate_dir = "state"\n[qwen]\ncustom_voice_model = "{CUSTOM}"\n'
        f'base_model = "{BASE}"\nvoice_design_model = "{design}"\n'
        'device = "cpu"\n'  # Qwen3-TTS on the CPU on purpose: no warning of a missing GPU to count
    )
    repos = {CUSTOM: checkpoint(12 << 20, "custom_voice"), BASE: checkpoint(2 << 20, "base")}
    with FakeHub(repos, bytes_per_second=2e6) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        first = doctor(tmp_path, "--fetch", env=env, background=True)
        deadline = time.monotonic() + 120
        while partial_bytes(tmp_path / "hf") < 10 << 20:  # a 10 MB piece of the weights is on disk
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the fetch did not get under way"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        first.stdout.close()
        assert partial_bytes(tmp_path / "hf"), "the kill came after the download ended"

        again = doctor(tmp_path, "--fetch", env=env)
        bodies = hub.bodies(CUSTOM, WEIGHTS)
    out = again.stdout
    assert again.returncode == 0, out + again.stderr
    assert f"downloading {CUSTOM}: " in out and "MB (" in out  # progress with a total and a percentage
    assert f"ok  fetch    {CUSTOM}: on this machine" in out and f"ok  fetch    {BASE}: on this machine" in out
    assert f"ok  model    {CUSTOM}: on this machine" in out
    assert f"ok  model    {design} (qwen.voice_design_model): local directory" in out
    (whole, _), (asked, resumed) = bodies  # once whole, once the rest: the piece on disk is not sent again
    assert whole is None and asked is not None
    start = int(asked.removeprefix("bytes=").rstrip("-"))
    assert start >= 10 << 20 and resumed == (12 << 20) - start


@pytest.mark.slow
def test_doctor_without_fetch_downloads_nothing(tmp_path):
    (tmp_path / "voxd.toml").write_text(
        f'engine = "qwen"\nstate_dir = "state"\n[qwen]\ncustom_voice_model = "{CUSTOM}"\n')
    with FakeHub({CUSTOM: checkpoint(1 << 20, "custom_voice")}) as hub:
        out = doctor(tmp_path, env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf")})
        assert not [r for r in hub.requests if "/resolve/" in r[1]]
    assert f"{CUSTOM}: not on this machine yet" in out.stdout


@pytest.fixture(autouse=True)
def _every_card_visible(monkeypatch):
    """torch's device numbers are nvidia-smi's only when CUDA_VISIBLE_DEVICES is unset."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.slow
def test_doctor_checks_the_piper_voice_where_piper_is_the_engine(tmp_path):
    (tmp_path / "voxd.toml").write_text('engine = "piper"\nstate_dir = "state"\n')
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    good = doctor(tmp_path, env=env)
    [line] = [line for line in good.stdout.splitlines() if line[4:13].strip() == "piper"]
    assert line.startswith("ok ") and "en_US-joe-medium (en-US, 22050 Hz)" in line
    (tmp_path / "state" / "voices" / "piper").mkdir(parents=True)
    broken = tmp_path / "state" / "voices" / "piper" / "broken.onnx"
    broken.write_bytes(b"not a model")
    from tests.support import piper_voice

    broken.with_name("broken.onnx.json").write_text(piper_voice()[1].read_text())
    (tmp_path / "voxd.toml").write_text('engine = "piper"\nstate_dir = "state"\n[piper]\nvoice = "broken"\n')
    bad = doctor(tmp_path, env=env)
    [line] = [line for line in bad.stdout.splitlines() if line[4:13].strip() == "piper"]
    assert bad.returncode == 1 and line.startswith("NO ") and "broken.onnx: Piper could not load this voice" in line
    # where piper is not the engine, the same voice is a note, not a problem
    (tmp_path / "voxd.toml").write_text('engine = "espeak"\nstate_dir = "state"\n[piper]\nvoice = "broken"\n')
    assert "Piper could not load" in doctor(tmp_path, env=env).stdout


@pytest.mark.slow
def test_doctor_says_which_recogniser_reads_back_and_names_a_wrong_model_setting(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "VOXD_VERIFY__MODE": "all"}
    (tmp_path / "voxd.toml").write_text('engine = "espeak"\nstate_dir = "state"\n')
    [line] = [x for x in doctor(tmp_path, env=env).stdout.splitlines() if x[4:13].strip() == "verify"]
    assert line.startswith("ok ") and "Whisper tiny.en (English only), every take read back" in line
    (tmp_path / "voxd.toml").write_text('engine = "espeak"\nstate_dir = "state"\n[verify]\nmodel = "/no/model"\n')
    out = doctor(tmp_path, env=env)
    [line] = [x for x in out.stdout.splitlines() if x[4:13].strip() == "verify"]
    assert out.returncode == 1 and line.startswith("NO ") and "/no/model is not a faster-whisper" in line


def _labels(out: str) -> list[str]:
    return [line[4:13].strip() for line in out.splitlines()[1:] if len(line) > 13]  # after "voxd 0.1.0, ..."


def test_doctor_says_which_engine_auto_chose_and_warns_of_qwen_without_a_gpu(tmp_path):
    """This machine has no NVIDIA GPU: "auto" is Piper (its voice package is installed), and
    a configured "qwen" is a problem, said first, with what auto would choose."""
    from voxd.tts.cuda_check import gather_proc

    if gather_proc()[0]:
        pytest.skip("this machine has NVIDIA hardware")
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    (tmp_path / "voxd.toml").write_text('state_dir = "state"\n')
    out = doctor(tmp_path, env=env).stdout
    [line] = [x for x in out.splitlines() if x[4:13].strip() == "engine"]
    assert line.startswith("ok ") and 'engine = "auto" chose piper: Piper (en_US-joe-medium) on the CPU' in line
    assert "no NVIDIA GPU on this machine" in line and _labels(out)[:2] == ["config", "engine"]
    (tmp_path / "voxd.toml").write_text('engine = "qwen"\nstate_dir = "state"\n')
    qwen = doctor(tmp_path, env=env)
    [line] = [x for x in qwen.stdout.splitlines() if x[4:13].strip() == "engine"]
    assert qwen.returncode == 1 and line.startswith("NO ")
    assert "qwen, but Qwen3-TTS cannot run fast here (no NVIDIA GPU on this machine)" in line
    assert 'engine = "auto" would choose piper here' in line


def test_doctor_with_remote_shows_the_servers_models_and_voices_first(tmp_path):
    from tests.servers import OddSpeechServer

    with OddSpeechServer(model="kokoro") as server:
        (tmp_path / "voxd.toml").write_text(f'engine = "remote"\nvoice = "af_heart"\nstate_dir = "state"\n'
                                            f'[remote]\nurls = ["{server.url}"]\n')
        out = doctor(tmp_path, env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}).stdout
    labels = _labels(out)
    assert labels[:5] == ["config", "engine", "server", "voices", "voice"], out
    lines = {x[4:13].strip(): x for x in out.splitlines() if len(x) > 13}
    assert f"{server.url}: serves kokoro" in lines["server"] and lines["server"].startswith("ok ")
    assert "kokoro: en-gb, en-us; its default voice: en-us" in lines["voices"]
    assert lines["voice"].startswith("NO ") and "af_heart" in lines["voice"]
    assert labels.index("voice") < labels.index("inbox") < labels.index("espeak") < labels.index("torch")
