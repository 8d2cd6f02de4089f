"""The GPU as the renderer sees it: free memory, a batch size that fits, one log line.

Nothing here imports torch when the module is imported; the functions that need
it import it when called, and the ones that only report (``vram_line``,
``release_cached_memory``) do nothing unless something else already did (a
process that never loaded torch has no GPU memory to speak of).

Batch size. Qwen3-TTS runs a batch in lockstep, so memory grows with the batch
(key/value cache, activations, the vocoder's decode) on top of the weights. The
table below is for the 1.7B model in bfloat16, keyed on the memory *free* before
the model loads; between its rows the size is interpolated, above 24 GiB it
keeps the same slope (an 80 GB card holds far more than a 24 GB one) up to
:data:`MAX_BATCH`, below 8 GiB it shrinks to 1. The 0.6B model needs about 2 GiB
less for its weights and less per item (a narrower talker), so it gets the
1.7B size for 2 GiB more memory, times 1.3. These are starting points: a batch
that still runs out of memory is halved and retried by the renderer, and the
size that worked is remembered for that GPU and model.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

GiB = 2**30

#: (GiB free before the model loads, chunks per batch) for Qwen3-TTS 1.7B in bfloat16.
TABLE_1_7B: tuple[tuple[float, int], ...] = ((8.0, 6), (12.0, 12), (16.0, 20), (24.0, 32))
#: No batch larger than this, whatever the card: past it lockstep padding and the
#: vocoder's peak grow faster than throughput.
MAX_BATCH = 128
#: Chunks per batch when the model runs on the CPU (no CUDA).
CPU_BATCH_SIZE = 4
#: The 0.6B model: weights this much smaller, and this many more items in the same memory.
_SMALL_WEIGHTS_GIB = 2.0
_SMALL_ITEMS_FACTOR = 1.3


@dataclass(frozen=True, slots=True)
class Card:
    """One CUDA device as torch sees it."""

    index: int
    name: str
    free: int  # bytes free on the device
    total: int  # bytes
    held: int = 0  # bytes this process already holds there (a model loaded for an earlier book)

    @property
    def available(self) -> int:
        """What the model and its batches may use: the free memory plus what this process holds,
        so the second book in a daemon gets the same batch size as the first."""
        return self.free + self.held


def model_size(model_id_or_dir: str) -> str:
    """"0.6B" or "1.7B": from the checkpoint's config.json (``tts_model_size``, "0b6" or
    "1b7") when it is on this machine, else from the name; "1.7B" when neither says."""
    config = _local_config(model_id_or_dir)
    if config is not None:
        size = _size_from_text(str(config.get("tts_model_size", "")))
        if size:
            return size
    return _size_from_text(model_id_or_dir) or "1.7B"


def _size_from_text(text: str) -> str | None:
    text = text.lower()
    if re.search(r"(?<![\d.])0[._p-]?6b|0b6", text):
        return "0.6B"
    if re.search(r"(?<![\d.])1[._p-]?7b|1b7", text):
        return "1.7B"
    return None


def _local_config(model: str) -> dict[str, Any] | None:
    from .tts.qwen_checkpoint import read_checkpoint_config  # no heavy imports there at module level

    return read_checkpoint_config(model)


def _table(free_gib: float) -> float:
    """The 1.7B table, interpolated, extended on both sides with its end slopes."""
    points = TABLE_1_7B
    if free_gib <= points[0][0]:
        (x0, y0), (x1, y1) = points[0], points[1]
    elif free_gib >= points[-1][0]:
        (x0, y0), (x1, y1) = points[-2], points[-1]
    else:
        i = next(i for i in range(1, len(points)) if free_gib <= points[i][0])
        (x0, y0), (x1, y1) = points[i - 1], points[i]
    return y0 + (free_gib - x0) * (y1 - y0) / (x1 - x0)


def recommended_batch_size(model_id_or_dir: str, free_bytes: int) -> int:
    """Chunks per batch for Qwen3-TTS ``model_id_or_dir`` on a card with ``free_bytes``
    free before the model is loaded; between 1 and :data:`MAX_BATCH`."""
    free_gib = max(0.0, free_bytes / GiB)
    if model_size(model_id_or_dir) == "0.6B":
        size = _table(free_gib + _SMALL_WEIGHTS_GIB) * _SMALL_ITEMS_FACTOR
    else:
        size = _table(free_gib)
    return int(max(1, min(MAX_BATCH, size)))


def memory_key(gpu_name: str, model: str) -> str:
    """The store key under which the batch size that fits ``model`` on ``gpu_name`` is kept."""
    return f"batch_size:{gpu_name}:{model}"


def _device_index(device: str) -> int | None:
    """The CUDA index that ``device`` (auto, cuda, cuda:N, cpu, mps) asks for; None for no CUDA."""
    device = device.strip().lower()
    if device in ("auto", "cuda"):
        return 0
    if device.startswith("cuda:"):
        try:
            return int(device.split(":", 1)[1])
        except ValueError:
            return None
    return None


def probe(device: str = "auto") -> Card | None:
    """The CUDA device that ``device`` would use, with its free memory; None when the
    model would run without CUDA (the CPU, mps, no torch, no driver)."""
    index = _device_index(device)
    if index is None:
        return None
    try:
        import torch
    except ImportError:
        return None
    try:
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return None
        free, total = torch.cuda.mem_get_info(index)
        held = torch.cuda.memory_reserved(index)
        return Card(index=index, name=torch.cuda.get_device_name(index), free=int(free), total=int(total),
                    held=int(held))
    except Exception:  # a driver that torch cannot talk to: as good as none
        return None


def vram(device: str = "auto") -> tuple[int, int] | None:
    """(free bytes, total bytes) of the CUDA device, or None without CUDA."""
    card = probe(device)
    return None if card is None else (card.free, card.total)


def vram_line(index: int = 0) -> str | None:
    """``VRAM: Alloc 3.52GB | Rsrv 4.10GB / 79.1GB (5%)``: this process's allocated and
    reserved memory and the card's size (GiB); None when this process uses no CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        allocated = torch.cuda.memory_allocated(index)
        reserved = torch.cuda.memory_reserved(index)
        _, total = torch.cuda.mem_get_info(index)
    except Exception:
        return None
    return format_vram(allocated, reserved, total)


