"""voxd.tts.qwen_loop against qwen_tts's own generate, through the real qwen_tts package and
the tiny random-weight checkpoints (tests/tiny_qwen.py): the same codes, frame for frame."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from voxd.errors import ConfigError
from voxd.tts import qwen_loop

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

# Different lengths, so the prompts are left-padded and the items end at different frames.
TEXTS = [
    "Hello there, this is a short one.",
    "A much longer sentence that goes on and on about many things, with commas; and more words.",
    "Mid length text here, fine.",
]
SAMPLING = dict(temperature=0.9, top_k=50, top_p=1.0, repetition_penalty=1.05, subtalker_temperature=0.9,
                subtalker_top_k=50, subtalker_top_p=1.0)


class Model:
    """A loaded tiny checkpoint whose codec calls are recorded, with or without voxd's loop."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        import torch
        from qwen_tts import Qwen3TTSModel

        self.qwen = Qwen3TTSModel.from_pretrained(str(path), device_map=device, dtype=torch.float32,
                                                  attn_implementation="sdpa")
        talker = self.qwen.model.talker
        talker.generation_config.pad_token_id = self.qwen.model.config.talker_config.codec_eos_token_id
        self.codes: list[Any] = []
        self.frames: qwen_loop.Frames | None = None
        real = self.qwen.model.speech_tokenizer.decode

        def decode(encoded: Any, *args: Any, **kwargs: Any) -> Any:
            self.codes = [item["audio_codes"].clone() for item in encoded]
            return real(encoded, *args, **kwargs)

        self.qwen.model.speech_tokenizer.decode = decode

    def loop(self, **options: Any) -> qwen_loop.Frames:
        self.reference()
        frames = qwen_loop.install(self.qwen.model, **options)
        assert frames is not None
        self.frames = frames
        return frames

    def reference(self) -> None:
        if self.frames is not None:
            self.frames.uninstall()
            self.frames = None
        assert "generate" not in self.qwen.model.talker.__dict__

    def speak(self, kind: str, sample: bool, seed: int = 0, texts: list[str] | None = None) -> list[Any]:
        import torch

        torch.manual_seed(seed)
        common = dict(do_sample=sample, subtalker_dosample=sample, max_new_tokens=120, **SAMPLING)
        texts = TEXTS if texts is None else texts
        n = len(texts)
        if kind == "custom":
            self.qwen.generate_custom_voice(text=texts, speaker=["ryan"] * n, language=["english"] * n,
                                            non_streaming_mode=True, **common)
        elif kind == "design":
            self.qwen.generate_voice_design(text=texts, instruct=["A calm, low voice."] * n,
                                            language=["english"] * n, **common)
        else:
            t = np.arange(24000) / 24000
            reference = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
            self.qwen.generate_voice_clone(text=texts, language=["english"] * n, ref_audio=(reference, 24000),
                                           ref_text="Hello, this is me.", non_streaming_mode=True, **common)
        return self.codes


@pytest.fixture(scope="module")
def models(tiny_qwen_checkpoints: dict[str, Path]) -> dict[str, Model]:
    return {kind: Model(path) for kind, path in tiny_qwen_checkpoints.items()}


def assert_same_codes(ours: list[Any], reference: list[Any]) -> None:
    assert [len(c) for c in ours] == [len(c) for c in reference]
    for a, b in zip(ours, reference):
        assert bool((a == b).all())


@pytest.mark.parametrize("kind", ["custom", "design", "base"])
def test_greedy_codes_are_qwen_tts_codes(models: dict[str, Model], kind: str) -> None:
    model = models[kind]
    model.reference()
    reference = model.speak(kind, sample=False)
    model.loop()
    assert_same_codes(model.speak(kind, sample=False), reference)


def test_seeded_sampling_draws_what_qwen_tts_draws(models: dict[str, Model]) -> None:
    model = models["custom"]
    model.reference()
    reference = model.speak("custom", sample=True, seed=3)
    assert len({len(c) for c in reference}) > 1  # the items end at different frames
    model.loop(sampler="multinomial")
    assert_same_codes(model.speak("custom", sample=True, seed=3), reference)
    other = model.speak("custom", sample=True, seed=4)  # and another seed is another take
    assert any(a.shape != b.shape or not bool((a == b).all()) for a, b in zip(other, reference))


