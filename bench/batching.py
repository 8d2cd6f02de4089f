"""Benchmark batching: the same chunks through Qwen3-TTS at batch 1, 2, 4, 8, ...

    .venv/bin/python bench/batching.py                          # tiny checkpoint, this machine's device
    .venv/bin/python bench/batching.py --sizes 1 2 4 --chunks 8 --length-scale 0.25
    .venv/bin/python bench/batching.py --model DIR_OR_HUB_ID    # a real checkpoint, natural lengths
    .venv/bin/python bench/batching.py --full-size              # GPU: random weights, real 1.7B dimensions
    .venv/bin/python bench/batching.py --full-size --dry-run    # build it (CPU is fine), render nothing
    .venv/bin/python bench/batching.py --smoke --out /tmp/b.json  # seconds, CPU: tiny model, batch 1 and 2

Each batch size renders the same chunks (sentences of a book, planned the way
voxd plans them) into a fresh chunk cache through ``voxd.render.render`` and the
real :class:`voxd.tts.qwen.QwenEngine`: grouping, sorting, the length-ratio cut,
lockstep padding, all as in production; only the retake of suspect chunks is off.
The model is loaded and warmed up before the first measurement.

Random weights say nothing sensible about when to stop, so unless ``--lengths
natural`` (the default with ``--model``) every item is made to last about the
frames its text predicts (15 characters a second, 12.5 frames a second, times
``--length-scale``, default 1: real narration chunks of 15-30 s), its end drawn
within ``--length-spread`` (default 20%) of that prediction from a hash of its
text, as real takes end around, not at, what their text predicts (the same item
ends at the same frame at every batch size and in both loops). With voxd's loop
each item's budget is held to it; with qwen_tts's, EOS is suppressed until then
and forced at that frame, by a hook on the talker's codec head. Compute per frame
is the model's own.

``--full-size`` builds a random-weight checkpoint with the real 1.7B CustomVoice
dimensions (talker: hidden 2048, 28 layers, 16 heads / 8 KV, head_dim 128;
code predictor: hidden 1024, 5 layers, 16 code groups; a 151,936-token text
embedding; the 12 Hz codec decoder at the library's default size) in the real
on-disk layout, in bfloat16 on the device, and loads it through the same
``from_pretrained`` call as production. Its compute and memory per frame are the
real model's; its audio is noise.

Reported per batch size: audio seconds per wall second (x real time), the wall
time by phase (graph capture, prefill, the frame loop, codec decode and the gaps
between: ``phase_seconds``, bench/report.py's ``phase_split``), padding
waste (share of lockstep frames that were padding), peak memory during the run
above what was in use before it (RSS high-water mark on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU), wall time, batches. Results go to
bench/results/batching.json.

``--smoke`` runs every step on the CPU in seconds: the full-size model is built on
PyTorch's ``meta`` device (shapes and parameter counts, no memory, no weights),
``--memory``'s table is taken, and the tiny random-weight checkpoint renders 4
chunks at batch 1 and 2 through both decode loops, with one torch thread and a
tenth of the frames the text predicts. It writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from report import machine, phase_line, phase_split, write  # bench/report.py
from rss import reset_peak, status  # bench/rss.py: sys.path[0] is bench/ when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "batching.json"
FRAMES_PER_SECOND = 12.5

# The real Qwen3-TTS-12Hz-1.7B-CustomVoice dimensions.
FULL_TALKER = {
    "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
    "num_key_value_heads": 8, "head_dim": 128, "text_vocab_size": 151936, "text_hidden_size": 2048,
    "rope_scaling": {"interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
}
FULL_CODE_PREDICTOR = {
    "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 5, "num_attention_heads": 16,
    "num_key_value_heads": 8, "head_dim": 128,
}


def tiny_qwen():
    """tests/tiny_qwen.py, imported by path (the bench does not need the tests package)."""
    spec = importlib.util.spec_from_file_location("tiny_qwen", ROOT / "tests" / "tiny_qwen.py")
    if "tiny_qwen" in sys.modules:
        return sys.modules["tiny_qwen"]
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["tiny_qwen"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# -- the full-size random checkpoint -------------------------------------------------------


def full_size_config(ids: dict[str, int], talker_layers: int | None = None) -> dict:
    tq = tiny_qwen()
    raw = tq._model_config("custom_voice", ids)
    talker = raw["talker_config"]
    talker.update(FULL_TALKER)
    talker["code_predictor_config"].update(FULL_CODE_PREDICTOR)
    if talker_layers:
        talker["num_hidden_layers"] = talker_layers
    raw["speaker_encoder_config"]["enc_dim"] = FULL_TALKER["hidden_size"]
    raw["speaker_encoder_config"].update(
        {"enc_channels": [512, 512, 512, 512, 1536], "enc_attention_channels": 128, "enc_se_channels": 128}
    )
    return raw


def build_full_size(dest: Path | None, device: str, dtype, talker_layers: int | None = None) -> dict:
    """Build the random full-size model on ``device``; write the checkpoint to ``dest``
    (None: build only). Returns parameter counts."""
    import torch
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration
    from transformers import EncodecFeatureExtractor

    tq = tiny_qwen()
    if dest is None:
        with tempfile.TemporaryDirectory(prefix="voxd-full-size-") as scratch:
            ids = tq._write_text_tokenizer(Path(scratch))
    else:
        dest.mkdir(parents=True, exist_ok=True)
        ids = tq._write_text_tokenizer(dest)
    raw = full_size_config(ids, talker_layers)
    config = Qwen3TTSConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")})
    started = time.monotonic()
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its final dtype: half the peak memory of float32 first
    try:
        with torch.device(device):
            model = Qwen3TTSForConditionalGeneration(config).to(dtype).eval()
        codec_config = Qwen3TTSTokenizerV2Config(
            encoder_config={
                "sampling_rate": tq.SAMPLE_RATE, "frame_rate": FRAMES_PER_SECOND, "codebook_size": tq.CODEBOOK_SIZE,
                "num_quantizers": tq.NUM_CODE_GROUPS, "num_semantic_quantizers": 1, "upsampling_ratios": [8, 6, 5, 4],
                "codebook_dim": 256, "upsample_groups": 512,
            },
            decoder_config={
                "codebook_size": tq.CODEBOOK_SIZE, "codebook_dim": 512, "num_quantizers": tq.NUM_CODE_GROUPS,
            },
            encoder_valid_num_quantizers=tq.NUM_CODE_GROUPS,
            input_sample_rate=tq.SAMPLE_RATE, output_sample_rate=tq.SAMPLE_RATE,
            decode_upsample_rate=tq.FRAME_SAMPLES, encode_downsample_rate=tq.FRAME_SAMPLES,
        )
        with torch.device(device):
            codec = Qwen3TTSTokenizerV2Model(codec_config).to(dtype).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    built = time.monotonic() - started
    counts = {
        "talker_params": sum(p.numel() for p in model.talker.parameters()),
        "code_predictor_params": sum(p.numel() for p in model.talker.code_predictor.parameters()),
        "model_params": sum(p.numel() for p in model.parameters()),
        "codec_decoder_params": sum(p.numel() for p in codec.decoder.parameters()),
        "build_seconds": round(built, 1),
    }
    if dest is not None:
        model.save_pretrained(dest, safe_serialization=True)
        saved = json.loads((dest / "config.json").read_text())
        saved["speaker_encoder_config"] = raw["speaker_encoder_config"]  # see tests/tiny_qwen.py
        (dest / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
        (dest / "generation_config.json").write_text(json.dumps({
            "do_sample": True, "repetition_penalty": 1.05, "temperature": 0.9, "top_p": 1.0, "top_k": 50,
            "subtalker_dosample": True, "subtalker_temperature": 0.9, "subtalker_top_p": 1.0,
            "subtalker_top_k": 50, "max_new_tokens": 8192,
        }, indent=2) + "\n")
        codec.save_pretrained(dest / "speech_tokenizer", safe_serialization=True)
        EncodecFeatureExtractor(
            feature_size=1, sampling_rate=tq.SAMPLE_RATE, padding_side="right", padding_value=0.0,
            return_attention_mask=True,
        ).save_pretrained(dest / "speech_tokenizer")
    del model, codec
    return counts


# -- lengths from the text -------------------------------------------------------------------


class TextLengths:
    """Make item i of each batch stop after ``targets[i]`` frames: a forward hook on the
    talker's codec head masks EOS before then and forces it at that frame."""

    def __init__(self, engine, scale: float, spread: float = 0.0) -> None:
        from voxd.tts.base import speech_seconds

        self.engine, self.scale, self.spread, self.speech_seconds = engine, scale, spread, speech_seconds
        self.targets: list[int] = []
        self.step = 0
        self.real_synthesize = engine.synthesize
        engine.synthesize = self.synthesize
        self.hooked = False

    def frames(self, text: str) -> int:
        """The prediction, moved by up to ``spread`` of itself either way by the text's hash."""
        import hashlib

        draw = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64  # [0, 1)
        predicted = self.speech_seconds(text) * FRAMES_PER_SECOND * self.scale
        return max(2, round(predicted * (1 + self.spread * (2 * draw - 1))))

    def synthesize(self, batch, **kwargs):
        self.targets = [self.frames(u.text.strip()) for u in batch if u.text.strip()]
        if not self.hooked:
            self.engine._load()
            frames = self.engine._frames
            if frames is not None:
                # voxd's loop takes per-item budgets: the same lengths, and no hook baked into a graph
                plan = frames.plan
                frames.plan = lambda **_: plan(max_frames=self.targets, min_frames=self.targets)
            else:
                model = self.engine._model.model
                self.eos = model.config.talker_config.codec_eos_token_id
                model.talker.codec_head.register_forward_hook(self.hook)
            self.hooked = True
        return self.real_synthesize(batch, **kwargs)

    def hook(self, module, args, logits):
        import torch

        if args[0].shape[1] > 1:  # the prompt: the first frame is chosen from this step's logits
            self.step = 0
        last = logits[:, -1, :]
        for row, target in enumerate(self.targets[: last.shape[0]]):
            if self.step < target:
                last[row, self.eos] = -torch.inf
            else:
                eos = last[row, self.eos].clone()
                last[row, :] = -torch.inf
                last[row, self.eos] = 0.0 if torch.isinf(eos) else eos
        self.step += 1
        return logits


