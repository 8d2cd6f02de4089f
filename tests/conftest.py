"""Shared pytest fixtures, and the skip for tests marked ``gpu`` where there is no CUDA device."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The read-back listens to every take with Whisper: a second or so per chunk. Tests about other
# things (and the daemons they start, which inherit this) render without it; the read-back's own
# tests, and the end-to-end ones that prove it, turn it on by name.
os.environ.setdefault("VOXD_VERIFY__MODE", "off")
# The daemon serves its web page on 127.0.0.1:8765 by default; the daemons tests start would
# all want that port. The page's own tests give it a free one.
os.environ.setdefault("VOXD_WEB__LISTEN", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped unless torch sees a CUDA device (torch is imported only
    when such a test was collected)."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is false)")
    for item in gpu:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus of real books (../shared/corpus next to the repository); skip without it."""
    path = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    if not path.is_dir():
        pytest.skip(f"test corpus not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen3-TTS CustomVoice checkpoint (tests/tiny_qwen.py), built once per session."""

    from tests.tiny_qwen import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-qwen") / "Qwen3-TTS-tiny-CustomVoice")


@pytest.fixture(scope="session")
def tiny_qwen_checkpoints(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_dir: Path) -> dict[str, Path]:
    """Tiny CustomVoice, Base (cloning) and VoiceDesign checkpoints, built once per session."""
    from tests.tiny_qwen import build_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny-kinds")
    return {
        "custom": tiny_qwen_dir,
        "base": build_tiny_checkpoint(root / "Qwen3-TTS-tiny-Base", kind="base"),
        "design": build_tiny_checkpoint(root / "Qwen3-TTS-tiny-VoiceDesign", kind="voice_design"),
    }


#: Tiny checkpoints of other shapes than the released ones (tests/tiny_qwen.py's Shape): other
#: code groups per frame (fewer and more than 16), heads, layers, head and hidden sizes, a
#: predictor as wide as its talker (no projection between them), and one the decode loop
#: cannot run (the talker's sliding-window attention).
TINY_QWEN_SHAPES = {
    "4 groups, 3 layers, MHA": dict(code_groups=4, talker_hidden=48, talker_layers=3, talker_heads=2,
                                    talker_kv_heads=2, talker_head_dim=8, predictor_hidden=48, predictor_layers=2,
                                    predictor_heads=4, predictor_kv_heads=1, predictor_head_dim=8),
    "20 groups, 8 heads": dict(code_groups=20, talker_heads=8, talker_kv_heads=2, predictor_hidden=24,
                               predictor_heads=3, predictor_kv_heads=3, predictor_head_dim=8),
    "sliding window": dict(sliding_window=8),
}


@pytest.fixture(scope="session")
def tiny_qwen_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny CustomVoice checkpoints of the shapes in TINY_QWEN_SHAPES, built once per session."""
    from tests.tiny_qwen import Shape, build_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny-shapes")
    return {name: build_tiny_checkpoint(root / f"shape-{i}", shape=Shape(**dims))  # type: ignore[arg-type]
            for i, (name, dims) in enumerate(TINY_QWEN_SHAPES.items())}


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Two torch threads on a busy two-core machine are many times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def serve_espeak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One real ``voxd serve --engine espeak`` on loopback for the whole session (tests/support.py)."""
    from tests.support import ServeProcess

    with ServeProcess(tmp_path_factory.mktemp("serve-espeak")) as server:
        yield server


@pytest.fixture(scope="session")
def serve_piper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One real ``voxd serve --engine piper`` (the test voice, its noise off) for the whole session."""
    from tests.support import ServeProcess

    with ServeProcess(tmp_path_factory.mktemp("serve-piper"), engine="piper",
                      extra_config="[piper]\nnoise_scale = 0.0\nnoise_w = 0.0\n") as server:
        yield server
