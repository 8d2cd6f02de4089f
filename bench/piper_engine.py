"""Benchmark Piper on this CPU: x real time with 1 and 2 workers, memory, pace, and `voxd render` around it.

    .venv/bin/python bench/piper_engine.py                      # a corpus book's first chapters (about 15 minutes)
    .venv/bin/python bench/piper_engine.py --book BOOK --minutes 5
    .venv/bin/python bench/piper_engine.py --smoke --out /tmp/piper.json   # a two-chapter book: seconds

Three measurements on the same chunks (planned exactly as voxd plans them), with the voice the
test extra installs (en_US-joe-medium) unless ``--voice`` names another:

* ``engine``: :class:`voxd.tts.piper.PiperEngine` alone, batches as the render sizes them, for each
  worker count: audio seconds per wall second and per CPU second, and the process's peak RSS;
* ``pace``: words per minute of speech at each ``length_scale`` (pauses between chunks not
  counted), the figure a narration pace is chosen by (audiobooks are read at about 150-160);
* ``pipeline``: the whole ``voxd render`` (read, plan, render, assemble, .m4b) against the
  engine alone on the same chunks, both with the most workers: the pipeline's cost.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import report  # noqa: E402  (bench/report.py)
import rss  # noqa: E402

CORPUS_BOOK = ROOT.parent / "shared" / "corpus" / "p-g-wodehouse_love-among-the-chickens.epub"
RESULTS = ROOT / "bench" / "results" / "piper.json"


def cut_book(source: Path, minutes: float, folder: Path) -> Path:
    """The first chapters of ``source`` holding about ``minutes`` of speech, as an EPUB."""
    from voxd.ingest import read_book
    from voxd.samples import build_epub
    from voxd.tts.base import speech_seconds

    book = read_book(source)
    chapters, total = [], 0.0
    for chapter in book.chapters:
        kept = []
        for paragraph in chapter.paragraphs:
            kept.append(paragraph)
            total += speech_seconds(paragraph)
            if total >= minutes * 60:
                break
        chapters.append((chapter.title, kept))
        if total >= minutes * 60:
            break
    return build_epub(folder / "cut.epub", title=book.metadata.title, authors=book.metadata.authors,
                      chapters=chapters, language="en")


def settings_for(state: Path, voice: str, workers: int, length_scale: float = 1.1):
    from voxd.config import Settings

    return Settings(engine="piper", state_dir=state, outbox=state / "outbox", inbox=state / "inbox",
                    piper={"voice": voice, "workers": workers, "length_scale": length_scale})


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def engine_alone(chunks, settings) -> dict:
    """Piper by itself over ``chunks``, in the batches the render would hand it."""
    from voxd.tts.base import Utterance
    from voxd.tts.gpu import batch_size_for
    from voxd.tts.registry import load_engine

    rss.reset_peak()
    engine = load_engine(settings)
    size = batch_size_for(settings).size
    texts = [Utterance(c.text, c.voice, c.language) for c in chunks]
    engine.synthesize(texts[:1])  # the first call pays for the phonemizer's start
    started, cpu = time.perf_counter(), cpu_seconds()
    audio = 0.0
    for i in range(0, len(texts), size):
        result = engine.synthesize(texts[i:i + size])
        audio += sum(len(w) for w in result.waveforms) / result.sample_rate
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    engine.close()
    return {"workers": settings.piper.workers, "batch_size": size, "chunks": len(texts),
            "audio_seconds": round(audio, 1), "wall_seconds": round(wall, 2),
            "x_real_time": round(audio / wall, 2), "audio_per_cpu_second": round(audio / cpu, 2),
            "peak_rss_mb": round((rss.status("VmHWM") or 0) / 2**20)}


def pace(chunks, state: Path, voice: str, scales: list[float]) -> list[dict]:
    from voxd.tts.base import Utterance
    from voxd.tts.registry import load_engine

    words = sum(len(c.text.split()) for c in chunks)
    rows = []
    for scale in scales:
        engine = load_engine(settings_for(state, voice, 0, scale))
        result = engine.synthesize([Utterance(c.text, c.voice, c.language) for c in chunks])
        engine.close()
        seconds = sum(len(w) for w in result.waveforms) / result.sample_rate
        rows.append({"length_scale": scale, "words": words, "audio_seconds": round(seconds, 1),
                     "words_per_minute": round(words / seconds * 60, 1)})
    return rows


def pipeline(book: Path, settings, alone: dict) -> dict:
    """``voxd render`` (convert, a fresh cache) on the book, against the engine alone."""
    from voxd.convert import convert
    from voxd.tts.registry import load_engine

    engine = load_engine(settings)
    started = time.perf_counter()
    outcome = convert(book, lambda b: settings.outbox_dir / "book.m4b", settings, engine)
    wall = time.perf_counter() - started
    engine.close()
    ratio = wall / alone["wall_seconds"]
    return {"render_seconds": round(wall, 2), "engine_alone_seconds": alone["wall_seconds"],
            "ratio": round(ratio, 3), "book_seconds": round(outcome.duration, 1),
            "x_real_time": round(outcome.duration / wall, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--book", type=Path, help=f"EPUB, PDF or manifest (default: {CORPUS_BOOK.name})")
    parser.add_argument("--minutes", type=float, default=15.0, help="speech to take from the book (default 15)")
    parser.add_argument("--voice", default="", help="a Piper voice (.onnx path or name; default: the installed one)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.1, 1.2, 1.25],
                        help="length_scale values for the pace table")
    parser.add_argument("--smoke", action="store_true", help="a two-chapter book, one pace: seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from voxd.ingest import read_book
    from voxd.narration.plan import speech_chunks

    with tempfile.TemporaryDirectory(prefix="voxd-bench-piper-") as tmp:
        folder = Path(tmp)
        if args.smoke:
            book = report.smoke_book(folder / "smoke.epub")
            args.scales = [1.1]
        else:
            book = cut_book(args.book or CORPUS_BOOK, args.minutes, folder)
        base = settings_for(folder / "state", args.voice, max(args.workers))
        chunks = speech_chunks(read_book(book), base).chunks
        print(f"{book.name}: {len(chunks)} chunks")
        engine = []
        for workers in args.workers:
            row = engine_alone(chunks, settings_for(folder / "state", args.voice, workers))
            engine.append(row)
            print(f"  {workers} worker(s): {row['x_real_time']:.1f}x real time "
                  f"({row['audio_per_cpu_second']:.1f} audio s per CPU s), peak RSS {row['peak_rss_mb']} MB")
        paces = pace(chunks[: min(len(chunks), 30)], folder / "state", args.voice, args.scales)
        for row in paces:
            print(f"  length_scale {row['length_scale']}: {row['words_per_minute']:.0f} words per minute")
        whole = pipeline(book, base, engine[-1])
        print(f"  voxd render: {whole['render_seconds']:.1f} s for {whole['book_seconds']:.0f} s of audio "
              f"({whole['x_real_time']:.1f}x); {whole['ratio']:.3f}x the engine alone")
    source = "smoke" if args.smoke else str(args.book or CORPUS_BOOK)
    report.write(args.out, {"benchmark": "piper", "machine": report.machine(), "book": source,
                            "minutes": None if args.smoke else args.minutes, "chunks": len(chunks),
                            "engine": engine, "pace": paces, "pipeline": whole})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