def test_the_graph_path_without_capture_gives_the_same_greedy_codes(models: dict[str, Model]) -> None:
    """Whole buffers under a mask, batch rounded up to a bucket (3 -> 4), tensor-only steps."""
    model = models["custom"]
    model.reference()
    reference = model.speak("custom", sample=False)
    frames = model.loop(static=True)
    assert frames.static and not frames.graphs
    assert_same_codes(model.speak("custom", sample=False), reference)
    assert frames.stats["rows"] == 4 and frames.stats["items"] == 3


def test_an_item_over_its_budget_stops_alone_and_is_capped(models: dict[str, Model]) -> None:
    model = models["custom"]
    model.reference()
    reference = model.speak("custom", sample=False)
    frames = model.loop()
    frames.plan(max_frames=[4, 1000, 1000])
    ours = model.speak("custom", sample=False)
    eos = model.qwen.model.config.talker_config.codec_eos_token_id
    assert len(ours[0]) == 4 and bool((ours[0] == reference[0][:4]).all())
    assert_same_codes(ours[1:], reference[1:])  # the others went on to their own end
    assert frames.last_capped == [True, False, False]
    assert all(int(c[-1, 0]) != eos for c in ours)
    # The budget is for one call.
    assert_same_codes(model.speak("custom", sample=False), reference)
    assert frames.last_capped == [False, False, False]


def test_a_minimum_holds_end_of_speech_back(models: dict[str, Model]) -> None:
    model = models["custom"]
    model.reference()
    natural = [len(c) for c in model.speak("custom", sample=False)]
    frames = model.loop()
    frames.plan(min_frames=[natural[0] + 5, 0, 0])
    longer = [len(c) for c in model.speak("custom", sample=False)]
    assert longer[0] >= natural[0] + 5 and longer[1:] == natural[1:]


def test_a_seeded_utterance_is_the_same_take_in_any_batch(tiny_qwen_dir: Path) -> None:
    """Per-item seeds: a chunk's take does not depend on the batch it lands in."""
    from voxd.tts.base import Utterance
    from voxd.tts.qwen import QwenEngine

    engine = QwenEngine(str(tiny_qwen_dir))  # sampling, as in production
    mine = Utterance(TEXTS[1], "Ryan", "en", seed=42)
    alone = engine.synthesize([mine]).waveforms[0]
    others = [Utterance(TEXTS[0], "Ryan", "en", seed=7), Utterance(TEXTS[2], "Ryan", "en", seed=8)]
    batched = engine.synthesize([others[0], mine, others[1]]).waveforms[1]
    assert len(alone) == len(batched)
    np.testing.assert_allclose(alone, batched, rtol=0, atol=2.0**-15)
    other_seed = engine.synthesize([Utterance(TEXTS[1], "Ryan", "en", seed=43)]).waveforms[0]
    assert len(other_seed) != len(alone) or not np.allclose(other_seed, alone, atol=2.0**-15)
    engine.close()


def test_a_model_without_what_the_loop_reads_keeps_its_own_generate(caplog: pytest.LogCaptureFixture) -> None:
    class Odd:
        talker = object()

    assert qwen_loop.install(Odd()) is None
    assert "decoding with its own generate" in caplog.text


@pytest.mark.slow
def test_the_engine_takes_the_loop_by_name(tiny_qwen_dir: Path) -> None:
    from voxd.tts.base import Utterance
    from voxd.tts.qwen import QwenEngine

    with pytest.raises(ConfigError, match="decode_loop"):
        QwenEngine(str(tiny_qwen_dir), decode_loop="fast")
    greedy = dict(do_sample=False, subtalker_do_sample=False)
    ours = QwenEngine(str(tiny_qwen_dir), **greedy)
    theirs = QwenEngine(str(tiny_qwen_dir), decode_loop="qwen_tts", **greedy)
    assert ours.model_id == theirs.model_id  # the same chunks: the cache stays valid across loops
    batch = [Utterance(text, "Ryan", "en") for text in TEXTS]
    for a, b in zip(ours.synthesize(batch).waveforms, theirs.synthesize(batch).waveforms):
        np.testing.assert_array_equal(a, b)
    assert ours._frames is not None and theirs._frames is None
    ours.close()
    theirs.close()


