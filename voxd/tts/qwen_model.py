"""What the Qwen3-TTS engine (:mod:`voxd.tts.qwen`) does to a loaded qwen_tts model
beyond loading it, and how the model's failures are typed for the renderer.

The hidden-state trim (:func:`keep_last_hidden_state`) is explained in the engine's
module docstring, under Memory.
"""

from __future__ import annotations

import gc
from typing import Any

from voxd.errors import EngineError, OutOfMemory, VoxdError, translate


def failed(exc: Exception, items: int, frames: int) -> VoxdError:
    """A failure of the model (generation or decode) as the renderer takes it."""
    if isinstance(exc, VoxdError):
        return exc
    if isinstance(translate(exc), OutOfMemory):
        import torch

        free_cuda(torch)
        # Not more items: a smaller batch may fit.
        return OutOfMemory(f"Qwen3-TTS ran out of GPU memory on a batch of {items} "
                           f"(up to {frames} frames); a smaller batch may fit")
    return EngineError(f"Qwen3-TTS failed on a batch of {items}: {type(exc).__name__}: {exc}")


def quiet_padding_warning(model: Any) -> None:
    """Give the talker the pad id that transformers would pick (codec EOS) with a warning
    on every batch: finished items of a batch are padded with EOS, which qwen_tts trims."""
    try:
        talker = model.model.talker
        if talker.generation_config.pad_token_id is None:
            talker.generation_config.pad_token_id = model.model.config.talker_config.codec_eos_token_id
    except AttributeError:
        pass


def keep_last_hidden_state(model: Any) -> None:
    """Make the talker return, of each step's hidden states, only what qwen_tts reads.

    qwen_tts's ``generate`` runs the talker with ``output_hidden_states=True``
    (callers cannot turn it off) because the talker smuggles each frame's codes
    out through ``outputs.hidden_states = (all layers' hidden states, codes)``,
    and transformers keeps that tuple for every step until the batch ends.
    qwen_tts then reads ``hid[0][-1][:, -1:]`` (the last layer at the last
    position) and the codes. A forward hook on the talker replaces the tuple of
    all layers with that one tensor as each step returns, so the rest is freed
    at once; everything qwen_tts computes is unchanged.
    """
    try:
        talker = model.model.talker
    except AttributeError:
        return
    if getattr(talker, "_voxd_trim_hook", None) is not None:
        return

    def trim(module: Any, args: Any, output: Any) -> Any:
        hidden = getattr(output, "hidden_states", None)
        if not (isinstance(hidden, tuple) and len(hidden) == 2):
            return output
        layers, codes = hidden
        if not (isinstance(layers, tuple) and len(layers) > 1):
            return output
        last = layers[-1][:, -1:]
        if layers[-1].shape[1] > 1:  # the prompt step: do not keep the whole prompt alive through a view
            last = last.clone()
        output.hidden_states = ((last,), codes)
        return output

    talker._voxd_trim_hook = talker.register_forward_hook(trim)


def free_cuda(torch: Any) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
