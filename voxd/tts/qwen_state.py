"""The buffers voxd's Qwen3-TTS decode loop (:mod:`voxd.tts.qwen_loop`) works in.

``Rules`` is what qwen_tts asks of the talker's generate; ``StaticCache`` and ``State``
are the device buffers of one batch shape, which a CUDA graph reads and writes in place;
``Call`` is one generate call on the host: which row decodes which item, the items
waiting for a row (refill), and what each item's frames came to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .qwen_sampling import Sampling


@dataclass(frozen=True)
class Rules:
    """Everything qwen_tts asks of the talker's generate, read from its keyword arguments."""

    talker: Sampling
    predictor: Sampling
    repetition_penalty: float
    min_new_tokens: int
    max_new_tokens: int
    eos: int
    pad: int
    suppress: tuple[int, ...]

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], pad: int | None) -> Rules:
        eos = kwargs["eos_token_id"]
        eos = int(eos[0] if isinstance(eos, list | tuple) else eos)
        return cls(
            talker=Sampling(bool(kwargs.get("do_sample", True)), float(kwargs.get("temperature", 1.0)),
                            int(kwargs.get("top_k", 50) or 0), float(kwargs.get("top_p", 1.0))),
            predictor=Sampling(bool(kwargs.get("subtalker_dosample", True)),
                               float(kwargs.get("subtalker_temperature", 1.0)),
                               int(kwargs.get("subtalker_top_k", 50) or 0), float(kwargs.get("subtalker_top_p", 1.0))),
            repetition_penalty=float(kwargs.get("repetition_penalty", 1.0) or 1.0),
            min_new_tokens=int(kwargs.get("min_new_tokens", 0) or 0),
            max_new_tokens=int(kwargs["max_new_tokens"]),
            eos=eos,
            pad=eos if pad is None else int(pad),
            suppress=tuple(int(t) for t in kwargs.get("suppress_tokens") or ()),
        )