def test_a_failed_batch_leaves_no_buffers_behind(models: dict[str, Model]) -> None:
    """A batch that fails (on a GPU: out of memory in its cache or its graph) gives its
    buffers back, so the smaller retry has the memory, and the next batch is right."""
    model = models["custom"]
    model.reference()
    reference = model.speak("custom", sample=False)
    frames = model.loop(static=True)
    frames.plan(max_frames=[4, 5])  # two budgets for three texts: fails once the buffers are made
    with pytest.raises(RuntimeError):
        model.speak("custom", sample=False)
    assert frames.states == {}
    assert_same_codes(model.speak("custom", sample=False), reference)


# -- the GPU's settings, on the CPU ---------------------------------------------------------------


class CpuGraphs(qwen_loop.Frames):
    """The graph path with only CUDA's own calls stood in for: ``_run`` replays a "graph"
    (the frame, run eagerly) that ``_capture`` made after the real warm-up and restore."""

    def __init__(self, model: Any) -> None:
        super().__init__(model, static=True, sampler="exponential")
        self.graphs = True

    def _capture(self, state: qwen_loop.State, rules: qwen_loop.Rules) -> Any:
        self._warm_up(state, rules)
        return SimpleNamespace(replay=lambda: self.frame(state, rules))


SEEDS = [11, 12, 13]


def keyed_takes(model: Model, frames: qwen_loop.Frames) -> list[Any]:
    """Each text alone with its own seed, then the three in one batch, with the frames' loop."""
    takes = []
    for text, seed in zip(TEXTS, SEEDS):
        frames.plan(seeds=[seed])
        takes += model.speak("custom", sample=True, texts=[text], seed=100 + seed)
    frames.plan(seeds=SEEDS)
    return takes + model.speak("custom", sample=True, seed=99)


@pytest.mark.slow
def test_the_gpu_settings_together_give_the_eager_loop_takes(models: dict[str, Model]) -> None:
    """Static shapes, the exponential race on each item's seed and the graph path's capture,
    warm-up and replay, as on a GPU: each item's take is the eager loop's with the same seed,
    alone or in a batch (3 rows in a bucket of 4), whatever torch's generator holds."""
    model = models["custom"]
    model.reference()
    eager = model.loop(sampler="exponential")
    assert not eager.static
    reference = keyed_takes(model, eager)
    alone, batched = reference[:3], reference[3:]
    assert len({len(c) for c in alone}) == 3  # the premise: the takes end at different frames
    assert_same_codes(batched, alone)
    model.reference()
    graphs = CpuGraphs(model.qwen.model).install()
    model.frames = graphs
    ours = keyed_takes(model, graphs)
    assert_same_codes(ours[:3], alone)
    assert_same_codes(ours[3:], alone)
    assert graphs.stats["rows"] == 4 and graphs.stats["items"] == 3
    # One capture per batch shape: 1 row (three texts alone), then 4; the same shape again reuses it.
    assert graphs.captures == 2
    graphs.plan(seeds=SEEDS)
    assert_same_codes(model.speak("custom", sample=True, seed=5), alone)
    assert graphs.captures == 2 and graphs.stats["capture_seconds"] == 0.0


@pytest.mark.gpu
def test_cuda_graphs_replay_the_same_takes_and_capture_once_per_shape(tiny_qwen_dir: Path) -> None:
    """On a card, in float32: the loop's defaults there (graphs, static shapes, the race on each
    item's seed) capture one graph per batch shape, replay the same takes from it batch after
    batch (the capture's warm-up leaves nothing behind), and end each take at its own frame."""
    model = Model(tiny_qwen_dir, device="cuda:0")
    frames = model.loop()
    assert frames.graphs and frames.static and frames.sampler == "exponential"
    first = keyed_takes(model, frames)
    assert frames.captures == 2  # one row (each text alone), then four
    assert len({len(c) for c in first[:3]}) > 1
    assert_same_codes(keyed_takes(model, frames), first)
    assert frames.captures == 2


