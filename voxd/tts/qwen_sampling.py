"""Choosing a token the way transformers' generate does, without a host sync.

voxd's decode loop (:mod:`voxd.tts.qwen_loop`) samples each of a frame's 16 codes
with these: transformers' rules in transformers' order (repetition penalty, then
temperature, top-k, top-p), then a draw that a CUDA graph can replay. The draw is
torch's multinomial (the reference's, for identity tests), the exponential race on
torch's generator, or the race on each item's own seed (:func:`keyed_uniform`), so
that a chunk's take does not depend on the batch it lands in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sampling:
    """One head's sampling rules, as transformers' generate applies them."""

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0



def penalise(scores: Any, seen: Any, penalty: float) -> Any:
    """transformers' repetition penalty, over a mask of the tokens said so far."""
    import torch

    if penalty == 1.0:
        return scores
    return torch.where(seen, torch.where(scores < 0, scores * penalty, scores / penalty), scores)


#: Seeds and hashes are 31 bits: products with the mixing constant stay inside int64.
SEED_MASK = 0x7FFFFFFF
_MIX = 0x45D9F3B


def _mix(x: Any) -> Any:
    """A 31-bit integer hash in int64 arithmetic that never overflows (31 bits times 27)."""
    x = ((x >> 16) ^ x) * _MIX & SEED_MASK
    x = ((x >> 16) ^ x) * _MIX & SEED_MASK
    return (x >> 16) ^ x


def keyed_uniform(seeds: Any, draw: Any, size: int) -> Any:
    """Uniforms in (0, 1), [rows, size], from each row's seed, the draw's number (one for
    all rows, or one per row: each item counts its draws from its own first frame) and the
    token: the same for a row whatever rows stand beside it, with no generator state, so
    a graph can replay it and a chunk's take does not depend on its batch."""
    import torch

    token = _mix(torch.arange(1, size + 1, device=seeds.device))
    draw = torch.as_tensor(draw, device=seeds.device).reshape(-1, 1)
    h = _mix(_mix(token[None, :] ^ (draw & SEED_MASK)) ^ (seeds[:, None] & SEED_MASK))
    return ((h >> 7).float() + 0.5) / float(1 << 24)


def pick(scores: Any, rule: Sampling, sampler: str, keys: tuple[Any, Any] | None = None) -> Any:
    """The next token of each row from float32 scores: temperature, top-k, top-p, then
    multinomial (the reference's draw) or the exponential race (graph-safe) on torch's
    generator, or with ``keys`` (each row's seed, the draw's number) the race on
    :func:`keyed_uniform`; argmax when not sampling."""
    import torch

    if not rule.do_sample:
        return scores.argmax(dim=-1)
    if rule.temperature != 1.0:
        scores = scores / rule.temperature
    if rule.top_k:
        k = min(rule.top_k, scores.shape[-1])
        kth = torch.topk(scores, k).values[..., -1:]
        scores = scores.masked_fill(scores < kth, -math.inf)
    if rule.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False)
        tail = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - rule.top_p
        tail[..., -1:] = False
        scores = scores.masked_fill(tail.scatter(1, order, tail), -math.inf)
    probs = scores.softmax(dim=-1)
    if keys is not None:
        seeds, draw = keys
        return (probs / -keyed_uniform(seeds, draw, probs.shape[-1]).log()).argmax(dim=-1)
    if sampler == "multinomial":
        return torch.multinomial(probs, num_samples=1).squeeze(1)
    return (probs / torch.empty_like(probs).exponential_()).argmax(dim=-1)
