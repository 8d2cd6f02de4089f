"""voxd.tts.quiet: qwen_tts imported without its start-up noise, in a fresh process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTORCH_CUDA_ALLOC_CONF"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**environment, **env})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sox") is not None, reason="SoX is installed: qwen_tts has nothing to say about it")
def test_qwen_tts_is_imported_without_a_word() -> None:
    plain = python("import qwen_tts")
    assert "SoX could not be found" in plain.stderr and "flash-attn" in plain.stdout  # what it says unasked
    quiet = python("from voxd.tts.quiet import import_qwen_tts; print(import_qwen_tts().Qwen3TTSModel.__name__)")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "Qwen3TTSModel\n" and quiet.stderr == ""


@pytest.mark.slow
def test_the_cuda_allocator_gets_expandable_segments_unless_the_user_chose(tiny_qwen_dir) -> None:
    """For qwen_tts's own loop only (voxd's allocates one static cache per batch shape)."""
    code = ("import os; from voxd.tts.qwen import QwenEngine; "
            f"e = QwenEngine({str(tiny_qwen_dir)!r}, decode_loop='{{}}'); e._load(); "
            "print(os.environ.get('PYTORCH_CUDA_ALLOC_CONF'))")
    assert python(code.format("qwen_tts")).stdout.strip() == "expandable_segments:True"
    assert python(code.format("voxd")).stdout.strip() == "None"
    code = code.format("qwen_tts")
    assert python(code, PYTORCH_CUDA_ALLOC_CONF="max_split_size_mb:256").stdout.strip() == "max_split_size_mb:256"