class StaticCache:
    """Keys and values of every layer in buffers allocated once; the layers call ``update``.

    ``visible`` (eager mode) cuts what attention sees to the positions written so far, so
    the shapes are exactly the growing cache's; None (graph mode) shows the whole buffer and
    the mask hides the rest.
    """

    def __init__(self, layers: int, batch: int, heads: int, length: int, head_dim: int, dtype: Any,
                 device: Any, *, per_row: bool = False) -> None:
        import torch

        shape = (batch, heads, length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.visible: int | None = None
        #: A frame writes each row at its own position (the talker's cache: an item that
        #: joined a batch late is at its own step).
        self.per_row = per_row
        #: Rows a prefill writes (a tensor of row numbers), when they are not the first ones.
        self.rows: Any = None

    def update(self, key: Any, value: Any, layer_idx: int, cache_kwargs: dict[str, Any] | None = None) -> Any:
        position = (cache_kwargs or {})["cache_position"]
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        rows = key.shape[0]
        if self.rows is not None:  # a prefill into chosen rows: theirs is the whole cache it sees
            keys, values = keys.index_select(0, self.rows), values.index_select(0, self.rows)
            keys.index_copy_(2, position, key)
            values.index_copy_(2, position, value)
            self.keys[layer_idx].index_copy_(0, self.rows, keys)
            self.values[layer_idx].index_copy_(0, self.rows, values)
        elif self.per_row and key.shape[2] == 1 and position.numel() == rows == keys.shape[0]:
            where = position.view(rows, 1, 1, 1).expand(rows, key.shape[1], 1, key.shape[3])
            keys.scatter_(2, where, key)
            values.scatter_(2, where, value)
        elif rows == keys.shape[0]:
            keys.index_copy_(2, position, key)
            values.index_copy_(2, position, value)
        else:  # a prefill of fewer items than the buffer holds
            keys[:rows].index_copy_(2, position, key)
            values[:rows].index_copy_(2, position, value)
            keys, values = keys[:rows], values[:rows]
        if self.visible is not None:
            return keys[:, :, : self.visible], values[:, :, : self.visible]
        return keys, values


# -- one batch ----------------------------------------------------------------------------


@dataclass
class State:
    """The buffers one batch shape decodes in; a graph reads and writes only these."""

    rows: int  # buffer rows (the bucket); the batch's items are the first ``items``
    length: int  # talker cache positions
    text_columns: int
    talker_cache: StaticCache
    predictor_cache: StaticCache
    token: Any  # [rows, 1] the frame's first code (what the talker said last)
    past_hidden: Any  # [rows, 1, H] the talker's last hidden state
    step: Any  # [rows] frames done by each row's item (its own frame number)
    cache_position: Any  # [rows] where each row's next talker key goes (prompt + step)
    last_step: Any  # [1] the most frames an item may run: a row stays there once it reaches it
    positions: Any  # [rows] this frame's rotary position, per item
    key_mask: Any  # [rows, length] which cache positions an item may attend to
    text: Any  # [rows, text_columns, H] what is added to each frame's input (text, then pad)
    text_last: Any  # [rows] last column to read (the pad column)
    seen: Any  # [rows, vocab] tokens said (repetition penalty)
    unfinished: Any  # [rows]
    min_frames: Any  # [rows]
    max_frames: Any  # [rows]
    capped: Any  # [rows] stopped by its own budget
    ends: Any  # [rows] the frame at which the row's item said end-of-speech
    seeds: Any  # [rows] each item's own seed (keyed draws)
    codes: Any  # [rows, steps + 1, groups] each frame's codes, at the item's own frame number
    hidden: Any  # [rows, steps + 1, H] each frame's talker hidden state
    eos_mask: Any = None  # [vocab] the end-of-speech code
    suppress: Any = None  # [vocab] codes the talker may never say
    items: int = 0
    keyed: bool = False  # draws from the items' seeds (what the graph was captured with)
    graph: Any = None
    rules: Rules | None = None  # what the graph was captured with
    predictor_masks: list[Any] = field(default_factory=list)


@dataclass
class Call:
    """One generate call's items on the host: the prompts, which row decodes which item,
    the items waiting for a row, and what each item's frames came to."""

    rules: Rules
    steps: int  # the most frames an item may run
    embeds: Any  # [items, prompt, H] the prompts, left-padded to one length
    mask: Any  # [items, prompt] which prompt positions are real
    text: Any  # [items, columns, H] the text added to the frames
    pad_embed: Any
    max_frames: list[int] | None
    min_frames: list[int] | None
    seeds: list[int] | None
    row_item: list[int] = field(default_factory=list)  # per row: its item, -1 for none
    waiting: list[int] = field(default_factory=list)  # items without a row yet, in order
    first: list[Any] = field(default_factory=list)  # per item: the prefill's last hidden state
    codes: list[Any] = field(default_factory=list)  # per item: [frames, groups] once it ended
    hidden: list[Any] = field(default_factory=list)  # per item: [frames, H] once it ended
    on_row: list[int] = field(default_factory=list)  # per item: the row its ``hidden`` still views
    capped: list[bool] = field(default_factory=list)
    refills: int = 0
    refill_seconds: float = 0.0

    def start(self, items: int, rows: int, live: int) -> list[int]:
        """Give the first ``live`` items their rows; returns them. With more items than rows,
        the longest budgets go first (the others wait in that order), so the last to start
        are the short ones and the rows end close together."""
        order = list(range(items))
        if live < items and self.max_frames is not None:
            budgets = self.max_frames
            order.sort(key=lambda i: -budgets[i] if i < len(budgets) else 0)
        self.row_item = order[:live] + [-1] * (rows - live)
        self.waiting = order[live:]
        self.first, self.codes, self.hidden = [None] * items, [None] * items, [None] * items
        self.on_row, self.capped = [-1] * items, [False] * items
        return order[:live]

    def decoding(self) -> bool:
        return any(item >= 0 for item in self.row_item)

    def output(self, state: State) -> tuple[Any, ...]:
        """What qwen_tts reads from transformers' generate: per step, the talker's hidden state
        and the frame's codes for every item, each item's ended by the end-of-speech code
        (qwen_tts cuts each item there)."""
        import torch

        items, frames = len(self.codes), max((len(c) for c in self.codes), default=0) + 1
        codes = torch.full((items, frames, state.codes.shape[2]), self.rules.pad, dtype=torch.long,
                           device=state.codes.device)
        # Without refill every item is still on its own row: the state's buffer is read in
        # place (what it holds past an item's end is cut by qwen_tts), no copy of it.
        in_place = self.refills == 0
        hidden = state.hidden[:items] if in_place else state.hidden.new_zeros((items, frames, state.hidden.shape[2]))
        for item, (c, h) in enumerate(zip(self.codes, self.hidden)):
            codes[item, : len(c)] = c
            codes[item, len(c) :, 0] = self.rules.eos
            if not in_place:
                hidden[item, : len(h)] = h
        first = torch.cat(self.first, dim=0)
        return tuple([((first,), None)] + [((hidden[:, s : s + 1],), codes[:, s]) for s in range(frames)])