# -- measuring ----------------------------------------------------------------------------


class Peak:
    """Peak memory above the level at start: CUDA allocated on a GPU, RSS on the CPU."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.kind = "cuda_max_memory_allocated" if cuda else "rss_high_water_mark"

    def __enter__(self) -> Peak:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.resettable = reset_peak()
            self.base = status("VmRSS") or 0
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.peak = status("VmHWM") or 0
        self.above = max(0, self.peak - self.base)


def book_chunks(limit: int, model_id: str, book: Path | None):
    """Up to ``limit`` chunks of a book, as voxd plans them (the sample book, repeated, by default)."""
    from voxd.book import Chunk
    from voxd.ingest import read_book
    from voxd.narration.text import plan_chunks
    from voxd.render import with_keys
    from voxd.samples import build_sample

    with tempfile.TemporaryDirectory() as tmp:
        source = book or build_sample(Path(tmp) / "alice.epub")
        parsed = read_book(source)
    planned = plan_chunks(parsed, voice="default", language="en", target_chars=300, max_chars=500,
                          speak_titles=False)
    out: list[Chunk] = []
    round_ = 0
    while len(out) < limit:
        for c in planned:
            if len(out) >= limit:
                break
            # Repeats get a mark so their cache keys differ; the text stays about as long.
            text = c.text if round_ == 0 else f"{c.text} ({round_})"
            out.append(Chunk(chapter=c.chapter, index=len(out), text=text, pause=c.pause, voice=c.voice,
                             language=c.language))
        round_ += 1
    return with_keys(out, model_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a Qwen3-TTS CustomVoice checkpoint (directory or hub id)")
    parser.add_argument("--full-size", action="store_true", help="random weights, real 1.7B dimensions")
    parser.add_argument("--dry-run", action="store_true", help="build the model, render nothing")
    parser.add_argument("--talker-layers", type=int, help="with --full-size: fewer talker layers (a smoke test)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help="batch sizes (default 1 2 4 ... 64 on a GPU, 1..16 on the CPU)")
    parser.add_argument("--chunks", type=int,
                        help="chunks to render at every size (default: the largest size, at least 16)")
    parser.add_argument("--batches", type=int,
                        help="instead of --chunks: each size renders this many full batches (size x N chunks), "
                             "so small sizes do not take the whole run")
    parser.add_argument("--decode-probe", action="store_true",
                        help="also time the codec decoder alone on random codes, batch x frames, with its peak "
                             "memory (the decoder sets the peak: see voxd/tts/gpu.py)")
    parser.add_argument("--book", type=Path, help="take the chunks from this EPUB (default: the sample book)")
    parser.add_argument("--lengths", choices=("text", "natural"),
                        help="items stop where their text predicts (default; random weights) or by themselves "
                             "(default with --model)")
    parser.add_argument("--length-scale", type=float,
                        help="with --lengths text: frames x this (default 1, with --smoke 0.1)")
    parser.add_argument("--length-spread", type=float, default=0.2,
                        help="with --lengths text: each item ends within this share of its prediction, "
                             "either way (default 0.2; 0: exactly at it)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--loop", choices=("voxd", "qwen_tts", "both"), default="both",
                        help="the decode loop: voxd's (static cache, CUDA graphs), qwen_tts's own, or both in turn")
    parser.add_argument("--no-graphs", action="store_true", help="voxd's loop without CUDA graphs")
    parser.add_argument("--decode-rows", type=int, default=0,
                        help="[qwen] decode_rows: a batch in at most this many rows, refilled as chunks end")
    parser.add_argument("--decode-overlap", action="store_true",
                        help="[qwen] decode_overlap: decode each batch while the next one generates")
    parser.add_argument("--memory", action="store_true",
                        help="print the batch sizes voxd picks by free GPU memory (its memory model) and exit")
    parser.add_argument("--force-oom", type=int, metavar="SIZE",
                        help="last: render SIZE x --batches chunks starting at batch SIZE, more than fits, "
                             "and report how voxd's render recovers")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds on the CPU: the full-size model built on the meta device (no weights), "
                             "then the tiny checkpoint at batch 1 and 2, 4 chunks, one torch thread")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.memory:
        return print_memory_model()
    if args.smoke:
        if args.model or args.full_size or args.force_oom or args.decode_probe:
            parser.error("--smoke runs the tiny checkpoint on the CPU: not with --model, --full-size, "
                         "--force-oom or --decode-probe")
        args.device, args.threads = "cpu", args.threads or 1
        args.sizes = args.sizes or [1, 2]
        if not args.batches:
            args.chunks = args.chunks or 4
    if args.length_scale is None:
        args.length_scale = 0.1 if args.smoke else 1.0

    import logging

    import torch

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device != "cpu" and torch.cuda.is_available()
    device = ("cuda:0" if args.device in ("auto", "cuda") else args.device) if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    report: dict = {
        **machine(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores, "
                                                             f"{torch.get_num_threads()} torch threads)",
        "dtype": str(dtype).removeprefix("torch."),
    }

    tmp = Path(tempfile.mkdtemp(prefix="voxd-bench-batching-"))
    try:
        return _run(args, report, tmp, cuda, device, dtype)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a full-size checkpoint is gigabytes


def _run(args, report: dict, tmp: Path, cuda: bool, device: str, dtype) -> int:
    import torch

    if args.smoke:
        # The full-size build, as --full-size runs it, on the meta device: every shape, no memory.
        print("--smoke: building the full-size model on the meta device (no weights)...", flush=True)
        report["full_size_meta"] = build_full_size(None, "meta", torch.bfloat16, args.talker_layers)
        print(json.dumps(report["full_size_meta"]))
        report["smoke"] = True
        report["memory_table"] = memory_table()  # --memory's numbers
    if args.full_size:
        target = None if args.dry_run else tmp / "Qwen3-TTS-full-size-random-CustomVoice"
        build_dtype = torch.bfloat16 if (cuda or args.dry_run) else dtype
        print(f"building the full-size random model on {device} ({str(build_dtype).removeprefix('torch.')})...",
              flush=True)
        counts = build_full_size(target, device, build_dtype, args.talker_layers)
        report["model"] = "full-size random (1.7B dimensions)" + (
            f", {args.talker_layers} talker layers" if args.talker_layers else "")
        report.update(counts)
        print(json.dumps(counts, indent=2))
        if args.dry_run:
            per_frame = 2 * FULL_TALKER["num_key_value_heads"] * FULL_TALKER["head_dim"] * 2 * (
                args.talker_layers or 28)
            print(f"talker KV cache: {per_frame / 1024:.0f} KiB per item per frame in bfloat16")
            return 0
        model_path = str(target)
    elif args.model:
        model_path = args.model
        report["model"] = model_path
    else:
        model_path = str(tiny_qwen().build_tiny_checkpoint(tmp / "Qwen3-TTS-tiny-CustomVoice"))
        report["model"] = "tiny random (tests/tiny_qwen.py)"
    if args.dry_run:
        print("--dry-run: nothing rendered")
        return 0

    from voxd.tts.qwen import QwenEngine

    lengths = args.lengths or ("natural" if args.model else "text")
    sizes = args.sizes or ([1, 2, 4, 8, 16, 32, 64] if cuda else [1, 2, 4, 8, 16])
    loops = ["voxd", "qwen_tts"] if args.loop == "both" else [args.loop]
    pool = args.batches * max(sizes) if args.batches else (args.chunks or max(16, max(sizes)))
    report.update(lengths=lengths, length_scale=args.length_scale if lengths == "text" else None,
                  length_spread=args.length_spread if lengths == "text" else None, results=[],
                  load_and_warmup_seconds={})
    from voxd.tts.base import Utterance

    engine = None
    for loop in loops:
        if engine is not None:
            engine.close()
        engine = QwenEngine(model_path, device=device, decode_loop=loop, cuda_graphs=not args.no_graphs,
                            decode_rows=args.decode_rows, decode_overlap=args.decode_overlap)
        report.update(decode_rows=args.decode_rows, decode_overlap=args.decode_overlap)
        if lengths == "text":
            TextLengths(engine, args.length_scale, args.length_spread)
        chunks = book_chunks(pool, engine.model_id, args.book)
        report.update(chunks=len(chunks), characters=sum(len(c.text) for c in chunks))
        print(f"{report['model']} on {report['device']}, {loop} loop: {len(chunks)} chunks, "
              f"{report['characters']} characters, lengths: {lengths}", flush=True)
        started = time.monotonic()
        engine.synthesize([Utterance(chunks[0].text, "default", "en")] * min(2, max(sizes)))  # load + warm up
        report["load_and_warmup_seconds"][loop] = round(time.monotonic() - started, 2)
        phases = Phases(engine, cuda)
        if cuda:
            report["weights_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        print(f"{'loop':>8} {'batch':>5} {'batches':>7} {'wall s':>8} {'audio s':>8} {'x real':>7} {'padding':>8} "
              f"{'peak MiB':>9}")
        for size in sizes:
            try:
                report["results"].append(measure(engine, chunks, size, args, tmp, cuda, phases, loop))
            except Exception as exc:  # one loop failing must not cost the other's numbers
                import traceback

                traceback.print_exc()
                report.setdefault("errors", []).append({"loop": loop, "batch_size": size, "error": repr(exc)})
                break
    assert engine is not None
    if cuda and report["results"]:
        for loop in loops:
            model = memory_model([r for r in report["results"] if r["loop"] == loop])
            report.setdefault("memory_model", {})[loop] = model
            print(f"{loop}: memory per item per frame above the weights: " + json.dumps(model))
    if args.force_oom:
        phases.batches = []
        report["forced_oom"] = forced_oom(engine, args.force_oom, args, tmp, cuda)
        write(args.out, report)  # what a later probe cannot take away
    if args.decode_probe:
        phases.batches = []  # the probe's calls are not a size's batches
        report["decode_probe"] = decode_probe(engine, cuda)
    engine.close()
    write(args.out, report)
    return 0


def memory_table() -> list[dict]:
    """The batch sizes voxd.tts.gpu picks for the 1.7B and 0.6B models by free GPU memory."""
    from voxd.tts import gpu

    return [{"gib_free": gib,
             "1.7B": gpu.recommended_batch_size("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", gib * gpu.GiB),
             "0.6B": gpu.recommended_batch_size("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", gib * gpu.GiB)}
            for gib in (6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 80, 141)]


def print_memory_model() -> int:
    """The sizes voxd.tts.gpu picks, and the model behind them (no torch, no GPU needed)."""
    from voxd.tts import gpu

    print(f"weights {gpu.WEIGHTS_GIB} GiB; per item {gpu.ITEM_GIB * 1024:.0f} MiB; per batch "
          f"{gpu.GENERATION_FIXED_GIB} GiB; decoder reserve {gpu.DECODE_RESERVE_GIB} GiB; "
          f"{gpu.HEADROOM:.0%} of free memory planned; at most {gpu.MAX_BATCH}")
    print(f"{'GiB free':>8} {'1.7B':>6} {'0.6B':>6}")
    for row in memory_table():
        print(f"{row['gib_free']:>8} {row['1.7B']:>6} {row['0.6B']:>6}")
    return 0


def measure(engine, chunks, size, args, tmp, cuda, phases, loop) -> dict:
    """Render ``size`` x ``--batches`` chunks (or all) at batch ``size`` into a fresh cache."""
    from voxd.cache import ChunkCache
    from voxd.render import render

    these = chunks[: size * args.batches] if args.batches else chunks
    phases.batches, phases.peak = [], 0.0
    with tempfile.TemporaryDirectory(dir=tmp) as cache_dir, Peak(cuda) as peak:
        phases.base = peak.base
        t0 = time.monotonic()
        progress = render(these, engine, ChunkCache(Path(cache_dir)), batch_size=size, check=None)
        wall = time.monotonic() - t0
    row = {
        "loop": loop,
        "batch_size": size,
        "batches": progress.batches,
        "wall_seconds": round(wall, 3),
        "audio_seconds": round(progress.rendered_audio_seconds, 2),
        "x_real_time": round(progress.rendered_audio_seconds / wall, 3),
        "padding_waste": round(progress.padding_waste or 0.0, 4),
        "seconds_spoken": round(progress.seconds_spoken, 1),
        "seconds_padded": round(progress.seconds_padded, 1),
        # the decode wrapper resets CUDA's peak between phases, so take the larger of both views
        "peak_memory_mib": round(max(peak.above / 2**20, phases.peak), 1),
        "peak_memory_kind": peak.kind,
        "out_of_memory": progress.out_of_memory,
        "chunks": len(these),
        "phases": phases.batches,
    }
    row["phase_seconds"] = phase_split(row)
    print(f"{loop:>8} {size:>5} {row['batches']:>7} {wall:>8.2f} {row['audio_seconds']:>8.1f} "
          f"{row['x_real_time']:>6.2f}x {100 * row['padding_waste']:>7.1f}% {row['peak_memory_mib']:>9.1f}",
          flush=True)
    print(f"{'':>14}{phase_line(row['phase_seconds'])}", flush=True)
    return row


def forced_oom(engine, size: int, args, tmp: Path, cuda: bool) -> dict:
    """A first batch far larger than memory: voxd's render must halve it until it fits,
    render every chunk, hand the memory back, and leave the engine working."""
    import torch

    from voxd.cache import ChunkCache
    from voxd.render import render
    from voxd.tts.base import Utterance

    chunks = book_chunks(size * max(1, args.batches or 1), engine.model_id, args.book)
    settled: list[int] = []
    row: dict = {"start_batch_size": size, "chunks": len(chunks)}
    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
    print(f"forced out-of-memory: {len(chunks)} chunks starting at batch {size}...", flush=True)
    with tempfile.TemporaryDirectory(dir=tmp) as cache_dir:
        t0 = time.monotonic()
        try:
            progress = render(chunks, engine, ChunkCache(Path(cache_dir)), batch_size=size, check=None,
                              on_resize=settled.append)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            row["error"] = repr(exc)
            return row
        wall = time.monotonic() - t0
    row.update(
        out_of_memory=progress.out_of_memory, settled_batch_size=progress.batch_size, resized_to=settled,
        chunks_rendered=progress.chunks_done, batches=progress.batches, wall_seconds=round(wall, 2),
        x_real_time=round(progress.rendered_audio_seconds / wall, 3),
        recovered=progress.out_of_memory > 0 and progress.chunks_done == len(chunks),
    )
    if cuda:
        torch.cuda.synchronize()
        row["allocated_after_mib"] = round((torch.cuda.memory_allocated() - before) / 2**20, 1)
    t0 = time.monotonic()
    after = engine.synthesize([Utterance(chunks[0].text, "default", "en")] * 2)
    row["engine_after"] = {"items": len(after.waveforms), "seconds": round(time.monotonic() - t0, 2)}
    print("forced out-of-memory: " + json.dumps(row), flush=True)
    return row


class Phases:
    """Split each batch's peak memory into generation and codec decoding, and time the
    decode: qwen_tts generates every item's codes, then decodes the whole batch in one call.
    With ``--decode-overlap`` the decode runs beside the next batch's generation: it is not
    timed (nor synchronised, which would wait for it); the wall time says what it cost."""

    def __init__(self, engine, cuda: bool) -> None:
        self.cuda, self.base, self.batches, self.peak = cuda, 0, [], 0.0
        tokenizer = engine._model.model.speech_tokenizer
        real = tokenizer.decode
        loop = engine._frames
        overlapped = bool(getattr(engine, "overlaps_decode", False))

        def decode(encoded, *args, **kwargs):
            import torch

            frames = [int(item["audio_codes"].shape[0]) for item in encoded]
            record = {"batch": len(frames), "frames_max": max(frames, default=0), "frames_sum": sum(frames)}
            if loop is not None:  # voxd's loop: prefill, capture and frame times of this batch
                record.update(loop.stats)
                if loop.stats.get("frames"):
                    record["ms_per_frame"] = round(1000 * loop.stats["frame_seconds"] / loop.stats["frames"], 3)
            if overlapped:  # the decode runs on beside the next batch: neither timed nor waited for here
                self.batches.append(record)
                return real(encoded, *args, **kwargs)
            if self.cuda:
                torch.cuda.synchronize()
                record["generate_peak_mib"] = round((torch.cuda.max_memory_allocated() - self.base) / 2**20, 1)
                torch.cuda.reset_peak_memory_stats()
            t0 = time.monotonic()
            out = real(encoded, *args, **kwargs)
            if self.cuda:
                torch.cuda.synchronize()
                record["decode_peak_mib"] = round((torch.cuda.max_memory_allocated() - self.base) / 2**20, 1)
                self.peak = max(self.peak, record["generate_peak_mib"], record["decode_peak_mib"])
                torch.cuda.reset_peak_memory_stats()  # the next batch's generation starts from here
            record["decode_seconds"] = round(time.monotonic() - t0, 3)
            self.batches.append(record)
            return out

        decode.__wrapped__ = real  # type: ignore[attr-defined]  # the probe measures the decoder alone
        tokenizer.decode = decode


def memory_model(results: list[dict]) -> dict:
    """MiB per item per (longest) frame, generation and decoding apart, read off the largest
    batch measured: small batches are dominated by fixed costs."""
    measured = [b for row in results for b in row["phases"] if "generate_peak_mib" in b]
    if not measured:
        return {}
    largest = max(measured, key=lambda b: b["batch"] * b["frames_max"])
    cells = largest["batch"] * max(1, largest["frames_max"])
    return {
        "batch": largest["batch"], "frames": largest["frames_max"],
        "generate_mib_per_item_frame": round(largest["generate_peak_mib"] / cells, 4),
        "decode_mib_per_item_frame": round(largest["decode_peak_mib"] / cells, 4),
    }


def decode_probe(engine, cuda: bool) -> list[dict]:
    """The codec decoder alone on random codes: its time and peak memory by batch and frames."""
    import torch

    tokenizer = engine._model.model.speech_tokenizer
    model = engine._model.model
    device = next(model.parameters()).device
    codebook = tokenizer.model.config.decoder_config.codebook_size if hasattr(tokenizer, "model") else 2048
    # The decoder itself: not Phases' wrapper (which resets peaks), nor the engine's
    # sub-batching (which would keep the peak under whatever memory is free).
    decoder = getattr(engine, "_decoder", None)
    decode = decoder.real if decoder is not None else getattr(tokenizer.decode, "__wrapped__", tokenizer.decode)
    rows = []
    print(f"{'batch':>5} {'frames':>6} {'decode s':>9} {'peak MiB':>9} {'MiB/item/frame':>15}")
    for frames in (100, 325):
        for batch in (1, 8, 32, 64, 128):
            codes = [{"audio_codes": torch.randint(0, codebook, (frames, 16), device=device)} for _ in range(batch)]
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            t0 = time.monotonic()
            try:
                decode(codes)
            except torch.OutOfMemoryError:
                rows.append({"batch": batch, "frames": frames, "out_of_memory": True})
                torch.cuda.empty_cache()
                continue
            if cuda:
                torch.cuda.synchronize()
            seconds = time.monotonic() - t0
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else 0.0
            rows.append({"batch": batch, "frames": frames, "seconds": round(seconds, 3), "peak_mib": round(peak, 1),
                         "mib_per_item_frame": round(peak / (batch * frames), 4)})
            print(f"{batch:>5} {frames:>6} {seconds:>9.3f} {peak:>9.1f} {peak / (batch * frames):>15.4f}", flush=True)
            del codes
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