# -- refill: more items than rows ---------------------------------------------------------------

# Six texts for refill: 6 items in 4 rows leave two waiting for the first rows to free.
TEXTS6 = TEXTS + ["Another.", "Yet another sentence of some middling length, to vary things.", "Short again."]
# Greedy items of the tiny model all end at frame 11: minimums and budgets make them end apart.
MIN6, MAX6 = [0, 20, 5, 30, 14, 0], [6, 40, 40, 40, 40, 9]
SEEDS6 = [21, 22, 23, 24, 25, 26]


def each_alone(model: Model, frames: qwen_loop.Frames, sample: bool) -> list[Any]:
    takes = []
    for i, text in enumerate(TEXTS6):
        frames.plan(min_frames=[MIN6[i]], max_frames=[MAX6[i]], seeds=[SEEDS6[i]] if sample else None)
        takes += model.speak("custom", sample=sample, texts=[text], seed=50 + i)
    return takes


def all_six(model: Model, frames: qwen_loop.Frames, sample: bool, rows: int | None) -> list[Any]:
    frames.plan(min_frames=MIN6, max_frames=MAX6, seeds=SEEDS6 if sample else None, rows=rows)
    return model.speak("custom", sample=sample, texts=TEXTS6, seed=7)


@pytest.mark.slow
def test_refilled_rows_give_each_item_its_own_greedy_codes(models: dict[str, Model]) -> None:
    """Six items in four rows (two start in the rows of the first to end) == six in a bucket
    of eight == each alone, frame for frame; and the rows carry fewer padded frames."""
    model = models["custom"]
    model.reference()
    frames = model.loop(static=True)
    alone = each_alone(model, frames, sample=False)
    assert len({len(c) for c in alone}) >= 5  # the premise: the items end at different frames
    wide = all_six(model, frames, sample=False, rows=None)
    assert frames.stats["rows"] == 8 and frames.stats["refills"] == 0
    padded_wide = frames.stats["padded_frames"]
    narrow = all_six(model, frames, sample=False, rows=4)
    assert frames.stats["rows"] == 4 and frames.stats["refills"] == 2
    assert_same_codes(wide, alone)
    assert_same_codes(narrow, alone)
    assert frames.stats["padded_frames"] < padded_wide
    assert frames.stats["item_frames"] == sum(len(c) for c in alone)
    assert frames.last_capped == [len(c) == m for c, m in zip(alone, MAX6)] and any(frames.last_capped)
    natural = model.speak("custom", sample=False, texts=TEXTS6)  # no budgets: the model's own ends
    frames.plan(rows=4)
    assert_same_codes(model.speak("custom", sample=False, texts=TEXTS6), natural)


@pytest.mark.slow
def test_refilled_rows_keep_each_seeded_take_on_the_graph_path(models: dict[str, Model]) -> None:
    """The GPU's settings (static shapes, the race on each item's seed, capture and replay):
    an item that starts in a freed row counts its draws from its own first frame, so its take
    is the one it has alone; the rows are refilled between replays of one captured graph."""
    model = models["custom"]
    model.reference()
    graphs = CpuGraphs(model.qwen.model).install()
    model.frames = graphs
    alone = each_alone(model, graphs, sample=True)
    assert len({len(c) for c in alone}) >= 5
    assert_same_codes(all_six(model, graphs, sample=True, rows=None), alone)
    captures = graphs.captures
    assert_same_codes(all_six(model, graphs, sample=True, rows=4), alone)
    assert graphs.stats["refills"] == 2 and graphs.stats["rows"] == 4
    assert graphs.captures == captures + 1  # one graph for the 4-row shape, kept through the refills
    assert_same_codes(all_six(model, graphs, sample=True, rows=4), alone)
    assert graphs.captures == captures + 1 and graphs.stats["capture_seconds"] == 0.0


