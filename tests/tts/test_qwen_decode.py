"""voxd.tts.qwen_decode: the codec decoder in sub-batches gives the audio of one call,
through the real qwen_tts package and the tiny random-weight checkpoint.

"The same audio" is to within one 16-bit step, the resolution the chunk cache keeps:
a convolution over another batch shape rounds floats differently (about 1e-6 here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxd.errors import ConfigError
from voxd.tts.qwen_decode import Decoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

ONE_STEP = 2.0**-15  # one 16-bit sample step


def assert_same_audio(ours: list[Any], theirs: list[Any]) -> None:
    assert [len(a) for a in ours] == [len(b) for b in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=ONE_STEP)

TEXTS = [
    "Hello there, this is a short one.",
    "A much longer sentence that goes on and on about many things, with commas; and more words.",
    "Mid length text here, fine.",
    "One more, of yet another length, so that the batch pads.",
]


@pytest.fixture(scope="module")
def codes_and_tokenizer(tiny_qwen_dir: Path) -> tuple[list[dict[str, Any]], Any]:
    """Codes of different lengths, as the model generated them, and its speech tokenizer."""
    from voxd.tts.base import Utterance
    from voxd.tts.qwen import QwenEngine

    engine = QwenEngine(str(tiny_qwen_dir), do_sample=False, subtalker_do_sample=False)
    tokenizer = engine._load().model.speech_tokenizer
    seen: list[Any] = []
    real = tokenizer.decode

    def keep(encoded: Any, *args: Any, **kwargs: Any) -> Any:
        seen.extend(item["audio_codes"].clone() for item in encoded)
        return real(encoded, *args, **kwargs)

    tokenizer.decode = keep
    engine.synthesize([Utterance(text, "Ryan", "en") for text in TEXTS])
    tokenizer.decode = real
    engine._decoder.uninstall()
    # Of different lengths, as a batch's items end at different frames: one call pads. The
    # greedy tiny model stops every item at the same frame, so each is cut to its own length,
    # in an order that is not longest-first: the decoder sorts them, and must put them back.
    cuts = [4, 0, 6, 2]
    codes = [{"audio_codes": c[: len(c) - cut]} for cut, c in zip(cuts, seen)]
    lengths = [len(c["audio_codes"]) for c in codes]
    assert len(set(lengths)) == len(lengths) and lengths != sorted(lengths, reverse=True)
    return codes, tokenizer


@pytest.mark.parametrize("max_items", [1, 3])
def test_sub_batches_give_the_audio_of_one_call(codes_and_tokenizer: tuple[list[Any], Any], max_items: int) -> None:
    codes, tokenizer = codes_and_tokenizer
    whole, rate = tokenizer.decode(codes)
    decoder = Decoder(tokenizer, max_items=max_items)
    parts, parts_rate = decoder.decode(codes)
    assert parts_rate == rate
    assert decoder.last == ([1, 1, 1, 1] if max_items == 1 else [3, 1])
    assert_same_audio(parts, whole)  # in the caller's order, each its own length
    assert len({len(a) for a in parts}) == len(parts)


def test_a_sub_batch_out_of_memory_is_halved_and_nothing_is_lost(codes_and_tokenizer: tuple[list[Any], Any]) -> None:
    """A decoder that holds two items at a time, as a GPU with little memory left does:
    the batch is decoded anyway, two by two, and the codes are not thrown away."""
    import torch

    codes, tokenizer = codes_and_tokenizer
    whole, _ = tokenizer.decode(codes)
    real = tokenizer.decode

    def two_at_most(encoded: Any, *args: Any, **kwargs: Any) -> Any:
        if len(encoded) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(encoded, *args, **kwargs)

    tokenizer.decode = two_at_most
    try:
        decoder = Decoder(tokenizer)
        parts, _ = decoder.decode(codes)
    finally:
        tokenizer.decode = real
    assert decoder.last == [2, 2]
    assert_same_audio(parts, whole)


def test_other_errors_are_not_taken_for_memory(codes_and_tokenizer: tuple[list[Any], Any],
                                               caplog: pytest.LogCaptureFixture) -> None:
    """An error that is not out-of-memory goes up from the first call: no halving, no retry."""
    codes, tokenizer = codes_and_tokenizer
    bad = [{"audio_codes": c["audio_codes"][:, :3]} for c in codes]  # 3 codebooks, not 16
    calls: list[int] = []
    real = tokenizer.decode

    def counted(encoded: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(encoded))
        return real(encoded, *args, **kwargs)

    tokenizer.decode = counted
    try:
        with pytest.raises(ValueError, match="layer of codes"):
            Decoder(tokenizer, max_items=2).decode(bad)
    finally:
        tokenizer.decode = real
    assert calls == [2]
    assert "ran out of memory" not in caplog.text


@pytest.mark.slow
def test_the_engine_decodes_in_the_sub_batches_it_is_told(tiny_qwen_dir: Path) -> None:
    from voxd.tts.base import Utterance
    from voxd.tts.qwen import QwenEngine

    with pytest.raises(ConfigError, match="decode_batch"):
        QwenEngine(str(tiny_qwen_dir), decode_batch=-1)
    batch = [Utterance(text, "Ryan", "en") for text in TEXTS]
    one = QwenEngine(str(tiny_qwen_dir), decode_batch=1, seed=5)
    whole = QwenEngine(str(tiny_qwen_dir), seed=5)
    assert one.model_id == whole.model_id  # the same audio: the cache does not care
    assert_same_audio(one.synthesize(batch).waveforms, whole.synthesize(batch).waveforms)
    assert one._decoder.last == [1, 1, 1, 1] and whole._decoder.last == [4]
    one.close()
    whole.close()


def test_a_later_decode_gives_the_same_audio_halves_and_raises_when_collected(
        codes_and_tokenizer: tuple[list[Any], Any]) -> None:
    """The decode that runs while the next batch generates: the same audio in the caller's
    order, in the decoder's own thread, out-of-memory halving intact, and an error raised
    where the result is collected, not where the decode was started."""
    import threading

    import torch

    codes, tokenizer = codes_and_tokenizer
    whole, rate = tokenizer.decode(codes)
    real = tokenizer.decode
    threads: list[str] = []

    def two_at_most(encoded: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        if len(encoded) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(encoded, *args, **kwargs)

    tokenizer.decode = two_at_most
    decoder = Decoder(tokenizer)
    try:
        pending = decoder.later(codes)
        parts, parts_rate = pending.result()
        assert decoder.last == [2, 2] and parts_rate == rate
        assert_same_audio(parts, whole)
        assert threads and all(name.startswith("voxd-decode") for name in threads)
        decoder.defer = True  # what the engine sets: the next call returns at once
        deferred, none = decoder.decode(codes)
        assert none is None and not decoder.defer
        assert_same_audio(deferred.result()[0], whole)
        bad = [{"audio_codes": c["audio_codes"][:, :2]} for c in codes[:2]]  # 2 codebooks, not 16
        failing = decoder.later(bad)  # no error here
        with pytest.raises(ValueError, match="layer of codes"):
            failing.result()
        assert_same_audio(decoder.later(codes).result()[0], whole)  # and the decoder goes on
    finally:
        tokenizer.decode = real
        decoder.close()
