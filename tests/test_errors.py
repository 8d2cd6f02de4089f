"""The one translator from low-level exceptions to voxd's errors."""

from __future__ import annotations

import errno

from voxd.errors import OutOfMemory, StorageFull, translate


def raised(make):
    try:
        make()
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("nothing raised")


class MuxerError(Exception):
    """A library's own error type, as PyAV and mutagen have."""


def test_a_full_disk_is_storage_full_however_it_is_wrapped() -> None:
    assert isinstance(translate(OSError(errno.ENOSPC, "No space left on device")), StorageFull)

    def wrapped_by_cause():
        raise MuxerError("could not write the trailer") from OSError(errno.ENOSPC, "No space left on device")

    def wrapped_while_handling():
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise MuxerError("saving tags failed")  # noqa: B904 - the implicit __context__ chain is the case tested

    def only_in_words():
        raise MuxerError("[Errno 28] No space left on device: '/outbox/.Book.m4b.x.tmp'")

    for make in (wrapped_by_cause, wrapped_while_handling, only_in_words):
        translated = translate(raised(make))
        assert isinstance(translated, StorageFull) and "no space left" in str(translated).lower()


def test_cuda_out_of_memory_is_out_of_memory() -> None:
    import torch

    assert isinstance(translate(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")),
                      OutOfMemory)
    assert isinstance(translate(RuntimeError("CUDA error: out of memory")), OutOfMemory)

    def wrapped():
        raise ValueError("generation failed") from RuntimeError("CUDA out of memory.")

    assert isinstance(translate(raised(wrapped)), OutOfMemory)


def test_other_errors_mean_nothing_in_particular() -> None:
    assert translate(OSError(errno.EACCES, "Permission denied")) is None
    assert translate(IndexError("index out of range in self")) is None
    assert translate(MemoryError()) is None  # the host's memory, not the GPU's
