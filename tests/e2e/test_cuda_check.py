"""The daemon on a machine whose NVIDIA GPU torch cannot use (a 535 driver, as a real nvidia-smi
prints it, first on PATH; this torch is a CUDA 13 build): it says so at start-up with the reason and
what to install, books wait rather than run on the CPU, and ``device = "cpu"`` renders them there."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support import fake_nvidia_smi
from voxd.samples import build_sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_auto_refuses_the_cpu_on_a_gpu_machine_until_cpu_is_asked_for(daemon_factory, tmp_path, tiny_qwen_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine's torch can use a GPU: the fake nvidia-smi would not be believed")
    fake_nvidia_smi(tmp_path / "bin", "rtx3090-535")
    d = daemon_factory(
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", VOXD_ENGINE="qwen",
        VOXD_QWEN__CUSTOM_VOICE_MODEL=str(tiny_qwen_dir), VOXD_QWEN__CHECK_DURATIONS="false",
        VOXD_RETRY_DELAY_SECONDS="2", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
    )
    d.start()
    said = d.wait_for(lambda: "torch cannot use it" in d.log() and d.log(), 120, "the start-up GPU check")
    assert "the NVIDIA driver 535.183.01 supports CUDA up to 12.2" in said
    assert "torch 2.11.0" in said and "update the NVIDIA driver to 580 or newer" in said
    assert 'set [qwen] device = "cpu"' in said

    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    d.wait_for(lambda: "job 1 paused" in d.log(), 120, "the job to wait")
    [job] = d.store().jobs()
    assert job.status.value in ("queued", "running") and job.attempts <= 1
    assert any("535.183.01" in e.message for e in d.store().events(job.id))
    assert "loading Qwen3-TTS" not in d.log() and not d.outputs()  # never quietly on the CPU
    assert d.stop() == 0

    d.append_config('[qwen]\ndevice = "cpu"\n')
    d.start()
    d.wait_for(d.outputs, 240, "the audiobook rendered on the CPU")
    log = d.log()
    assert 'Qwen3-TTS runs on the CPU ([qwen] device = "cpu", although an NVIDIA GPU is here)' in log
    assert "on cpu (float32)" in log
    assert d.stop() == 0
