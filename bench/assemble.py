"""Benchmark voxd.audio.assembly.assemble: hours of audio from the chunk cache to a chaptered .m4b.

    .venv/bin/python bench/assemble.py                 # 1, 4 and 16 hours
    .venv/bin/python bench/assemble.py --hours 1 4     # just those
    .venv/bin/python bench/assemble.py --quick         # 0.1 h
    .venv/bin/python bench/assemble.py --smoke --out /tmp/a.json   # about a minute of audio in 3 chapters: seconds
    .venv/bin/python bench/assemble.py --no-loudness   # without the loudness pass

For each length, a fresh child process fills a chunk cache with synthetic speech (a
gliding voice with harmonics and breath, in syllables and phrases, 24 kHz mono,
chunks of 4-20 s at levels 12 dB apart), then times ``assemble`` over a book of 20
chapters made of those chunks: both passes (loudness measurement, then gain,
limiter and AAC encoding), the muxer, tags and sidecars, exactly as the daemon
runs them. Chunks repeat (a pool of 64), so the cache stays small while the
encoder sees hours of audio.

Reported per length: wall time of ``assemble``, audio seconds per wall second (x
real time), peak RSS while assembling (the kernel's high-water mark, reset after
the cache is filled) and for the whole child, and the .m4b's size. Results go to
bench/results/assemble.json.

``--smoke``: 0.015 hours in 3 chapters from a pool of 6 utterances, one child, the
same calls; it writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rss import reset_peak, status  # bench/rss.py: sys.path[0] is bench/ when run as a script

RATE = 24000
CHAPTERS = 20
POOL = 64
RESULTS = Path(__file__).resolve().parent / "results" / "assemble.json"


# -- the child: one measurement -------------------------------------------------------------


def _utterance(rng, seconds: float, level: float):
    import numpy as np

    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = rng.uniform(95, 210) * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.3, 1.1) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = np.zeros(n)
    for k in range(1, 16):
        voice += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k**1.2
    voice += 0.08 * rng.standard_normal(n)
    syllables = np.sin(np.pi * rng.uniform(3.5, 5.0) * t) ** 2
    words = (np.sin(2 * np.pi * rng.uniform(0.4, 0.8) * t + rng.uniform(0, 6)) > -0.7).astype(float)
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    out = voice * syllables * words * fade
    return (level * out / np.max(np.abs(out))).astype(np.float32)


def _build(root: Path, hours: float, chapters_count: int = CHAPTERS, pool_size: int = POOL):
    """A cache holding ``pool_size`` synthetic utterances, and a book of ``chapters_count`` chapters that uses them."""
    import numpy as np

    from voxd.book import Book, Chapter, Chunk, Metadata, Pause
    from voxd.cache import ChunkCache

    rng = np.random.default_rng(20261123)
    cache = ChunkCache(root / "cache")
    pool: list[tuple[str, int]] = []
    for n in range(pool_size):
        seconds = float(rng.uniform(4.0, 20.0))
        level = float(10 ** (rng.uniform(-15, -3) / 20))  # peaks from -15 to -3 dBFS
        audio = _utterance(rng, seconds, level)
        key = f"{n:04x}".ljust(64, "0")
        cache.put(key, audio, RATE)
        pool.append((key, audio.size))
        del audio
    total = hours * 3600 * RATE
    per_chapter = total / chapters_count
    pause_of = {Pause.SENTENCE: 0.35, Pause.PARAGRAPH: 0.8, Pause.CHAPTER: 2.0}
    chunks: list[Chunk] = []
    chapters = []
    pick = 0
    for chapter in range(chapters_count):
        chapters.append(Chapter(title=f"Chapter {chapter + 1}", paragraphs=("...",)))
        filled, index = 0.0, 0
        while filled < per_chapter:
            key, size = pool[(pick * 7 + chapter) % pool_size]
            pick += 1
            pause = Pause.PARAGRAPH if index % 3 == 2 else Pause.SENTENCE
            filled += size + pause_of[pause] * RATE
            chunks.append(Chunk(chapter=chapter, index=index, text="...", pause=pause, voice="bench", key=key))
            index += 1
        last = chunks[-1]
        chunks[-1] = Chunk(chapter=last.chapter, index=last.index, text="...", pause=Pause.CHAPTER,
                           voice="bench", key=last.key)
    meta = Metadata(title=f"Bench {hours:g} h", authors=("voxd bench",), language="en")
    return Book(metadata=meta, chapters=tuple(chapters)), chunks, cache


def child(hours: float, loudness: bool, chapters: int = CHAPTERS, pool: int = POOL) -> dict:
    from voxd.audio.assembly import assemble
    from voxd.config import Settings

    with tempfile.TemporaryDirectory(prefix="voxd-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        book, chunks, cache = _build(root, hours, chapters, pool)
        setup = time.perf_counter() - started
        settings = Settings(
            state_dir=root / "state", cache_dir=root / "cache", normalize_loudness=loudness, write_sidecars=True
        )
        output = root / "out" / "book.m4b"
        output.parent.mkdir()
        rss_before = status("VmRSS")
        reset = reset_peak()
        started = time.perf_counter()
        marks, duration = assemble(book, chunks, cache, output, settings, narrator="voxd bench")
        wall = time.perf_counter() - started
        peak = status("VmHWM") if reset else None
        size = output.stat().st_size
    return {
        "hours": hours,
        "loudness": loudness,
        "chapters": len(marks),
        "chunks": len(chunks),
        "audio_seconds": round(duration, 3),
        "wall_seconds": round(wall, 3),
        "x_real_time": round(duration / wall, 2),
        "setup_seconds": round(setup, 3),
        "rss_before_assemble_mb": _mb(rss_before),
        "peak_rss_assemble_mb": _mb(peak),
        "peak_rss_process_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "m4b_mb": _mb(size),
    }


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


# -- the parent: one fresh child per length --------------------------------------------------


def run_child(hours: float, loudness: bool, chapters: int = CHAPTERS, pool: int = POOL) -> dict:
    cmd = [sys.executable, __file__, "--child", str(hours), "--chapters", str(chapters), "--pool", str(pool)]
    if not loudness:
        cmd.append("--no-loudness")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child for {hours} h failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # the largest child so far: this child's own peak when it is the largest
    result["peak_rss_children_mb"] = round(after / 1024, 1) if after > before else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    parser.add_argument("--quick", action="store_true", help="0.1 hours only")
    parser.add_argument("--smoke", action="store_true",
                        help="0.015 hours in 3 chapters from 6 utterances: seconds")
    parser.add_argument("--chapters", type=int, default=CHAPTERS, help=f"chapters in the book (default {CHAPTERS})")
    parser.add_argument("--pool", type=int, default=POOL, help=argparse.SUPPRESS)
    parser.add_argument("--no-loudness", action="store_true", help="skip the loudness pass (normalize_loudness off)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    loudness = not args.no_loudness
    if args.child is not None:
        print(json.dumps(child(args.child, loudness, args.chapters, args.pool)))
        return 0

    hours = [0.1] if args.quick else args.hours
    if args.smoke:
        hours, args.chapters, args.pool = [0.015], 3, 6
    results = []
    print(f"{'hours':>6} {'audio s':>9} {'wall s':>8} {'x real':>7} {'peak RSS':>9} {'process':>8} {'m4b':>7}")
    for h in hours:
        r = run_child(h, loudness, args.chapters, args.pool)
        results.append(r)
        print(
            f"{h:>6g} {r['audio_seconds']:>9.0f} {r['wall_seconds']:>8.1f} {r['x_real_time']:>6.1f}x "
            f"{r['peak_rss_assemble_mb'] or float('nan'):>7.1f}MB {r['peak_rss_process_mb']:>6.1f}MB "
            f"{r['m4b_mb']:>5.1f}MB",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "voxd.audio.assembly.assemble",
        "loudness": loudness,
        "sample_rate": RATE,
        "chapters": args.chapters,
        "smoke": args.smoke,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
