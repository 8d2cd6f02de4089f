"""Dynamic batching for ``voxd serve``: concurrent requests become the engine's batches.

Clients send one text per request; a GPU engine is fastest with many texts per
call. The batcher keeps one queue and one thread that owns the engine: it takes
the oldest request, waits at most ``max_wait`` for company, and fills the batch
with the waiting requests closest in length to it (for an engine that runs in
lockstep, none more than ``max_ratio`` times longer or shorter than another),
so that no request waits long and little time is spent padding. Requests with
different seeds never share a batch (the seed is set per call).

Sizing is the renderer's: the batch size comes from the free VRAM
(:func:`voxd.tts.gpu.batch_size_for`); a batch that runs out of memory is split in
half and tried again, and the smaller size holds from then on. A batch that
fails for a reason of its own input (a VoiceError) is run again one request at
a time, so one bad request never fails the others. A request whose future was cancelled (its
client went away) before its batch began is dropped: nothing is spoken for nobody. Once the
queue has been empty for ``IDLE_SECONDS`` after a batch, the memory the batches freed is given
back to the system (:mod:`voxd.heap`).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .. import heap
from ..errors import EngineError, OutOfMemory, PermanentError
from .base import Engine, Utterance

log = logging.getLogger(__name__)

#: Seconds with nothing to speak, after a batch, before freed memory is given back: by then the
#: batch's replies have been encoded and sent.
IDLE_SECONDS = 1.0


class QueueFull(Exception):
    """More requests are waiting than the server takes; the client should come back shortly."""


@dataclass(frozen=True, slots=True)
class Spoken:
    wave: np.ndarray
    sample_rate: int
    truncated: bool = False


@dataclass(slots=True)
class _Request:
    utterance: Utterance
    seed: int | None
    arrived: float
    future: Future[Spoken] = field(default_factory=Future)

    @property
    def length(self) -> int:
        return max(len(self.utterance.text), 1)


class Batcher:
    """One engine, one thread, one queue; :meth:`submit` from any thread."""

    def __init__(self, engine: Engine, *, batch_size: int, max_wait: float, max_queue: int,
                 max_ratio: float | None = None) -> None:
        self.engine = engine
        self.batch_size = max(1, batch_size)
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.max_ratio = max_ratio if engine.lockstep else None
        self.batches = 0
        self._spoke = False  # a batch was spoken since memory was last given back
        self._queue: list[_Request] = []
        self._running = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="voxd-batcher", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Requests queued or being spoken."""
        with self._cond:
            return len(self._queue) + self._running

    def submit(self, utterance: Utterance, seed: int | None = None) -> Future[Spoken]:
        with self._cond:
            if self._closed:
                raise EngineError("the server is shutting down")
            self._drop_cancelled()
            if len(self._queue) + self._running >= self.max_queue:
                raise QueueFull(f"{self.max_queue} requests are already waiting")
            request = _Request(utterance, seed, time.monotonic())
            self._queue.append(request)
            self._cond.notify_all()
            return request.future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            waiting, self._queue = self._queue, []
            self._cond.notify_all()
        for request in waiting:
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(EngineError("the server shut down before speaking this text"))
        self._thread.join(timeout=60)

    # -- the engine's thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
                self._running = len(batch)
            try:
                self._speak(batch)
            finally:
                del batch  # its waves are the futures' now, and go with the replies
                with self._cond:
                    self._running = 0
                    self._spoke = True

    def _next_batch(self) -> list[_Request] | None:
        """The next batch, once it is full or its oldest request has waited ``max_wait``; its
        requests' futures running (no longer cancellable), the cancelled ones dropped."""
        while True:
            self._drop_cancelled()
            while not self._queue:
                if self._closed:
                    return None
                if not self._cond.wait(IDLE_SECONDS if self._spoke else None) and self._spoke:
                    self._spoke = False
                    self._cond.release()  # no lock held while the heap is trimmed: submit() goes on
                    try:
                        heap.release()
                    finally:
                        self._cond.acquire()
                self._drop_cancelled()
            first = self._queue[0]
            while not self._closed and not first.future.cancelled():
                company = sum(1 for r in self._queue if r.seed == first.seed and not r.future.cancelled())
                left = first.arrived + self.max_wait - time.monotonic()
                if company >= self.batch_size or left <= 0:
                    break
                self._cond.wait(left)
            self._drop_cancelled()
            if not self._queue:
                continue
            batch = self._pick(self._queue[0])
            taken = {id(r) for r in batch}
            self._queue = [r for r in self._queue if id(r) not in taken]
            batch = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if batch:
                return batch

    def _drop_cancelled(self) -> None:
        kept = [r for r in self._queue if not r.future.cancelled()]
        if len(kept) < len(self._queue):
            log.debug("%d request(s) dropped before being spoken: their clients went away",
                      len(self._queue) - len(kept))
            self._queue = kept

    def cancelled(self) -> None:
        """A client cancelled its future: wake the batcher, which drops it before the batch."""
        with self._cond:
            self._cond.notify_all()

    def _pick(self, first: _Request) -> list[_Request]:
        """``first`` and the waiting requests closest to it in length, same seed, within the ratio."""
        batch = [first]
        low = high = first.length
        others = sorted((r for r in self._queue[1:] if r.seed == first.seed),
                        key=lambda r: abs(r.length - first.length))
        for r in others:
            if len(batch) >= self.batch_size:
                break
            lo, hi = min(low, r.length), max(high, r.length)
            if self.max_ratio is not None and hi > self.max_ratio * lo:
                continue
            batch.append(r)
            low, high = lo, hi
        return batch

    def _speak(self, batch: list[_Request]) -> None:
        try:
            result = self.engine.synthesize([r.utterance for r in batch], seed=batch[0].seed)
        except OutOfMemory as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(EngineError(f"out of GPU memory even for one text: {exc}"))
                return
            half = len(batch) // 2
            self.batch_size = max(1, min(self.batch_size, half))
            log.warning("out of GPU memory on a batch of %d; %d at a time from now on", len(batch), self.batch_size)
            self._speak(batch[:half])
            self._speak(batch[half:])
            return
        except PermanentError as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for r in batch:  # find the one at fault; the others are spoken as they should be
                self._speak([r])
            return
        except BaseException as exc:  # noqa: BLE001 - each waiting request hears it
            for r in batch:
                r.future.set_exception(exc)
            return
        self.batches += 1
        truncated = list(result.truncated) or [False] * len(batch)
        for r, wave, cut in zip(batch, result.waveforms, truncated):
            r.future.set_result(Spoken(wave, result.sample_rate, bool(cut)))
