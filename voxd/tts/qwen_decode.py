"""Qwen3-TTS's codec decoder in sub-batches sized for the memory that is free.

qwen_tts turns a whole batch's codes into audio in one call, padded to the longest
item, and that call, not generation, sets a batch's peak memory. Measured on an
H200 in bfloat16 (``bench/batching.py --decode-probe``): 2.2-2.4 MiB per item per
frame, so 700 MiB per item for a 26-second chunk, against about 0.11 MiB per item
per cache position for voxd's generation. A batch sized for generation alone would
run out of memory after its whole generation had run.

So the decoder is handed at most as many items as the free memory holds (the
longest first, so that an item is padded to a near neighbour), and a sub-batch
that still runs out of memory is halved and tried again: generated codes are never
thrown away for want of decoder memory. The decoder is causal and trims each item
to its own length, so an item's audio does not depend on the company it is decoded
in (``tests/tts/test_qwen_decode.py`` holds it to that).

A decode can also run while the next batch generates (:meth:`Decoder.later`): in the
decoder's own thread and, on CUDA, on a stream of its own, so batch N's audio is made
while batch N+1's frames run. It is the same decode (sub-batches, halving on out of
memory); what it raises is raised where the result is collected (:meth:`Pending.result`).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from voxd.errors import OutOfMemory, translate

log = logging.getLogger(__name__)

#: Decoder memory per item per frame, MiB, by the size of one element of its dtype:
#: measured 2.35 (100 frames) and 2.17 (325 frames) in bfloat16; float32 is twice that.
MIB_PER_ITEM_FRAME = {2: 2.4, 4: 4.8}
#: The share of the free memory a sub-batch may plan to use.
HEADROOM = 0.8


class Pending:
    """A decode under way; :meth:`result` waits for it and gives ``(waves, rate)``, or raises
    what the decode raised."""

    def __init__(self, future: Future[tuple[list[Any], Any]]) -> None:
        self.future = future

    def result(self) -> tuple[list[Any], Any]:
        return self.future.result()


class Decoder:
    """Stands in for ``speech_tokenizer.decode`` on one loaded model.

    ``max_items`` caps a sub-batch (0: only the free memory does; on the CPU, where
    nothing is measured, the whole batch goes at once). ``last`` holds the sizes of
    the sub-batches of the latest call, for the log and the bench. With ``defer`` set,
    the next call of plain codes returns ``(Pending, None)`` at once (see :meth:`later`);
    the flag is spent by that call.
    """

    def __init__(self, tokenizer: Any, *, max_items: int = 0) -> None:
        self.tokenizer = tokenizer
        self.real = tokenizer.decode
        self.max_items = max_items
        self.last: list[int] = []
        self.defer = False
        self._worker: ThreadPoolExecutor | None = None
        self._stream: Any = None

    def install(self) -> Decoder:
        self.tokenizer.decode = self.decode
        return self

    def uninstall(self) -> None:
        if self.tokenizer.__dict__.get("decode") == self.decode:
            del self.tokenizer.decode

    def close(self) -> None:
        """Let the decode thread go once what it was given is done."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def decode(self, encoded: Any, *args: Any, **kwargs: Any) -> Any:
        if not _plain_codes(encoded):  # the forms voxd never passes: as they came
            return self.real(encoded, *args, **kwargs)
        if self.defer:
            self.defer = False
            return self.later(encoded, *args, **kwargs), None
        return self.now(encoded, *args, **kwargs)

    def later(self, encoded: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Pending:
        """Start decoding ``encoded`` and return at once. Decodes run one at a time, in the
        order given, in a thread of the decoder's own; on CUDA on a stream of its own that
        first waits for the work the caller's stream has queued (the codes), and the codes
        are kept from the caller's allocator until the decode has read them."""
        import torch

        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="voxd-decode")
        device = encoded[0]["audio_codes"].device
        ready: Any = None
        if device.type == "cuda":
            if self._stream is None:
                self._stream = torch.cuda.Stream(device)
            ready = torch.cuda.Event()
            ready.record(torch.cuda.current_stream(device))
            for item in encoded:
                item["audio_codes"].record_stream(self._stream)
        stream = self._stream

        def work() -> tuple[list[Any], Any]:
            if ready is None:
                return self.now(encoded, *args, **kwargs)
            with torch.no_grad(), torch.cuda.stream(stream):
                stream.wait_event(ready)
                out = self.now(encoded, *args, **kwargs)
                stream.synchronize()
                return out

        return Pending(self._worker.submit(work))

    def now(self, encoded: list[dict[str, Any]], *args: Any, **kwargs: Any) -> tuple[list[Any], Any]:
        """Decode in sub-batches, halving one that runs out of memory."""
        frames = [int(item["audio_codes"].shape[0]) for item in encoded]
        order = sorted(range(len(encoded)), key=lambda i: -frames[i])
        size = self.sub_batch(max(frames), len(encoded))
        waves: list[Any] = [None] * len(encoded)
        rate: Any = None
        self.last = []
        done = 0
        while done < len(order):
            part = order[done : done + size]
            try:
                out, rate = self.real([encoded[i] for i in part], *args, **kwargs)
            except Exception as exc:
                if size == 1 or not isinstance(translate(exc), OutOfMemory):
                    raise
                _free_cuda()
                size = max(1, len(part) // 2)
                log.info("Qwen3-TTS: the codec decoder ran out of memory on %d items; decoding %d at a time",
                         len(part), size)
                continue
            for i, wave in zip(part, out):
                waves[i] = wave
            self.last.append(len(part))
            done += len(part)
        return waves, rate

    def sub_batch(self, frames: int, items: int) -> int:
        """Items per decoder call for ``items`` items of up to ``frames`` frames."""
        size = min(items, self.max_items) if self.max_items > 0 else items
        free = _free_bytes(getattr(self.tokenizer, "device", None))
        if free is None:
            return max(1, size)
        element = _element_size(self.tokenizer)
        per_item = frames * MIB_PER_ITEM_FRAME.get(element, MIB_PER_ITEM_FRAME[4]) * 2**20
        fits = int(free * HEADROOM // max(per_item, 1.0))
        return max(1, min(size, fits))


def _plain_codes(encoded: Any) -> bool:
    """A list of ``{"audio_codes": tensor}`` (the 12 Hz codec's form, and all qwen_tts passes)."""
    return (
        isinstance(encoded, list)
        and len(encoded) > 0
        and all(isinstance(e, dict) and set(e) == {"audio_codes"} and hasattr(e["audio_codes"], "shape")
                for e in encoded)
    )


def _free_bytes(device: Any) -> int | None:
    """What a CUDA device can still give: free on the card plus what torch's allocator
    holds unused; None off CUDA."""
    import torch

    dev = torch.device(device) if device is not None else None
    if dev is None or dev.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info(dev)
    return int(free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))


def _element_size(tokenizer: Any) -> int:
    try:
        return int(next(tokenizer.model.parameters()).element_size())
    except (AttributeError, StopIteration, TypeError):
        return 4


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
