"""voxd's own decode loop for Qwen3-TTS: a static KV cache, one audio frame as one replayable step.

Why: qwen_tts runs the talker through transformers' ``generate`` and, inside every talker
step, a nested ``generate`` of the code predictor (15 codes in the released checkpoints)
with a fresh cache and fresh logits processors. Per audio frame that is thousands of
kernel launches and dozens of host syncs, none of which grow with the batch, so the GPU
waits on Python (0.47x real time at batch 1 on an H200, bench/results/gpu-2026-11-26.json).
This loop replaces ``talker.generate`` on a loaded model and keeps everything else of
qwen_tts: the prompts (CustomVoice, VoiceDesign, cloning) are built upstream exactly as
before, and the codes go back to qwen_tts's codec.

What it does differently:

* The talker's and the predictor's keys and values live in buffers allocated once per
  batch shape (:class:`StaticCache`); positions, masks and the step counter are tensors,
  so one frame (a predictor step per code group after the first, their sampling, one talker
  step, its sampling) is a fixed sequence of kernels with no host sync (:meth:`Frames.frame`).
* Every shape comes from the checkpoint's config (code groups, layers, heads, head and
  hidden sizes); what the loop does not implement (sliding-window attention) makes
  :func:`install` decline, and qwen_tts's own loop decodes.
* On CUDA that frame is captured once per batch shape as a CUDA graph and replayed; the
  host looks at the batch only every few frames, to stop when every item is done.
* Every item has its own frame budget: one that never says end-of-speech stops at its own
  budget while the rest go on (and is reported as capped), instead of running the whole
  batch to the longest text's cap.
* Every row has its own frame number and cache position, so a call may hold more items
  than rows (static shapes): when an item ends, the host hands its row to the next item
  waiting at its next look (refill), with no new graph.

On the CPU (no graphs) the loop runs the same step eagerly with the cache sliced to the
positions in use, so its shapes are the reference's and greedy decoding is token-for-token
qwen_tts's; with ``sampler="multinomial"`` sampling draws from torch's generator in the
reference's order and matches it token for token too. Graphs sample with the exponential
race (``argmax(p / E)``, E ~ Exp(1)), which has the same distribution and needs no sync.
"""

from __future__ import annotations

import logging
import math
import time
from types import SimpleNamespace
from typing import Any

from .qwen_sampling import SEED_MASK, penalise, pick
from .qwen_state import Call, Rules, State, StaticCache

log = logging.getLogger(__name__)

#: How often (in frames) the graph loop asks whether every item is done: each ask is a host sync.
CHECK_EVERY = 8
#: Cache lengths are rounded up to this, so batches of similar length share one graph.
LENGTH_STEP = 256
#: Batch sizes a graph is captured for; a batch runs in the smallest that holds it.
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