def format_vram(allocated: int, reserved: int, total: int) -> str:
    """The VRAM line from byte counts (see :func:`vram_line`)."""
    share = 100.0 * reserved / total if total else 0.0
    return f"VRAM: Alloc {allocated / GiB:.2f}GB | Rsrv {reserved / GiB:.2f}GB / {total / GiB:.1f}GB ({share:.0f}%)"


def release_cached_memory() -> None:
    """Hand the CUDA caching allocator's idle blocks back to the driver (between jobs,
    after an out-of-memory); nothing when this process never used CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            gc.collect()
            torch.cuda.empty_cache()
    except Exception:
        pass


class BatchMemory(Protocol):
    """Where a batch size that an out-of-memory taught is kept between books (the job store)."""

    def get_value(self, key: str) -> str | None: ...

    def set_value(self, key: str, value: str) -> None: ...


def batch_size_for(
    settings: Settings, memory: BatchMemory | None = None
) -> tuple[int, Callable[[int], None] | None]:
    """Chunks per batch, and how to remember a smaller size that an out-of-memory taught.

    eSpeak: ``espeak.batch_size``. Qwen3-TTS: ``qwen.batch_size`` if set; on the CPU
    a small default; on a GPU the size recommended for its free memory, or the size
    remembered in ``memory`` for this GPU and model after an out-of-memory if smaller.
    The remote engine has no batches (its servers batch): 1.
    """
    if settings.engine == "espeak":
        return settings.espeak.batch_size, None
    if settings.engine != "qwen":
        return 1, None
    q = settings.qwen
    card = probe(q.device)
    if card is None:
        return q.batch_size or CPU_BATCH_SIZE, None
    key = memory_key(card.name, q.custom_voice_model)
    remember = (lambda size: memory.set_value(key, str(size))) if memory is not None else None
    if q.batch_size:
        return q.batch_size, remember
    size = recommended_batch_size(q.custom_voice_model, card.available)
    saved = memory.get_value(key) if memory is not None else None
    learned = int(saved) if saved and saved.isdigit() and int(saved) > 0 else None
    if learned is not None and learned < size:
        log.info("%s: %d chunks per batch (learned after running out of memory; %d would be the estimate)",
                 card.name, learned, size)
        return learned, remember
    log.info("%s, %.1f GiB free: %d chunks per batch", card.name, card.available / GiB, size)
    return size, remember
