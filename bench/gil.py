"""Benchmark what AAC encoding beside it costs a GPU-style decode loop: in a thread, in a process.

    .venv/bin/python bench/gil.py
    .venv/bin/python bench/gil.py --seconds 240 --repeat 3
    .venv/bin/python bench/gil.py --smoke --out /tmp/g.json   # 5 s of audio, each case once: seconds

The loop stands in for the render of Qwen3-TTS on a GPU: Python glue around tiny
torch ops, each of which lets go of the GIL while it runs, as a kernel launch
does (an eager decode makes about a thousand launches per audio frame). The
encoder is voxd's own M4bWriter on a gliding synthetic voice. Three runs of the
same fixed amount of work, two CPU threads' worth in all: the loop alone, the
loop beside the encoder in a thread, the loop beside it in a spawned process
(how voxd runs assembly). Reported: the loop's speed in each case relative to
alone, and the encoder's x real time. This is why assembly is a process. Results
go to bench/results/gil.json.

``--smoke`` encodes 5 seconds of audio in each case, once, and writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine, write  # noqa: E402 - bench/report.py: sys.path[0] is bench/ when run as a script

RESULTS = ROOT / "bench" / "results" / "gil.json"
RATE = 24000


def voice(seconds: float):
    """A gliding voice with harmonics and a syllable rhythm."""
    import numpy as np

    t = np.arange(round(seconds * RATE)) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    return (0.25 * x / np.abs(x).max()).astype(np.float32)


def encode(folder: str) -> None:
    import numpy as np

    from voxd.audio.m4b import M4bWriter
    from voxd.book import Metadata

    pcm = np.load(Path(folder) / "voice.npy")
    with M4bWriter(Path(folder) / "gil.m4b", sample_rate=RATE, metadata=Metadata(title="GIL")) as writer:
        writer.start_chapter("Only")
        for start in range(0, pcm.size, RATE):  # a second at a time, as chunks arrive
            writer.write(pcm[start : start + RATE])


def launch_round(x, w):
    """One round of the stand-in decode loop: 50 tiny torch ops with Python between them.
    Each op lets go of the GIL while it runs, as a kernel launch does."""
    import torch

    for _ in range(50):
        x = torch.nn.functional.silu(x @ w) + x
    return x


def launches(stop: threading.Event, counts: list[int]) -> None:
    import torch

    x, w = torch.zeros(1, 64), torch.zeros(64, 64)
    n = 0
    while not stop.is_set():
        x = launch_round(x, w)
        n += 1
    counts.append(n)


def beside(work) -> tuple[float, float]:
    """(loop rounds per second, seconds) while ``work()`` runs."""
    stop, counts = threading.Event(), []
    loop = threading.Thread(target=launches, args=(stop, counts))
    loop.start()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    stop.set()
    loop.join()
    return counts[0] / seconds, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="audio to encode per run")
    parser.add_argument("--repeat", type=int, default=2, help="run each case this many times; the median counts")
    parser.add_argument("--smoke", action="store_true", help="5 s of audio, each case once: seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.repeat = 5.0, 1

    import torch

    torch.set_num_threads(1)
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        def in_thread() -> None:
            worker = threading.Thread(target=encode, args=(folder,))
            worker.start()
            worker.join()

        def in_process() -> None:
            child = ctx.Process(target=encode, args=(folder,))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"the encoder process failed (exit code {child.exitcode})")

        import numpy as np

        np.save(Path(folder) / "voice.npy", voice(args.seconds))
        started = time.perf_counter()
        encode(folder)
        encode_alone = time.perf_counter() - started
        runs: dict[str, list[tuple[float, float]]] = {"alone": [], "thread": [], "process": []}
        for _ in range(args.repeat):
            runs["alone"].append(beside(lambda: time.sleep(encode_alone)))
            runs["thread"].append(beside(in_thread))
            runs["process"].append(beside(in_process))

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    alone = median([rate for rate, _ in runs["alone"]])
    report = {
        **machine(),
        "torch": torch.__version__,
        "audio_seconds": args.seconds,
        "repeat": args.repeat,
        "smoke": args.smoke,
        "encoder_alone_x_real_time": round(args.seconds / encode_alone, 1),
        "loop_rounds_per_second_alone": round(alone),
    }
    print(f"encoder alone: {args.seconds / encode_alone:.0f}x real time; loop alone: {alone:.0f} rounds/s")
    for case in ("thread", "process"):
        rate = median([r for r, _ in runs[case]])
        seconds = median([s for _, s in runs[case]])
        report[f"loop_speed_beside_encoder_{case}"] = round(rate / alone, 3)
        report[f"encoder_{case}_x_real_time"] = round(args.seconds / seconds, 1)
        print(f"encoder in a {case:<7}: loop at {rate / alone:5.0%} of its speed alone; "
              f"encoder {args.seconds / seconds:.0f}x real time"
              + (" (with process start-up)" if case == "process" else ""))
    write(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
