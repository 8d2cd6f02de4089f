"""`voxd render BOOK -o OUT.m4b --engine qwen` as a person runs it, in a subprocess, with the tiny
random-weight Qwen3-TTS checkpoint (tests/tiny_qwen.py) standing in for the real one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from voxd.samples import SAMPLE_CHAPTERS, build_sample

pytestmark = pytest.mark.e2e


def run_render(book: Path, out: Path, tmp_path: Path, model: Path, *extra: str, **env: str):
    config = tmp_path / "voxd.toml"
    config.write_text("")  # nothing from ~/.config or /etc
    environment = {
        **os.environ,
        "VOXD_CONFIG": str(config),
        "VOXD_STATE_DIR": str(tmp_path / "state"),
        "VOXD_QWEN__CUSTOM_VOICE_MODEL": str(model),
        # The random model's durations say nothing about its text: do not retake them.
        "VOXD_QWEN__CHECK_DURATIONS": "false",
        "OMP_NUM_THREADS": "1",  # torch on this busy two-core machine: one thread is fastest
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "voxd", "render", str(book), "-o", str(out), "--engine", "qwen", "-q", *extra],
        capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=300,
    )


@pytest.mark.slow
def test_render_with_qwen_makes_a_chaptered_m4b(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    book = build_sample(tmp_path / "alice.epub")
    out = tmp_path / "out" / "alice.m4b"
    done = run_render(book, out, tmp_path, tiny_qwen_dir, "-v")
    assert done.returncode == 0, done.stderr[-5000:]
    assert str(out) in done.stdout and "3 chapters" in done.stdout
    with av.open(str(out)) as container:
        [audio] = [s for s in container.streams if s.type == "audio"]
        assert audio.codec_context.name == "aac" and audio.codec_context.sample_rate == 24000
        assert container.duration > 0
        titles = [c["metadata"].get("title") for c in container.chapters()]
        starts = [c["start"] for c in container.chapters()]
    assert titles == [title for title, _ in SAMPLE_CHAPTERS]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # Qwen's render loop logged its batches (at INFO: it runs in lockstep), and no VRAM line on the CPU.
    assert "Batch (" in done.stderr and "real time" in done.stderr and "padding" in done.stderr
    assert "VRAM:" not in done.stderr
    assert "loading Qwen3-TTS from" in done.stderr and "on cpu" in done.stderr
    # Nothing from what importing qwen_tts prints: neither SoX nor flash-attn is used.
    for noise in ("SoX", "sox: not found", "flash-attn", "********"):
        assert noise not in done.stdout and noise not in done.stderr, noise

    # The cache is keyed by the engine's model id: a second run renders nothing and is the same book.
    again = tmp_path / "out" / "again.m4b"
    second = run_render(book, again, tmp_path, tiny_qwen_dir, "-v")
    assert second.returncode == 0, second.stderr[-5000:]
    assert "Batch (" not in second.stderr
    with av.open(str(again)) as container:
        assert [c["metadata"].get("title") for c in container.chapters()] == titles
