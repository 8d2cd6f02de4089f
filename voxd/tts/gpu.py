"""The GPU as the renderer sees it: free memory, a batch size that fits, one log line.

Nothing here imports torch when the module is imported; the functions that need
it import it when called, and the ones that only report (``vram_line``,
``release_cached_memory``) do nothing unless something else already did (a
process that never loaded torch has no GPU memory to speak of).

Batch size. Qwen3-TTS runs a batch in lockstep, so memory grows with the batch on
top of the weights. The size comes from a memory model measured on an H100 and an
H200 with full-size random weights in bfloat16 (``bench/results/gpu-2026-11-26*.json``;
``bench/batching.py --memory`` prints the sizes it gives):

* weights: 4.1 GiB for the 1.7B model with its codec (measured 4156 MiB allocated),
  plus the decode loop's fixed buffers; the 0.6B model about 2 GiB less;
* generation: voxd's loop holds a static cache per item for the whole frame budget
  (the prompt plus 2.5x the text's expected frames, rounded up to 256 positions),
  measured 105-128 MiB per item at 1024 positions, about 0.125 MiB per position;
  the library's own loop grows a cache of about 0.23 MiB per item per position as it
  goes. :data:`ITEM_GIB` takes 1280 positions at 0.125 MiB (a long chunk's budget),
  for either loop, on top of :data:`GENERATION_FIXED_GIB` per batch;
* decoding: 2.2-2.4 MiB per item per frame, 700 MiB for a 26-second chunk. The codec
  decoder runs in sub-batches sized for the memory left (:mod:`voxd.tts.qwen_decode`),
  so it needs only :data:`DECODE_RESERVE_GIB` set aside, room for one long chunk.

So a batch is what fits in 90 % of the free memory after the weights and that
reserve, at :data:`ITEM_GIB` an item: about 95 items on an idle 24 GB card, 28 at
12 GB, 5 at 8 GB, and :data:`MAX_BATCH` on an 80 GB one. These are starting
points: a batch that still runs out of memory is halved and retried by the
renderer, and the size that worked is remembered for that GPU, model and loop
(unless another program took the memory: see :func:`others_grew`).
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

GiB = 2**30

#: GiB of weights (talker, code predictor, codec) by model size, in bfloat16.
WEIGHTS_GIB = {"1.7B": 4.4, "0.6B": 2.4}
#: GiB per item in a batch while it generates (see the module docstring).
ITEM_GIB = 1280 * 0.125 / 1024
#: GiB a batch's generation takes whatever its size (prefill activations, buffers):
#: measured up to 0.9 GiB, at small batches.
GENERATION_FIXED_GIB = 1.0
#: GiB kept for the codec decoder, which takes what is left in sub-batches: one long chunk.
DECODE_RESERVE_GIB = 1.0
#: The share of the free memory a batch is planned to fill.
HEADROOM = 0.9
#: No batch larger than this: measured up to 384 (154x real time on an H100, +19 %
#: over 256); past it padding and the wait for a window's first chapter grow.
MAX_BATCH = 384
#: Chunks per batch when the model runs on the CPU (no CUDA).
CPU_BATCH_SIZE = 4
#: Another program taking this much more of the card than when a render began makes
#: its out-of-memory not worth remembering.
OTHERS_GREW_GIB = 1.0


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
    from .qwen_checkpoint import read_checkpoint_config  # no heavy imports there at module level

    return read_checkpoint_config(model)


def recommended_batch_size(model_id_or_dir: str, free_bytes: int) -> int:
    """Chunks per batch for Qwen3-TTS ``model_id_or_dir`` on a card with ``free_bytes``
    free before the model is loaded; between 1 and :data:`MAX_BATCH`."""
    free_gib = max(0.0, free_bytes / GiB)
    weights = WEIGHTS_GIB[model_size(model_id_or_dir)]
    room = free_gib * HEADROOM - weights - GENERATION_FIXED_GIB - DECODE_RESERVE_GIB
    return int(max(1, min(MAX_BATCH, room // ITEM_GIB)))


def others_grew(before: Card, after: Card) -> bool:
    """Whether other programs hold markedly more of the card than they did: an
    out-of-memory then says nothing about what this process's batches need."""
    others_before = before.total - before.free - before.held
    others_after = after.total - after.free - after.held
    return others_after - others_before > OTHERS_GREW_GIB * GiB


def memory_key(gpu_name: str, model: str, loop: str = "voxd") -> str:
    """The store key under which the batch size that fits ``model`` on ``gpu_name`` with
    decode loop ``loop`` is kept. "v2": sizes learned before the codec decoder ran in
    sub-batches were bound by its peak, and are forgotten."""
    return f"batch_size:v2:{gpu_name}:{model}:{loop}"


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


class BatchPlan(NamedTuple):
    """The batch size a render starts with, how to remember a size that worked after it
    changed, and the most the render may grow back to (what the card should hold)."""

    size: int
    remember: Callable[[int], None] | None = None
    ceiling: int | None = None


def batch_size_for(settings: Settings, memory: BatchMemory | None = None, model: str | None = None) -> BatchPlan:
    """Chunks per batch for ``model`` (default: the CustomVoice one; a cloned voice's
    book passes the Base model), and how to remember the size that worked.

    eSpeak: ``espeak.batch_size``. Piper: ``piper.batch_size``, or four chunks per worker
    (its workers share a batch, longest first). Qwen3-TTS: ``qwen.batch_size`` if set; on the CPU
    a small default; on a GPU the size recommended for its free memory, or the size
    remembered in ``memory`` for this GPU, model and decode loop if smaller. A size
    learned while other programs took more of the card is not remembered
    (:func:`others_grew`). The remote engine has no batches (its servers batch): 1.
    """
    if settings.engine == "espeak":
        return BatchPlan(settings.espeak.batch_size)
    if settings.engine == "piper":
        from .piper import default_workers

        p = settings.piper
        return BatchPlan(p.batch_size or 4 * (p.workers or default_workers()))
    if settings.engine != "qwen":
        return BatchPlan(1)
    q = settings.qwen
    model = model or q.custom_voice_model
    card = probe(q.device)
    if card is None:
        return BatchPlan(q.batch_size or CPU_BATCH_SIZE)
    key = memory_key(card.name, model, q.decode_loop)
    remember = _rememberer(memory, key, card, q.device) if memory is not None else None
    if q.batch_size:
        return BatchPlan(q.batch_size, remember, q.batch_size)
    size = recommended_batch_size(model, card.available)
    saved = memory.get_value(key) if memory is not None else None
    learned = int(saved) if saved and saved.isdigit() and int(saved) > 0 else None
    if learned is not None and learned < size:
        log.info("%s: %d chunks per batch (learned after running out of memory; up to %d as batches keep fitting)",
                 card.name, learned, size)
        return BatchPlan(learned, remember, size)
    log.info("%s, %.1f GiB free: %d chunks per batch", card.name, card.available / GiB, size)
    return BatchPlan(size, remember, size)


def _rememberer(memory: BatchMemory, key: str, before: Card, device: str) -> Callable[[int], None]:
    def remember(size: int) -> None:
        after = probe(device)
        if after is not None and others_grew(before, after):
            taken = (after.total - after.free - after.held) - (before.total - before.free - before.held)
            log.warning("%s: other programs took %.1f GiB more of it during this render; "
                        "%d chunks per batch is not remembered for the next book", after.name, taken / GiB, size)
            return
        memory.set_value(key, str(size))

    return remember
