"""Benchmark the pipeline around the engine: one book through `voxd render` vs the engine alone.

    .venv/bin/python bench/pipeline.py                              # eSpeak, a book from the corpus
    .venv/bin/python bench/pipeline.py --book BOOK.epub --repeat 3
    .venv/bin/python bench/pipeline.py --engine qwen --model DIR    # Qwen3-TTS (e.g. the tiny checkpoint)
    .venv/bin/python bench/pipeline.py --full-size                  # GPU: random weights, real 1.7B dimensions
    .venv/bin/python bench/pipeline.py --speed 10                   # eSpeak paced to 10x real time, off the CPU
    .venv/bin/python bench/pipeline.py --speed 10 --launches        # ... the pace spent as a GPU decode loop spends it
    .venv/bin/python bench/pipeline.py --smoke --out /tmp/p.json    # seconds: a two-chapter book, eSpeak
    .venv/bin/python bench/pipeline.py --smoke --full-size --out /tmp/p.json  # ... --full-size's path, tiny model, CPU

Two timings of the same book with the same, already loaded engine, each into a
fresh chunk cache:

* pipeline: ``voxd.convert.convert`` in-process, which is what ``voxd render``
  runs: ingest, text planning, the render loop, assembly (loudness, AAC
  encoding, the .m4b with chapters and tags). Its phases are timed too; assembly
  runs in a process beside the render, so only what is left of it when the
  render ends (``finish``) adds to the wall time.
* engine alone: the same chunks through ``voxd.render.render`` and nothing else.

The ratio of the two wall times is what the pipeline costs on top of speech
synthesis (1.0 = nothing). With eSpeak, which speaks at hundreds of times real
time, the overhead is as visible as it gets; with Qwen3-TTS on a GPU it should
vanish. The default book is The Waste Land from ../shared/corpus (the sample
book when the corpus is missing). Results go to bench/results/pipeline.json.

``--full-size`` builds bench/batching.py's random-weight checkpoint with the real
1.7B dimensions and renders with it; as there, random weights do not know when
to stop, so each item is made to last the frames its text predicts (``--lengths
text``, also usable with ``--model``). The resident memory of the process is
sampled through the pipeline run: host memory that climbs with varying batch
shapes over a long book shows there.

``--smoke`` is the smallest run that still goes through all of it: a book of two
short chapters built on the spot, one run. With ``--full-size`` (or ``--engine
qwen`` and no ``--model``) the tests' tiny random-weight checkpoint
(tests/tiny_qwen.py) stands in for the full-size model, on the CPU with one torch
thread and lengths from the text (shortened), so the GPU suite's code path runs
anywhere. Smoke runs write only to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine, smoke_book, write  # noqa: E402 - bench/report.py
from rss import status  # noqa: E402 - bench/rss.py: sys.path[0] is bench/ when run as a script

RESULTS = ROOT / "bench" / "results" / "pipeline.json"
CORPUS_BOOK = ROOT.parent / "shared" / "corpus" / "idpf-wasteland.epub"


class Phases:
    """Wall time of each phase of convert(), by wrapping what it calls.

    ``finish`` is the assembly left once the render is done: the wait for the
    assembler process to encode the last chapters and close the file (the rest
    of assembly overlaps the render, in another process).
    """

    NAMES = ("read_speech", "render")  # the names convert() looks up in its module (read_speech: reading and chunking)

    def __init__(self) -> None:
        self.seconds = {name: 0.0 for name in (*self.NAMES, "finish")}

    def __enter__(self) -> Phases:
        import voxd.convert as convert_module
        from voxd.audio.assembler import Assembler

        self.module = convert_module
        missing = [name for name in self.NAMES if not callable(getattr(convert_module, name, None))]
        if missing:
            raise SystemExit(f"voxd.convert no longer calls {', '.join(missing)}: bench/pipeline.py's Phases.NAMES "
                             "must follow what convert() calls")
        self.saved = {name: getattr(convert_module, name) for name in self.NAMES}
        for name, real in self.saved.items():
            setattr(convert_module, name, self._timed(name, real))
        self.finish = Assembler.finish
        Assembler.finish = self._timed("finish", Assembler.finish)
        return self

    def _timed(self, name, real):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def __exit__(self, *exc) -> None:
        from voxd.audio.assembler import Assembler

        for name, real in self.saved.items():
            setattr(self.module, name, real)
        Assembler.finish = self.finish


class _Waiting:
    """An engine whose time goes elsewhere than this CPU, as a GPU engine's does.

    It waits, asleep, ``per_chunk`` seconds per chunk, or with ``speed`` until its
    batch took as long as a ``speed``-times-real-time engine would need for the
    audio it made. Sleeping leaves the CPU to the pipeline, as a GPU does.
    """

    def __init__(self, engine, *, per_chunk: float = 0.0, speed: float = 0.0, launches: bool = False) -> None:
        self.engine = engine
        self.per_chunk = per_chunk
        self.speed = speed
        self.wait = _launching if launches else time.sleep

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def synthesize(self, batch, **kwargs):
        started = time.perf_counter()
        self.wait(self.per_chunk * len(batch))
        result = self.engine.synthesize(batch, **kwargs)
        if self.speed > 0:
            audio = sum(w.size for w in result.waveforms) / result.sample_rate
            self.wait(max(0.0, audio / self.speed - (time.perf_counter() - started)))
        return result


def _launching(seconds: float) -> None:
    """Do what a GPU decode loop does in ``seconds`` when it has the machine to itself:
    bench/gil.py's rounds of tiny torch ops (an eager Qwen3-TTS decode makes about a
    thousand kernel launches per audio frame). A fixed amount of work, so whatever
    else wants the GIL makes it take longer."""
    import torch

    from gil import launch_round  # bench/gil.py: sys.path[0] is bench/ when run as a script

    global _LAUNCH_RATE
    x, w = torch.zeros(1, 64), torch.zeros(64, 64)
    if _LAUNCH_RATE is None:  # rounds per second, alone: measured once
        started, rounds = time.perf_counter(), 0
        while time.perf_counter() - started < 1.0:
            x = launch_round(x, w)
            rounds += 1
        _LAUNCH_RATE = rounds / (time.perf_counter() - started)
    for _ in range(round(seconds * _LAUNCH_RATE)):
        x = launch_round(x, w)


_LAUNCH_RATE: float | None = None


class _RssSampler:
    """This process's resident memory every ``interval`` seconds, in a thread: growth over a run."""

    def __init__(self, interval: float = 0.5) -> None:
        import threading

        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _RssSampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            rss = status("VmRSS")
            if rss is not None:
                self.samples.append((time.perf_counter() - self._started, rss))
            if self._stop.wait(self.interval):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {}
        values = [rss for _, rss in self.samples]
        quarters = [values[min(len(values) - 1, len(values) * q // 4)] for q in (1, 2, 3)]
        return {"start_mib": round(values[0] / 2**20, 1),
                "quarters_mib": [round(v / 2**20, 1) for v in quarters],  # a climb, or a plateau?
                "peak_mib": round(max(values) / 2**20, 1),
                "end_mib": round(values[-1] / 2**20, 1), "samples": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--book", type=Path, help=f"EPUB, PDF or manifest (default: {CORPUS_BOOK.name})")
    parser.add_argument("--engine", choices=("espeak", "qwen"), default="espeak")
    parser.add_argument("--model", help="with --engine qwen: checkpoint directory or hub id")
    parser.add_argument("--batch-size", type=int, help="chunks per batch (default: what voxd would choose)")
    parser.add_argument("--no-check-durations", action="store_true",
                        help="qwen: do not retake chunks of odd length (random weights have no sense of it)")
    parser.add_argument("--repeat", type=int, default=1, help="run both this many times; the fastest counts")
    parser.add_argument("--threads", type=int, help="torch CPU threads (qwen)")
    parser.add_argument("--wait-per-chunk", type=float, default=0.0, metavar="SECONDS",
                        help="the engine also waits this long per chunk, off the CPU: stands in for an engine "
                             "whose time goes to a GPU, so the CPU left for the pipeline is as on a GPU box")
    parser.add_argument("--speed", type=float, default=0.0, metavar="X",
                        help="pace the engine, waiting off the CPU, to X times real time (a GPU engine's pace: "
                             "Qwen3-TTS batched on one card is roughly 2-20x)")
    parser.add_argument("--launches", action="store_true",
                        help="with --speed or --wait-per-chunk: spend the wait launching tiny torch ops, holding "
                             "the GIL between them as a GPU decode loop does, instead of sleeping")
    parser.add_argument("--full-size", action="store_true",
                        help="Qwen3-TTS with random weights in the real 1.7B dimensions (bench/batching.py's)")
    parser.add_argument("--talker-layers", type=int, help="with --full-size: fewer talker layers (a smoke test)")
    parser.add_argument("--lengths", choices=("text", "natural"),
                        help="qwen: items stop where their text predicts (default with --full-size) or by "
                             "themselves (default otherwise)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds, not minutes: a two-chapter book built here, one run; with --full-size or "
                             "--engine qwen, the tiny random-weight checkpoint on the CPU instead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.full_size:
        args.engine = "qwen"
    if args.smoke:
        args.repeat = 1
        if args.engine == "qwen":
            args.threads = args.threads or 1
            args.no_check_durations = True  # random weights have no sense of a chunk's length
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    tmp = Path(tempfile.mkdtemp(prefix="voxd-bench-pipeline-"))
    try:
        return _run(args, tmp)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)  # a full-size checkpoint is gigabytes


def _run(args, tmp: Path) -> int:
    from voxd.cache import ChunkCache
    from voxd.config import Settings
    from voxd.convert import convert
    from voxd.ingest import read_book
    from voxd.narration.plan import speech_chunks
    from voxd.render import Check, render, with_keys
    from voxd.samples import build_sample
    from voxd.tts.base import Utterance
    from voxd.tts.gpu import batch_size_for
    from voxd.tts.registry import load_engine

    length_scale, device = 1.0, None
    if args.smoke and args.engine == "qwen" and (args.full_size or not args.model):
        import batching  # bench/batching.py: sys.path[0] is bench/ when run as a script

        print("--smoke: the tiny random-weight checkpoint (tests/tiny_qwen.py) on the CPU", flush=True)
        args.model = str(batching.tiny_qwen().build_tiny_checkpoint(tmp / "Qwen3-TTS-tiny-CustomVoice"))
        device = "cpu"
        length_scale = 0.1  # a tenth of the frames the text predicts: the same calls, a tenth of the time
    elif args.full_size:
        import torch

        import batching  # bench/batching.py: sys.path[0] is bench/ when run as a script

        cuda = torch.cuda.is_available()
        args.model = str(tmp / "Qwen3-TTS-full-size-random-CustomVoice")
        print(f"building the full-size random model ({'cuda' if cuda else 'cpu'})...", flush=True)
        batching.build_full_size(Path(args.model), "cuda:0" if cuda else "cpu", torch.bfloat16, args.talker_layers)
    if args.book:
        book = args.book
    elif args.smoke:
        book = smoke_book(tmp / "smoke.epub")
    else:
        book = CORPUS_BOOK if CORPUS_BOOK.is_file() else build_sample(tmp / "alice.epub")
    values: dict = {"engine": args.engine, "state_dir": tmp / "state", "write_sidecars": True}
    if args.engine == "qwen":
        qwen: dict = {"check_durations": not args.no_check_durations}
        if args.model:
            qwen["custom_voice_model"] = args.model
        if args.batch_size:
            qwen["batch_size"] = args.batch_size
        if device:
            qwen["device"] = device
        values["qwen"] = qwen
    elif args.batch_size:
        values["espeak"] = {"batch_size": args.batch_size}
    settings = Settings(**values)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    engine = load_engine(settings)
    lengths = args.lengths or ("text" if args.full_size else "natural")
    if args.engine == "qwen" and lengths == "text":
        import batching

        presets = getattr(engine, "_engines", {}).get("preset", engine)  # the CustomVoice engine under the router
        batching.TextLengths(presets, length_scale)  # hooks its synthesize and the model's EOS
    if args.wait_per_chunk > 0 or args.speed > 0:
        engine = _Waiting(engine, per_chunk=args.wait_per_chunk, speed=args.speed, launches=args.launches)
        if args.launches:
            import torch

            torch.set_num_threads(args.threads or 1)
    started = time.perf_counter()
    engine.synthesize([Utterance("A few words to warm up.", "default", "en")])  # load the model
    load_seconds = time.perf_counter() - started
    batch_size = batch_size_for(settings).size
    check = Check(durations=settings.qwen.check_durations) if settings.engine == "qwen" else Check()

    # The chunks convert() renders: planned by the same call, keyed the same way.
    parsed = read_book(book)
    chunks = with_keys(speech_chunks(parsed, settings).chunks, engine.model_id, engine.voice_identity)

    runs = []
    for n in range(args.repeat):
        # The engine alone: the render loop into a fresh cache, nothing else.
        t0 = time.perf_counter()
        alone = render(chunks, engine, ChunkCache(tmp / f"alone-{n}"), batch_size=batch_size, check=check)
        engine_wall = time.perf_counter() - t0
        # The pipeline: what `voxd render BOOK -o OUT` runs, into a fresh cache.
        run_settings = settings.model_copy(update={"cache_dir": tmp / f"pipeline-{n}"})
        with Phases() as phases, _RssSampler() as rss:
            t0 = time.perf_counter()
            outcome = convert(book, lambda b, n=n: tmp / f"out-{n}.m4b", run_settings, engine)
            pipeline_wall = time.perf_counter() - t0
        runs.append({
            "pipeline_seconds": round(pipeline_wall, 3),
            "engine_alone_seconds": round(engine_wall, 3),
            "ratio": round(pipeline_wall / engine_wall, 3),
            "overhead_seconds": round(pipeline_wall - engine_wall, 3),
            "phases_seconds": {k: round(v, 3) for k, v in phases.seconds.items()},
            "engine_seconds_in_pipeline": round(outcome.progress.render_seconds, 3),
            "engine_seconds_alone": round(alone.render_seconds, 3),
            "audio_seconds": round(outcome.duration, 1),
            "m4b_bytes": (tmp / f"out-{n}.m4b").stat().st_size,
            "pipeline_rss": rss.summary(),
        })
        r = runs[-1]
        print(f"run {n + 1}: pipeline {pipeline_wall:.2f} s, engine alone {engine_wall:.2f} s, "
              f"ratio {r['ratio']:.3f} (phases: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in r["phases_seconds"].items()) + ")", flush=True)
    engine.close()

    best = min(runs, key=lambda r: r["pipeline_seconds"])
    report = {
        **machine(),
        "book": str(book),
        "title": parsed.metadata.title,
        "chapters": len(parsed.chapters),
        "chunks": len({c.key for c in chunks}),
        "characters": sum(len(c.text) for c in chunks),
        "engine": args.engine,
        "wait_per_chunk_seconds": args.wait_per_chunk,
        "engine_speed": args.speed,
        "engine_waits_launching": args.launches,
        "full_size": args.full_size,
        "smoke": args.smoke,
        "lengths": lengths if args.engine == "qwen" else None,
        "length_scale": length_scale if args.engine == "qwen" and lengths == "text" else None,
        "model_id": engine.model_id,
        "batch_size": batch_size,
        "engine_load_seconds": round(load_seconds, 2),
        "best": best,
        "runs": runs,
    }
    print(f"{parsed.metadata.title}: {report['chunks']} chunks, {best['audio_seconds'] / 60:.1f} min of audio; "
          f"pipeline / engine alone = {best['pipeline_seconds']:.2f} s / {best['engine_alone_seconds']:.2f} s "
          f"= {best['ratio']:.3f} ({best['overhead_seconds']:.2f} s of ingest, planning, cache and assembly)")
    write(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
