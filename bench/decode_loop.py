"""Check voxd's decode loop against qwen_tts's on this machine's device: the same codes?

    .venv/bin/python bench/decode_loop.py                  # tiny checkpoint, float32
    .venv/bin/python bench/decode_loop.py --dtype bfloat16
    .venv/bin/python bench/decode_loop.py --smoke --out /tmp/d.json   # CPU, float32, two texts: seconds

The tests prove token identity on the CPU; this is for a GPU, where the graph path runs
(whole-buffer attention under a mask instead of the growing cache's shapes, so float
rounding can differ). For each variant of voxd's loop it reports, against qwen_tts's
greedy codes, the share of frames that match and the first frame that does not, plus
wall time. Results go to bench/results/decode_loop.json.

``refill`` in the report decodes the texts over again with a seed each (8 items in the
smoke, 32 otherwise) on the static path (graphs on a GPU), in lockstep (a row per item) and
with half as many rows refilled as items end (``Frames.plan(rows=...)``): the same codes,
and the padded frames of each (row frames run minus the items' own frames).

``--smoke`` compares the loops on the CPU in float32 (one torch thread) on the first two
texts, whatever device there is, and writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from batching import tiny_qwen  # bench/batching.py
from report import machine, write  # bench/report.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXTS = [
    "Hello there, this is a short one.",
    "A much longer sentence that goes on and on about many things, with commas; and then more words still.",
    "Mid length text here, quite fine.",
    "Another, for an even batch.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="the CPU, float32, two texts: seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decode_loop.json")
    args = parser.parse_args(argv)
    texts = TEXTS
    if args.smoke:
        args.device, args.dtype, texts = "cpu", "float32", TEXTS[:2]

    import torch
    from qwen_tts import Qwen3TTSModel

    from voxd.tts import qwen_loop

    cuda = args.device != "cpu" and torch.cuda.is_available()
    device = "cuda:0" if cuda else "cpu"
    if not cuda:
        torch.set_num_threads(1)
    tiny = tiny_qwen()
    report: dict = {**machine(), "device": torch.cuda.get_device_name(0) if cuda else "cpu", "dtype": args.dtype,
                    "texts": len(texts), "smoke": args.smoke, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny.build_tiny_checkpoint(Path(tmp) / "tiny")
        model = Qwen3TTSModel.from_pretrained(str(path), device_map=device, dtype=getattr(torch, args.dtype),
                                              attn_implementation="sdpa")
    talker = model.model.talker
    talker.generation_config.pad_token_id = model.model.config.talker_config.codec_eos_token_id
    seen: dict = {}
    real = model.model.speech_tokenizer.decode

    def decode(encoded, *a, **k):
        seen["codes"] = [e["audio_codes"].cpu() for e in encoded]
        return real(encoded, *a, **k)

    model.model.speech_tokenizer.decode = decode

    def run(sample: bool, spoken: list[str] | None = None, frames: int = 200) -> tuple[list, float]:
        spoken = texts if spoken is None else spoken
        torch.manual_seed(0)
        t0 = time.monotonic()
        model.generate_custom_voice(
            text=spoken, speaker=["ryan"] * len(spoken), language=["english"] * len(spoken), non_streaming_mode=True,
            max_new_tokens=frames, do_sample=sample, subtalker_dosample=sample, temperature=0.9, top_k=50, top_p=1.0,
            repetition_penalty=1.05, subtalker_temperature=0.9, subtalker_top_k=50, subtalker_top_p=1.0,
        )
        if cuda:
            torch.cuda.synchronize()
        return seen["codes"], time.monotonic() - t0

    reference, seconds = run(False)
    report["variants"]["qwen_tts"] = {"seconds": round(seconds, 3), "frames": [len(c) for c in reference]}
    variants = {"voxd (exact shapes)": {"static": False, "graphs": False},
                "voxd (static shapes)": {"static": True, "graphs": False}}
    if cuda:
        variants["voxd (CUDA graphs)"] = {"graphs": True}
    for name, options in variants.items():
        frames = qwen_loop.install(model.model, sampler="multinomial", **options)
        assert frames is not None
        run(False)  # a first call captures the graphs
        codes, seconds = run(False)
        frames.uninstall()
        same = sum(int((a == b).all(dim=1).sum()) for a, b in zip(reference, codes) if a.shape == b.shape)
        total = sum(len(a) for a in reference)
        first = [next((i for i in range(min(len(a), len(b))) if not bool((a[i] == b[i]).all())), None)
                 for a, b in zip(reference, codes)]
        report["variants"][name] = {
            "seconds": round(seconds, 3), "frames": [len(c) for c in codes],
            "identical": all(a.shape == b.shape and bool((a == b).all()) for a, b in zip(reference, codes)),
            "frames_matching": f"{same}/{total}", "first_difference": first,
        }
        print(f"{name:>22}: identical={report['variants'][name]['identical']} "
              f"matching {same}/{total} first differences {first} ({seconds:.2f} s)", flush=True)
    items = 8 if args.smoke else 32
    report["refill"] = refill(model, cuda, run, items)
    # Each item held to a length of its own (minimum and budget both), spread as real chunks
    # are: 15-30 s at 12.5 frames a second (a fifth of that in the smoke).
    scale = 0.2 if args.smoke else 1.0
    lengths = [round(scale * (188 + (i * 7919) % 188)) for i in range(items)]
    report["refill_at_lengths"] = refill(model, cuda, run, items, lengths)
    write(args.out, report)
    return 0


def refill(model, cuda: bool, run, items: int, lengths: list[int] | None = None) -> dict:
    """Lockstep against refill on the static path (graphs on a GPU), keyed sampling: codes and
    padded frames; with ``lengths``, each item ends at its own (the model's ends otherwise)."""
    from voxd.tts import qwen_loop

    spoken = [TEXTS[i % len(TEXTS)] for i in range(items)]
    seeds = list(range(1, items + 1))
    frames = qwen_loop.install(model.model, static=True, graphs=cuda, sampler="exponential")
    assert frames is not None
    out: dict = {"items": items, "lengths": lengths}
    budgets = {} if lengths is None else {"min_frames": lengths, "max_frames": lengths}
    frames_cap = 200 if lengths is None else max(lengths) + 2
    takes = {}
    for label, rows in (("lockstep", None), ("refill", items // 2)):
        frames.plan(seeds=seeds, rows=rows, **budgets)
        run(True, spoken, frames_cap)  # a first call captures the graph
        frames.plan(seeds=seeds, rows=rows, **budgets)
        takes[label], seconds = run(True, spoken, frames_cap)
        s = frames.stats
        out[label] = {"rows": s["rows"], "frames": s["frames"], "refills": s["refills"], "row_frames": s["row_frames"],
                      "item_frames": s["item_frames"], "padded_frames": s["padded_frames"],
                      "padding": round(s["padded_frames"] / max(1, s["row_frames"]), 4), "seconds": round(seconds, 3)}
        print(f"{label:>22}: {s['rows']} rows, {s['frames']} frames, {s['item_frames']} item frames, "
              f"{s['padded_frames']} padded ({100 * out[label]['padding']:.1f}%), {seconds:.2f} s", flush=True)
    frames.uninstall()
    out["identical"] = all(a.shape == b.shape and bool((a == b).all())
                           for a, b in zip(takes["lockstep"], takes["refill"]))
    print(f"{'refill':>22}: identical={out['identical']}", flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