class Frames:
    """The loop for one loaded ``Qwen3TTSForConditionalGeneration``; install() swaps it in."""

    def __init__(self, model: Any, *, graphs: bool | None = None, static: bool | None = None,
                 sampler: str | None = None) -> None:

        self.model = model
        self.talker = model.talker
        self.predictor = model.talker.code_predictor
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        on_cuda = self.device.type == "cuda"
        self.graphs = on_cuda if graphs is None else graphs and on_cuda
        # Static shapes (whole buffers, masks, bucketed batch): what a graph runs. Without
        # graphs they are only worth it to test that path on the CPU.
        self.static = self.graphs or bool(static)
        self.sampler = sampler or ("exponential" if self.graphs else "multinomial")
        self.states: dict[tuple[int, int, int], State] = {}
        self.budgets: tuple[list[int] | None, list[int] | None] = (None, None)
        self.seeds: list[int] | None = None
        self.max_rows: int | None = None
        self.last_capped: list[bool] = []
        #: The last call's timings (seconds) and frames, for benches and logs.
        self.stats: dict[str, float] = {}
        #: Graphs captured so far: one per batch shape and rules, reused by the batches after.
        self.captures = 0
        tc = self.talker.config
        pc = self.predictor.config
        #: Codes per frame (the checkpoint's ``num_code_groups``): the talker picks the first,
        #: the predictor the others. It is also the number of draws per frame in keyed sampling.
        self.groups = int(tc.num_code_groups)
        self.predicted = self.groups - 1
        self.talker_shape = (tc.num_hidden_layers, tc.num_key_value_heads, tc.head_dim)
        self.predictor_shape = (pc.num_hidden_layers, pc.num_key_value_heads, pc.head_dim)
        self.vocab = tc.vocab_size
        self.attention = tc._attn_implementation

    # -- installing -------------------------------------------------------------------

    def install(self) -> Frames:
        """Make ``talker.generate`` this loop (qwen_tts calls it through the instance)."""
        self.talker.generate = self.generate
        if self.static and self.attention == "sdpa":
            _use_grouped_attention(self.talker.config)
        return self

    def uninstall(self) -> None:
        """Give the talker back its own generate and attention."""
        self.talker.__dict__.pop("generate", None)
        self.talker.config._attn_implementation = self.attention
        self.states.clear()

    def plan(self, *, max_frames: list[int] | None = None, min_frames: list[int] | None = None,
             seeds: list[int] | None = None, rows: int | None = None) -> None:
        """Per-item frame budgets for the next call: an item stops at its max (capped), and
        cannot stop before its min. With ``seeds``, each item draws from its own seed
        (:func:`keyed_uniform`) instead of torch's generator. With ``rows`` (static shapes
        only), the call decodes in at most that many rows: when an item ends, its row takes
        the next item waiting (refill), so no row carries a finished item to the longest's end."""
        self.budgets = (max_frames, min_frames)
        self.seeds = seeds
        self.max_rows = rows

    # -- the generate qwen_tts calls -------------------------------------------------

    def generate(self, *, inputs_embeds: Any, attention_mask: Any, trailing_text_hidden: Any, tts_pad_embed: Any,
                 **kwargs: Any) -> SimpleNamespace:
        import torch

        rules = Rules.from_kwargs(kwargs, self.talker.generation_config.pad_token_id)
        max_frames, min_frames = self.budgets
        seeds, self.seeds = self.seeds, None
        max_rows, self.max_rows = self.max_rows, None
        self.budgets = (None, None)
        call = Call(rules=rules, steps=max(0, rules.max_new_tokens - 1), embeds=inputs_embeds,
                    mask=attention_mask.to(self.device).bool(), text=trailing_text_hidden, pad_embed=tts_pad_embed,
                    max_frames=max_frames, min_frames=min_frames, seeds=seeds)
        try:
            with torch.no_grad():
                return self._generate(call, max_rows)
        except BaseException:
            # A batch that failed (out of memory, most often, in the cache or the capture)
            # leaves neither its buffers nor a half-made graph for the smaller retry to trip on.
            self.states.clear()
            raise

    def _generate(self, call: Call, max_rows: int | None = None) -> SimpleNamespace:
        items, prompt = call.embeds.shape[0], call.embeds.shape[1]
        steps = call.steps
        live = min(items, max_rows) if self.static and max_rows else items
        t0 = time.monotonic()
        state = self._state(live, prompt + steps + 1, call.text.shape[1] + 1, steps + 1, call.rules)
        self._rules_into(state, call.rules)
        if state.keyed != (call.seeds is not None):
            state.keyed, state.graph = call.seeds is not None, None
        if call.seeds is not None and len(call.seeds) != items:
            raise ValueError(f"{len(call.seeds)} seeds for {items} items")
        state.last_step.fill_(steps)
        self._prefill(state, call, call.start(items, state.rows, live), None)
        self.stats = {"items": items, "rows": state.rows, "prompt": prompt, "capture_seconds": 0.0}
        self._collect(state, call)  # a host sync: the prefill is done
        t1 = time.monotonic()
        done = self._run(state, call)
        t2 = time.monotonic()
        item_frames = sum(len(c) for c in call.codes)
        self.stats.update(prefill_seconds=round(t1 - t0, 4), frames=done,
                          frame_seconds=round(t2 - t1 - self.stats["capture_seconds"] - call.refill_seconds, 4),
                          refill_seconds=round(call.refill_seconds, 4), refills=call.refills,
                          row_frames=done * state.rows, item_frames=item_frames,
                          padded_frames=done * state.rows - item_frames)
        self.last_capped = list(call.capped)
        return SimpleNamespace(hidden_states=call.output(state))

    # -- buffers -----------------------------------------------------------------------

    def _state(self, items: int, length: int, text_columns: int, steps: int, rules: Rules) -> State:
        import torch

        if self.static:
            rows = next((b for b in BATCH_BUCKETS if b >= items), items)
            length = -(-length // LENGTH_STEP) * LENGTH_STEP
            text_columns = -(-text_columns // LENGTH_STEP) * LENGTH_STEP
            key = (rows, length, text_columns)
            if key in self.states and self.states[key].codes.shape[1] >= steps:
                state = self.states[key]
                state.items = items
                return state
            # One batch shape lives at a time: its cache and its graph's memory are the
            # batch's to use, and a render's batches are nearly all one shape.
            self.states.clear()
        else:
            rows = items
        dev, dt = self.device, self.dtype
        hidden_size = self.talker.config.hidden_size
        talker_layers, talker_heads, talker_dim = self.talker_shape
        predictor_layers, predictor_heads, predictor_dim = self.predictor_shape
        long = dict(dtype=torch.long, device=dev)
        state = State(
            rows=rows, length=length, text_columns=text_columns,
            talker_cache=StaticCache(talker_layers, rows, talker_heads, length, talker_dim, dt, dev, per_row=True),
            predictor_cache=StaticCache(predictor_layers, rows, predictor_heads, self.groups, predictor_dim, dt, dev),
            token=torch.zeros(rows, 1, **long),
            past_hidden=torch.zeros(rows, 1, hidden_size, dtype=dt, device=dev),
            step=torch.zeros(rows, **long),
            cache_position=torch.zeros(rows, **long),
            last_step=torch.zeros(1, **long),
            positions=torch.zeros(rows, **long),
            key_mask=torch.zeros(rows, length, dtype=torch.bool, device=dev),
            text=torch.zeros(rows, text_columns, hidden_size, dtype=dt, device=dev),
            text_last=torch.zeros(rows, **long),
            seen=torch.zeros(rows, self.vocab, dtype=torch.bool, device=dev),
            unfinished=torch.zeros(rows, dtype=torch.bool, device=dev),
            min_frames=torch.zeros(rows, **long),
            max_frames=torch.zeros(rows, **long),
            capped=torch.zeros(rows, dtype=torch.bool, device=dev),
            ends=torch.zeros(rows, **long),
            seeds=torch.zeros(rows, **long),
            codes=torch.zeros(rows, max(1, steps), self.groups, **long),
            hidden=torch.zeros(rows, max(1, steps), hidden_size, dtype=dt, device=dev),
            items=items,
        )
        # The predictor's masks are the same every frame: prefill of 2, then one per step.
        positions = torch.arange(self.groups, device=dev)
        state.predictor_masks = [(positions[None, :] <= positions[:2, None])[None, None]] + [
            (positions <= 1 + j)[None, None, None, :] for j in range(1, self.predicted)
        ]
        if self.static:
            self.states[(rows, length, text_columns)] = state
        return state

    def _rules_into(self, state: State, rules: Rules) -> None:
        """The rules as device masks; a graph captured under other rules is dropped."""
        import torch

        base = Rules(**{**rules.__dict__, "max_new_tokens": 0})
        if state.rules == base:
            return
        state.rules, state.graph = base, None
        state.eos_mask = torch.zeros(self.vocab, dtype=torch.bool, device=self.device)
        state.eos_mask[rules.eos] = True
        state.suppress = torch.zeros(self.vocab, dtype=torch.bool, device=self.device)
        if rules.suppress:
            state.suppress[list(rules.suppress)] = True

    # -- the prompt ---------------------------------------------------------------------

    def _prefill(self, state: State, call: Call, take: list[int], rows: list[int] | None) -> None:
        """Run the prompts of items ``take`` eagerly into the static cache and pick each one's
        first code: into the first rows at a call's start (``rows`` None: every row starts
        afresh, spare ones finished), or into ``rows`` freed by items that ended (refill)."""
        import torch

        rules, dev, k = call.rules, self.device, len(take)
        first = rows is None
        in_order = take == list(range(k))  # the call's first items, as a slice
        chosen: Any = slice(0, k) if in_order else torch.tensor(take, device=dev)
        sel: Any = slice(0, k) if first else torch.tensor(rows, device=dev)
        embeds, mask, text = call.embeds[chosen], call.mask[chosen], call.text[chosen]
        prompt = embeds.shape[1]
        positions3, _ = self.talker.get_rope_index(mask.long())
        padded = bool((~mask).any())
        keys = state.talker_cache
        keys.visible = None if self.static else prompt
        if self.static or padded:
            kpos = torch.arange(state.length if self.static else prompt, device=dev)
            q = torch.arange(prompt, device=dev)
            allowed = (kpos[None, :] <= q[:, None])[None] & torch.nn.functional.pad(
                mask, (0, kpos.numel() - prompt), value=False)[:, None, :]
            allowed |= (kpos[None, :] == q[:, None])[None]  # a pad row sees itself, not nothing (no NaN)
            attn = allowed[:, None]
        else:
            attn = None  # as the reference: plain causal attention
        keys.rows = None if first else sel
        try:
            hidden = self._talker_layers(embeds, attn, positions3, torch.arange(prompt, device=dev), keys)
        finally:
            keys.rows = None
        last = hidden[:, -1:]
        scores = self.talker.codec_head(last)[:, -1].float()
        if first:  # every row afresh; spare rows stay finished
            state.step.zero_()
            state.cache_position.fill_(prompt)
            state.positions.zero_()
            state.key_mask.zero_()
            state.seen.zero_()
            state.capped.zero_()
            state.ends.zero_()
            state.unfinished.zero_()
            state.max_frames.fill_(rules.max_new_tokens)
            state.min_frames.zero_()
            state.seeds.zero_()
            state.text_last.zero_()
            if state.rows > k:
                state.key_mask[k:, 0] = True
                state.token[k:, 0] = rules.pad
        else:
            state.step[sel] = 0
            state.cache_position[sel] = prompt
            state.key_mask[sel] = False
            state.seen[sel] = False
            state.capped[sel] = False
            state.ends[sel] = 0
            state.max_frames[sel] = rules.max_new_tokens
            state.min_frames[sel] = 0
        state.positions[sel] = mask.sum(dim=1)
        state.key_mask[sel, :prompt] = mask
        state.unfinished[sel] = True
        # The first items' budgets as a slice, so a list of the wrong length fails here.
        if call.max_frames is not None:
            budget = call.max_frames[:k] if in_order else [call.max_frames[i] for i in take]
            state.max_frames[sel] = torch.tensor(budget, device=dev).clamp(min=1)
        if call.min_frames is not None:
            least = call.min_frames[:k] if in_order else [call.min_frames[i] for i in take]
            state.min_frames[sel] = torch.tensor(least, device=dev)
        if call.seeds is not None:
            state.seeds[sel] = torch.tensor([call.seeds[i] & SEED_MASK for i in take], device=dev)
        columns = text.shape[1]
        state.text[sel, :columns] = text
        state.text[sel, columns:] = call.pad_embed.reshape(1, 1, -1)
        state.text_last[sel] = columns
        token = self._choose(state, rules, scores, generated=0, sel=sel, draw=state.step[sel] * self.groups)
        state.token[sel, 0] = token
        state.past_hidden[sel] = last
        for j, item in enumerate(take):
            call.first[item] = last[j : j + 1].clone()

    def _choose(self, state: State, rules: Rules, scores: Any, *, generated: Any, sel: Any, draw: Any) -> Any:
        """The talker's next code for rows ``sel`` (a slice or row numbers), with qwen_tts's
        rules and the per-item budgets; finished rows get the pad code."""
        import torch

        seen, unfinished = state.seen[sel], state.unfinished[sel]
        scores = penalise(scores, seen, rules.repetition_penalty)
        too_early = (state.min_frames[sel] > generated) | (generated < rules.min_new_tokens)
        scores = scores.masked_fill(state.eos_mask & too_early[:, None], -math.inf)
        scores = scores.masked_fill(state.suppress, -math.inf)
        token = pick(scores, rules.talker, self.sampler, (state.seeds[sel], draw) if state.keyed else None)
        over = state.max_frames[sel] <= generated
        state.capped[sel] = state.capped[sel] | (over & unfinished & (token != rules.eos))
        token = torch.where(over, torch.full_like(token, rules.eos), token)
        token = torch.where(unfinished, token, torch.full_like(token, rules.pad))
        state.seen[sel] = seen.scatter(1, token[:, None], True)
        going = unfinished & (token != rules.eos)
        state.ends[sel] = torch.where(unfinished & ~going, generated, state.ends[sel])
        state.unfinished[sel] = going
        return token

    # -- the frames ---------------------------------------------------------------------

    def _run(self, state: State, call: Call) -> int:
        """Frames until every item is done; returns how many ran. Exact shapes look after
        every frame (as the reference stops); static ones, whose look is a host sync, every
        CHECK_EVERY frames, and hand the rows of items that ended to items waiting."""
        import torch

        every = CHECK_EVERY if self.static else 1
        done = 0
        while call.decoding():
            if self.graphs and state.graph is None:
                started = time.monotonic()
                state.graph = self._capture(state, call.rules)
                self.captures += 1
                self.stats["capture_seconds"] = round(time.monotonic() - started, 4)
            for _ in range(every):
                if self.graphs:
                    state.graph.replay()
                else:
                    if not self.static:
                        state.talker_cache.visible = int(state.cache_position[0]) + 1
                    self.frame(state, call.rules)
            done += every
            self._collect(state, call)
        if self.graphs and self.device.type == "cuda":
            torch.cuda.current_stream().synchronize()
        return done

    def _collect(self, state: State, call: Call) -> None:
        """The host's look at the batch (one sync): take the codes of the items that ended
        (or ran all their frames), then prefill the items waiting into the rows they freed."""
        import torch

        unfinished, step, ends, capped = torch.stack(
            (state.unfinished.long(), state.step, state.ends, state.capped.long())).tolist()
        freed = []
        for row, item in enumerate(call.row_item):
            if item < 0 or (unfinished[row] and step[row] < call.steps):
                continue
            length = min(step[row] if unfinished[row] else ends[row], call.steps)
            call.codes[item] = state.codes[row, :length].clone()
            call.hidden[item] = state.hidden[row, :length]  # a view until the row is given again
            call.on_row[item] = row
            call.capped[item] = bool(capped[row])
            call.row_item[row] = -1
            freed.append(row)
        if not (freed and call.waiting):
            return
        started = time.monotonic()
        take, call.waiting = call.waiting[: len(freed)], call.waiting[len(freed) :]
        rows = freed[: len(take)]
        for item, row in enumerate(call.on_row):  # the row's buffers are about to be another item's
            if row in rows:
                call.hidden[item], call.on_row[item] = call.hidden[item].clone(), -1
        self._prefill(state, call, take, rows)
        for row, item in zip(rows, take):
            call.row_item[row] = item
        call.refills += len(take)
        call.refill_seconds += time.monotonic() - started

    def _capture(self, state: State, rules: Rules) -> Any:
        """One frame as a CUDA graph for this batch shape (warmed up first, as capture needs)."""
        import torch

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self._warm_up(state, rules)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # A private memory pool: one graph lives at a time, and a pool shared with graphs
        # already freed trips an internal assert in torch's allocator. Capturing runs no
        # kernel, so the state is still the prefill's afterwards.
        with torch.cuda.graph(graph):
            self.frame(state, rules)
        log.debug("captured a decode graph: batch %d, cache %d", state.rows, state.length)
        return graph

    def _warm_up(self, state: State, rules: Rules, frames: int = 2) -> None:
        """Run ``frames`` frames (what capture needs first) and put back all a frame writes,
        so the batch starts from its prefill. Device-independent: the CPU tests run it."""
        written = (state.token, state.past_hidden, state.step, state.cache_position, state.positions,
                   state.key_mask, state.seen, state.unfinished, state.capped, state.ends)
        saved = [t.clone() for t in written]
        for _ in range(frames):
            self.frame(state, rules)
        for target, value in zip(written, saved):
            target.copy_(value)

    def frame(self, state: State, rules: Rules) -> None:
        """One audio frame for every row: the predictor's ``num_code_groups - 1`` codes for the
        last talker code, then the talker's next code. Only tensor operations on ``state``: capturable."""
        import torch

        rows = state.rows if self.static else state.items
        talker_embed = self.talker.get_input_embeddings()
        predictor_embeds = self.predictor.model.get_input_embeddings()
        token = state.token[:rows]
        step = state.step[:rows]  # each row's own frame number
        said = talker_embed(token)  # [rows, 1, H]
        # The predictor: a prompt of two (talker hidden, code embedding), then one step per code left.
        cache = state.predictor_cache
        x = torch.cat((state.past_hidden[:rows], said), dim=1)
        parts = [said]
        codes = []
        for j in range(self.predicted):
            if j == 0:
                position = torch.arange(2, device=self.device)
                if not self.static:
                    cache.visible = 2
            else:
                x = parts[-1]
                position = state.step.new_full((1,), 1 + j)
                if not self.static:
                    cache.visible = 2 + j
            mask = state.predictor_masks[j] if self.static else None
            h = self._predictor_layers(x, mask, position, cache)
            scores = self.predictor.lm_head[j](h[:, -1]).float()
            keys = (state.seeds[:rows], step * self.groups + 1 + j) if state.keyed else None
            code = pick(scores, rules.predictor, self.sampler, keys)
            codes.append(code)
            parts.append(predictor_embeds[j](code[:, None]))
        frame_codes = torch.stack([token[:, 0], *codes], dim=1)
        x = torch.cat(parts, dim=1).sum(1, keepdim=True)
        column = torch.minimum(step, state.text_last[:rows])
        x = x + state.text[:rows].gather(1, column[:, None, None].expand(-1, 1, x.shape[-1]))
        # The talker: one position for every row.
        cache_position = state.cache_position[:rows]
        state.key_mask[:rows].scatter_(1, cache_position[:, None], True)
        if self.static:
            attn = state.key_mask[:rows, None, None, :]
        elif bool((~state.key_mask[:rows, : int(cache_position[0]) + 1]).any()):  # eager rows move together
            attn = state.key_mask[:rows, None, None, : int(cache_position[0]) + 1]
        else:
            attn = None
        positions3 = state.positions[:rows].view(1, rows, 1).expand(3, rows, 1)
        h = self._talker_layers(x, attn, positions3, cache_position, state.talker_cache)
        scores = self.talker.codec_head(h)[:, -1].float()
        generated = step + 1
        token = self._choose(state, rules, scores, generated=generated, sel=slice(0, rows),
                             draw=generated * self.groups)
        # Book-keeping, all on the device: each row writes at its own frame number, and one
        # whose item has run all its frames stays there (finished, until the host looks).
        at = step.view(rows, 1, 1)
        state.codes[:rows].scatter_(1, at.expand(rows, 1, self.groups), frame_codes[:, None])
        state.hidden[:rows].scatter_(1, at.expand(rows, 1, h.shape[-1]), h)
        state.token[:rows, 0] = token
        state.past_hidden[:rows] = h
        advance = (step < state.last_step).long()
        state.step[:rows] += advance
        state.cache_position[:rows] += advance
        state.positions[:rows] += advance

    # -- the two transformers ------------------------------------------------------------

    def _talker_layers(self, x: Any, attn: Any, positions3: Any, cache_position: Any, cache: StaticCache) -> Any:
        model = self.talker.model
        position_embeddings = model.rotary_emb(x, positions3)
        for layer in model.layers:
            x = layer(x, attention_mask=attn, past_key_values=cache, use_cache=True, cache_position=cache_position,
                      position_embeddings=position_embeddings)[0]
        return model.norm(x)

    def _predictor_layers(self, x: Any, attn: Any, position: Any, cache: StaticCache) -> Any:
        model = self.predictor.model
        x = self.predictor.small_to_mtp_projection(x)
        position_embeddings = model.rotary_emb(x, position[None, :])
        for layer in model.layers[: model.config.num_hidden_layers]:
            x = layer(x, attention_mask=attn, past_key_values=cache, use_cache=True, cache_position=position,
                      position_embeddings=position_embeddings)[0]
        return model.norm(x)


def grouped_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                      dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Attention of one new position over a whole static cache, each key/value head read
    once for its group of query heads. transformers' SDPA path copies the cache once per
    query head whenever a mask is given (``repeat_kv``): at batch 192 that is gigabytes per
    frame. Longer queries (the prompt) go to transformers' SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.shape[2] != 1 or attention_mask is None or attention_mask.dtype != torch.bool:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    rows, heads, _, dim = query.shape
    groups = key.shape[1]
    q = query.view(rows, groups, heads // groups, dim)
    scores = torch.matmul(q, key.transpose(-1, -2)).float() * (dim**-0.5 if scaling is None else scaling)
    scores = scores.masked_fill(~attention_mask[:, :, :, : key.shape[-2]], -math.inf)
    out = torch.matmul(scores.softmax(dim=-1).to(value.dtype), value)  # [rows, groups, heads/groups, dim]
    return out.reshape(rows, heads, 1, dim).transpose(1, 2), None


def _use_grouped_attention(config: Any) -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("voxd_grouped", grouped_attention)
    config._attn_implementation = "voxd_grouped"


def install(model: Any, *, graphs: bool | None = None, static: bool | None = None,
            sampler: str | None = None) -> Frames | None:
    """Put the loop under a loaded qwen_tts model (``Qwen3TTSModel.model``); None when the
    loop cannot serve it (another qwen_tts version, a checkpoint of a shape the loop does
    not run), which keeps qwen_tts's own, with a log line that says why."""
    try:
        talker = model.talker
        predictor = talker.code_predictor
        needed = (talker.model.layers, talker.model.rotary_emb, talker.codec_head, talker.get_rope_index,
                  predictor.model.layers, predictor.lm_head, predictor.small_to_mtp_projection,
                  talker.config.head_dim, predictor.config.head_dim, talker.config.num_code_groups)
    except AttributeError as exc:
        log.warning("Qwen3-TTS: this qwen_tts has no %s; decoding with its own generate", exc.name)
        return None
    del needed
    reason = unservable(model)
    if reason is not None:
        log.warning("Qwen3-TTS: voxd's decode loop cannot run this checkpoint (%s); decoding with qwen_tts's "
                    "own generate", reason)
        return None
    return Frames(model, graphs=graphs, static=static, sampler=sampler).install()


def unservable(model: Any) -> str | None:
    """Why the loop cannot decode for this model, or None. Every shape the loop uses is read
    from the checkpoint's config (code groups, layers, heads, head and hidden sizes); what it
    does not implement is refused here rather than decoded wrongly."""
    talker = model.talker
    predictor = talker.code_predictor
    tc, pc = talker.config, predictor.config
    groups = int(tc.num_code_groups)
    if groups < 2:
        return f"num_code_groups is {groups}: a frame needs the talker's code and at least one predicted"
    heads, embeds = len(predictor.lm_head), len(predictor.model.get_input_embeddings())
    if min(heads, embeds) < groups - 1:
        return (f"the talker's num_code_groups is {groups} but its code predictor has {heads} heads and "
                f"{embeds} code embeddings, not {groups - 1}")
    # The loop's masks are plain causal ones: a sliding window (an option of the talker's
    # attention, on for some layers of the predictor's) would see other positions.
    if getattr(tc, "sliding_window", None) is not None:
        return f"the talker attends through a sliding window of {tc.sliding_window} positions"
    window = getattr(pc, "sliding_window", None)
    if "sliding_attention" in (getattr(pc, "layer_types", None) or ()) and window is not None and window < groups:
        return f"the code predictor attends through a sliding window of {window} positions, under {groups}"
    return None
