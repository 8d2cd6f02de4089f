"""Benchmark the read-back: does it pass right takes and catch wrong ones, and what does it cost?

    .venv/bin/python bench/verify.py                         # corpus chunks, Piper and eSpeak NG
    .venv/bin/python bench/verify.py --chunks 20 --engines piper
    .venv/bin/python bench/verify.py --smoke --out /tmp/verify.json   # a few chunks: seconds

Real speech, real recogniser: chunks of the shared corpus's books (planned as voxd plans them)
are spoken by each engine, then read back by :class:`voxd.verify.listener.Listener` with the
configured Whisper model (tiny.en by default, the one the test extra ships). Every right take
is judged, then the same takes with a fault put in, one kind at a time:

* ``other``: another chunk's take (the server answered for another text);
* ``repeat``: the take with its last third said twice more (a loop);
* ``babble``: the take with another chunk's take after it (a runaway that invents);
* ``cut``: its first half (cut off); ``skip``: its middle third gone (a clause skipped);
* ``silence``: as long, silent; ``noise``: as long, white noise at the take's loudness;
* ``rate``: the same samples at 2.3 times too low a rate (a header that lies).

The right takes are heard first, as a render hears mostly right takes, so each voice's pace is
known when the faults come. Then the cost in a render (unless ``--no-render``): a few minutes of
a corpus book through ``convert`` (the whole ``voxd render``) with the read-back and without,
with Piper on this CPU,
and with an engine whose time goes elsewhere (eSpeak NG paced to N x real time, asleep for the
rest, as a GPU or a speech server leaves the CPU free): there the hearing runs beside the
speaking, and the render is slower only where the recogniser cannot keep up.

Reported per engine: the share of right takes failed (goal: at most
1 %), the share of each
fault caught (goal: at least 99 %), why each miss and each false failure happened, and the
cost: audio seconds read back per second of one CPU core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import report  # noqa: E402  (bench/report.py)

CORPUS = ROOT.parent / "shared" / "corpus"
BOOKS = ("p-g-wodehouse_love-among-the-chickens.epub", "idpf-childrens-literature.epub",
         "walt-whitman_leaves-of-grass.epub")
RESULTS = ROOT / "bench" / "results" / "verify.json"
FAULTS = ("other", "repeat", "babble", "cut", "skip", "silence", "noise", "rate")


def corpus_chunks(count: int, settings, smoke_dir: Path | None) -> list:
    """``count`` chunks spread over the books (every few chunks, skipping titles), or the smoke book's."""
    from voxd.ingest import read_book
    from voxd.narration.plan import speech_chunks

    books = [report.smoke_book(smoke_dir / "smoke.epub")] if smoke_dir else [CORPUS / b for b in BOOKS
                                                                            if (CORPUS / b).is_file()]
    if not books:
        raise SystemExit(f"no books: {CORPUS} is missing (use --smoke)")
    chosen: list = []
    per_book = -(-count // len(books))
    for path in books:
        chunks = [c for c in speech_chunks(read_book(path), settings).chunks if c.index > 0 and len(c.text) >= 20]
        step = max(1, len(chunks) // per_book)
        chosen += chunks[::step][:per_book]
    return chosen[:count]


def faulty(kind: str, i: int, takes: list[np.ndarray], rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    wave = takes[i]
    other = takes[(i + len(takes) // 2) % len(takes)] if len(takes) > 1 else wave[::-1].copy()
    n = wave.size
    if kind == "other":
        return other, rate
    if kind == "repeat":
        tail = wave[2 * n // 3:]
        return np.concatenate([wave, tail, tail]), rate
    if kind == "babble":
        return np.concatenate([wave, np.zeros(rate // 3, np.float32), other]), rate
    if kind == "cut":
        return wave[: n // 2], rate
    if kind == "skip":
        return np.concatenate([wave[: n // 3], wave[2 * n // 3:]]), rate
    if kind == "silence":
        return np.zeros(n, np.float32), rate
    if kind == "noise":
        level = float(np.sqrt(np.mean(wave ** 2))) or 0.1
        return np.clip(rng.normal(0, level, n), -1, 1).astype(np.float32), rate
    if kind == "rate":
        return wave, int(rate / 2.3)
    raise ValueError(kind)


def measure(engine_name: str, chunks: list, settings, listener, faults: tuple[str, ...]) -> dict:
    from voxd.tts.base import Utterance
    from voxd.tts.registry import load_engine

    engine = load_engine(settings.model_copy(update={"engine": engine_name}))
    result = engine.synthesize([Utterance(c.text, "default", c.language) for c in chunks])
    engine.close()
    takes, rate = result.waveforms, result.sample_rate
    rng = np.random.default_rng(7)
    right, heard_seconds, busy = [], 0.0, 0.0
    for c, wave in zip(chunks, takes):
        started = time.process_time()
        verdict = listener.hear(c.text, wave, rate, c.language, engine_name)
        busy += time.process_time() - started
        heard_seconds += wave.size / rate
        right.append(verdict)
    false = [{"text": c.text, "why": v.why, "heard": v.score.heard if v.score else None}
             for c, v in zip(chunks, right) if v.failed]
    caught: dict[str, dict] = {}
    for kind in faults:
        verdicts = []
        for i, c in enumerate(chunks):
            wave, at = faulty(kind, i, takes, rate, rng)
            verdicts.append(listener.hear(c.text, wave, at, c.language, engine_name))
        missed = [{"text": c.text, "heard": v.score.heard if v.score else None,
                   "error": round(v.score.error, 3) if v.score else None}
                  for c, v in zip(chunks, verdicts) if not v.failed]
        caught[kind] = {"takes": len(verdicts), "caught": len(verdicts) - len(missed),
                        "share": round((len(verdicts) - len(missed)) / len(verdicts), 4), "missed": missed}
    errors = sorted(v.score.error for v in right if v.score)
    words = sorted(v.score.word_error for v in right if v.score)
    return {
        "engine": engine_name, "chunks": len(chunks), "audio_seconds": round(heard_seconds, 1),
        "false_failures": len(false), "false_failure_share": round(len(false) / len(chunks), 4),
        "false": false, "right_error_median": round(errors[len(errors) // 2], 3) if errors else None,
        "right_error_max": round(errors[-1], 3) if errors else None,
        "right_word_error_median": round(words[len(words) // 2], 3) if words else None,
        "right_word_error_mean": round(sum(words) / len(words), 3) if words else None, "faults": caught,
        "audio_per_cpu_second": round(heard_seconds / busy, 2) if busy else None,
    }


def render_cost(book: Path, folder: Path, settings, listener, engine_name: str, speed: float) -> dict:
    """One render of ``book`` without the read-back and one with it, each into a fresh cache."""
    from pipeline import _Waiting  # bench/pipeline.py: an engine paced to ``speed``, asleep for the rest
    from voxd.convert import convert
    from voxd.tts.registry import load_engine

    seconds = {}
    for name, hearing in (("off", None), ("all", listener)):
        run = settings.model_copy(update={"engine": engine_name, "state_dir": folder / f"{engine_name}-{speed}-{name}"})
        engine = load_engine(run)
        paced = _Waiting(engine, speed=speed) if speed else engine
        started = time.perf_counter()
        outcome = convert(book, lambda b, run=run: run.outbox_dir / "book.m4b", run, paced, listener=hearing)
        seconds[name] = time.perf_counter() - started
        engine.close()
    return {"engine": engine_name, "paced_x_real_time": speed or None, "audio_seconds": round(outcome.duration, 1),
            "seconds_off": round(seconds["off"], 2), "seconds_all": round(seconds["all"], 2),
            "ratio": round(seconds["all"] / seconds["off"], 3),
            "checked": outcome.progress.checked, "flagged": len(outcome.progress.flags),
            "not_checked": outcome.progress.unchecked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=40, help="chunks per engine (default 40)")
    parser.add_argument("--engines", nargs="+", default=["piper", "espeak"], choices=("piper", "espeak"))
    parser.add_argument("--model", default="tiny.en", help="the Whisper model (default tiny.en)")
    parser.add_argument("--smoke", action="store_true", help="the smoke book, Piper, three faults: seconds")
    parser.add_argument("--no-render", action="store_true", help="skip the cost in a render")
    parser.add_argument("--minutes", type=float, default=3.0, help="speech in the render-cost book (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from voxd.config import Settings
    from voxd.verify.listener import listener_for

    with tempfile.TemporaryDirectory(prefix="voxd-bench-verify-") as tmp:
        folder = Path(tmp)
        settings = Settings(state_dir=folder / "state", engine="piper", verify={"model": args.model, "device": "cpu"},
                            piper={"noise_scale": 0.667, "noise_w": 0.8})
        listener = listener_for(settings)
        if listener is None or listener.recogniser is None:
            raise SystemExit(f"no recogniser: {listener.away if listener else 'mode is off'}")
        faults = ("other", "cut", "silence") if args.smoke else FAULTS
        engines = ["piper"] if args.smoke else args.engines
        chunks = corpus_chunks(3 if args.smoke else args.chunks, settings, folder if args.smoke else None)
        rows = []
        for name in engines:
            row = measure(name, chunks, settings, listener, faults)
            rows.append(row)
            print(f"{name}: {row['chunks']} chunks, {row['audio_seconds']:.0f} s of speech; right takes failed: "
                  f"{row['false_failures']} ({row['false_failure_share']:.1%}); letter error of right takes: median "
                  f"{row['right_error_median']}, max {row['right_error_max']}; word error: mean "
                  f"{row['right_word_error_mean']}; read back at {row['audio_per_cpu_second']}x real time per core")
            for kind, f in row["faults"].items():
                print(f"  {kind:8} caught {f['caught']}/{f['takes']} ({f['share']:.0%})")
        costs = []
        if not args.no_render:
            from piper_engine import cut_book  # bench/piper_engine.py

            book = report.smoke_book(folder / "cost.epub") if args.smoke else cut_book(
                CORPUS / BOOKS[0], args.minutes, folder)
            runs = [("piper", 0.0)] if args.smoke else [("piper", 0.0), ("espeak", 5.0), ("espeak", 20.0)]
            for name, speed in runs:
                cost = render_cost(book, folder, settings, listener, name, speed)
                costs.append(cost)
                pace = f" paced to {speed:g}x" if speed else ""
                print(f"render, {name}{pace}: {cost['seconds_off']:.1f} s without the read-back, "
                      f"{cost['seconds_all']:.1f} s with it ({cost['ratio']:.2f}x), {cost['checked']} chunks heard "
                      f"right, {cost['flagged']} flagged")
    report.write(args.out, {"benchmark": "verify", "machine": report.machine(), "model": args.model,
                            "smoke": args.smoke, "engines": rows, "render": costs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