@pytest.mark.gpu
def test_cuda_graphs_refill_rows_with_the_same_takes(tiny_qwen_dir: Path) -> None:
    """On a card: six items in four rows of one captured graph, the rows refilled between
    replays, give each item the take it has alone; the graph is not captured again."""
    model = Model(tiny_qwen_dir, device="cuda:0")
    frames = model.loop()
    assert frames.graphs
    alone = each_alone(model, frames, sample=True)
    assert_same_codes(all_six(model, frames, sample=True, rows=4), alone)
    assert frames.stats["refills"] == 2
    captures = frames.captures
    assert_same_codes(all_six(model, frames, sample=True, rows=4), alone)
    assert frames.captures == captures


# -- checkpoints of other shapes ---------------------------------------------------------------

SERVED_SHAPES = ["4 groups, 3 layers, MHA", "20 groups, 8 heads"]  # tests/conftest.py's TINY_QWEN_SHAPES


@pytest.fixture(scope="module")
def shaped(tiny_qwen_shapes: dict[str, Path]) -> dict[str, Model]:
    return {name: Model(path) for name, path in tiny_qwen_shapes.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", SERVED_SHAPES)
def test_a_checkpoint_of_another_shape_gets_qwen_tts_codes(shaped: dict[str, Model], name: str) -> None:
    """Code groups, layers, heads, head and hidden sizes come from the checkpoint's config:
    greedy and seeded sampling give qwen_tts's codes, exact and static shapes alike."""
    model = shaped[name]
    groups = model.qwen.model.config.talker_config.num_code_groups
    model.reference()
    greedy = model.speak("custom", sample=False)
    sampled = model.speak("custom", sample=True, seed=3)
    assert all(c.shape[1] == groups for c in greedy + sampled) and groups != 16
    for static in (False, True):
        frames = model.loop(static=static, sampler="multinomial")
        assert frames.groups == groups
        assert_same_codes(model.speak("custom", sample=False), greedy)
        if not static:  # static shapes draw over whole buffers: another order of the generator
            assert_same_codes(model.speak("custom", sample=True, seed=3), sampled)


@pytest.mark.slow
def test_a_checkpoint_the_loop_cannot_run_keeps_qwen_tts_loop(shaped: dict[str, Model],
                                                              tiny_qwen_shapes: dict[str, Path],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A talker with sliding-window attention: the loop's plain causal masks would decode other
    codes, so install declines, says why, and the engine renders with qwen_tts's loop."""
    from voxd.tts.base import Utterance
    from voxd.tts.qwen import QwenEngine

    model = shaped["sliding window"]
    model.reference()
    reference = model.speak("custom", sample=False)
    assert qwen_loop.install(model.qwen.model) is None
    assert "sliding window of 8 positions" in caplog.text and "qwen_tts's own generate" in caplog.text
    forced = qwen_loop.Frames(model.qwen.model).install()  # the premise: the loop would be wrong here
    try:
        ours = model.speak("custom", sample=False)
    finally:
        forced.uninstall()
    assert any(a.shape != b.shape or not bool((a == b).all()) for a, b in zip(ours, reference))
    greedy = dict(do_sample=False, subtalker_do_sample=False)
    path = str(tiny_qwen_shapes["sliding window"])
    engine, theirs = QwenEngine(path, **greedy), QwenEngine(path, decode_loop="qwen_tts", **greedy)
    batch = [Utterance(text, "Ryan", "en") for text in TEXTS]
    for a, b in zip(engine.synthesize(batch).waveforms, theirs.synthesize(batch).waveforms):
        np.testing.assert_array_equal(a, b)
    assert engine._frames is None
    engine.close()
    theirs.close()


def test_a_predictor_with_fewer_heads_than_code_groups_is_declined(caplog: pytest.LogCaptureFixture) -> None:
    import torch
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    from tests.tiny_qwen import _model_config

    raw = _model_config("custom_voice", {name: i for i, name in enumerate(
        ["<|im_start|>", "<|im_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>"])})
    raw["talker_config"]["code_predictor_config"]["num_code_groups"] = 8  # the talker's stays 16
    torch.manual_seed(0)
    model = Qwen3TTSForConditionalGeneration(
        Qwen3TTSConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")}))
    assert qwen_loop.install(model) is None
    assert "code predictor has 7 heads" in caplog.text
    assert "generate" not in model.talker.__dict__
