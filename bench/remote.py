"""Benchmark the remote engine: how a book's render scales over 1, 2 and 4 speech servers.

    .venv/bin/python bench/remote.py                          # 1, 2, 4 servers; a 2-hour book of chunks
    .venv/bin/python bench/remote.py --servers 1,2 --chunks 300
    .venv/bin/python bench/remote.py --pipeline BOOK.epub     # also: `voxd render` through 2 servers
                                                              # vs the render alone
    .venv/bin/python bench/remote.py --smoke --out /tmp/r.json  # seconds: 1 and 2 servers, 24 chunks,
                                                              # and --pipeline on a two-chapter book

Each server is a real ``voxd serve`` app (Starlette, uvicorn, the dynamic
batcher) in a process of its own, on loopback, whose engine spends no CPU: like
a GPU running Qwen3-TTS in lockstep, a batch of up to ``--batch`` texts takes as
long as its longest item's audio divided by ``--speed`` (it sleeps), and returns
a synthetic voice of the length the text predicts. So one server's capacity is
about ``batch x speed`` times real time, and what the numbers measure is the
client: the fleet's choice of server, the adaptive window, the sliding window
of requests in the render loop, WAV transfer and checks, the cache.

Reported per fleet size: aggregate audio seconds per wall second, and its ratio
to N times one server's (1.0 = perfectly linear). With ``--pipeline``, the ratio
of ``voxd.convert.convert`` (ingest, render, assembly) to the render alone
through a 2-server fleet: what the pipeline costs on top of the servers.
Results go to bench/results/remote.json.

``--smoke``: fleets of 1 and 2 servers at 50x real time render 24 chunks, then
``--pipeline`` runs on a two-chapter book built on the spot; it writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine, smoke_book, write  # noqa: E402 - bench/report.py: sys.path[0] is bench/ when run as a script

RESULTS = ROOT / "bench" / "results" / "remote.json"
CORPUS_BOOK = ROOT.parent / "shared" / "corpus" / "p-g-wodehouse_love-among-the-chickens.epub"
RATE = 24000


# -- the paced server (run as `bench/remote.py --serve PORT`) ---------------------------------------------


def paced_engine(speed: float):
    import numpy as np

    from voxd.tts.base import Engine, Synthesis, speech_seconds

    class Paced(Engine):
        """A GPU-like engine that costs no CPU: a batch lasts its longest item's audio / speed."""

        lockstep = True
        model_id = f"paced/{speed:g}x"
        default_voice = "default"

        def synthesize(self, batch, *, seed=None):
            lengths = [int(speech_seconds(u.text.strip()) * RATE) for u in batch]
            time.sleep(max(lengths, default=0) / RATE / speed)
            waves = []
            for n in lengths:
                t = np.arange(max(n, 1)) / RATE
                waves.append((0.3 * np.sin(2 * np.pi * 160 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)))
                             .astype(np.float32))
            return Synthesis(waveforms=waves, sample_rate=RATE)

        def voices(self):
            return ["default"]

        def narrator(self, voice, language=None):
            return "paced"

        def close(self):
            pass

    return Paced()


def serve(port: int, speed: float, batch: int) -> int:
    import uvicorn

    from voxd.serve import ServeOptions, create_app
    from voxd.tts.batcher import Batcher

    engine = paced_engine(speed)
    batcher = Batcher(engine, batch_size=batch, max_wait=0.01, max_queue=100_000, max_ratio=2.0)
    app = create_app(engine, batcher, ServeOptions(model_name="paced", api_key="", max_input_chars=100_000,
                                                   max_body_bytes=1 << 20))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    return 0


def start_servers(n: int, speed: float, batch: int) -> list[tuple[subprocess.Popen, str]]:
    servers = []
    for _ in range(n):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--speed", str(speed),
                                 "--batch", str(batch)])
        servers.append((proc, f"http://127.0.0.1:{port}/v1"))
    for proc, url in servers:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url.replace("/v1", "/health"), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"server {url} did not start") from None
                time.sleep(0.1)
    return servers


def stop_servers(servers) -> None:
    for proc, _ in servers:
        proc.terminate()
    for proc, _ in servers:
        proc.wait(10)


# -- the measurements -----------------------------------------------------------------------------------


def book_chunks(count: int, model_id: str):
    """``count`` chunks of prose-like lengths (60-420 characters), as a novel's are."""
    from voxd.book import Chunk, Pause
    from voxd.render import with_keys

    rng = random.Random(7)
    words = ["the", "of", "and", "to", "a", "in", "that", "he", "was", "it", "his",
             "her", "with", "as", "for", "had", "she", "on", "at", "by", "not", "be"]
    chunks = []
    for i in range(count):
        length = rng.randint(60, 420)
        text = ""
        while len(text) < length:
            text += rng.choice(words) + " "
        chunks.append(Chunk(chapter=i // 50, index=i % 50, text=f"{i} {text.strip()}.", pause=Pause.SENTENCE,
                            voice="default"))
    return with_keys(chunks, model_id)


def fleet_run(urls: list[str], count: int, tmp: Path, max_in_flight: int) -> dict:
    from voxd.cache import ChunkCache
    from voxd.render import Check, render
    from voxd.tts.remote import RemoteEngine

    engine = RemoteEngine(urls, max_in_flight=max_in_flight)
    chunks = book_chunks(count, engine.model_id)
    started = time.perf_counter()
    progress = render(chunks, engine, ChunkCache(tmp), batch_size=1, check=Check(durations=False))
    wall = time.perf_counter() - started
    windows = [ep.limit for ep in engine.fleet.endpoints]
    engine.close()
    return {
        "servers": len(urls), "chunks": count, "audio_seconds": round(progress.audio_seconds, 1),
        "wall_seconds": round(wall, 2), "x_real_time": round(progress.audio_seconds / wall, 1),
        "windows_at_end": windows,
    }


def pipeline_run(urls: list[str], book: Path, tmp: Path) -> dict:
    from voxd.cache import ChunkCache
    from voxd.config import Settings
    from voxd.convert import convert
    from voxd.ingest import read_book
    from voxd.narration.plan import speech_chunks
    from voxd.render import Check, render, with_keys
    from voxd.tts.remote import RemoteEngine

    settings = Settings(engine="remote", state_dir=tmp / "state", remote={"urls": urls})
    engine = RemoteEngine(urls)
    parsed = read_book(book)
    # The chunks convert() renders: planned by the same call, keyed the same way.
    chunks = with_keys(speech_chunks(parsed, settings).chunks, engine.model_id, engine.voice_identity)
    engine.synthesize([c_to_u(chunks[0])])  # discovery and the first window, for both runs alike
    started = time.perf_counter()
    render(chunks, engine, ChunkCache(tmp / "alone"), batch_size=1, check=Check())
    alone = time.perf_counter() - started
    started = time.perf_counter()
    outcome = convert(book, lambda b: tmp / "out.m4b", settings.model_copy(update={"cache_dir": tmp / "pipe"}), engine)
    pipeline = time.perf_counter() - started
    engine.close()
    return {"book": str(book), "chunks": len(chunks), "audio_seconds": round(outcome.duration, 1),
            "render_alone_seconds": round(alone, 2), "pipeline_seconds": round(pipeline, 2),
            "ratio": round(pipeline / alone, 3)}


def c_to_u(chunk):
    from voxd.tts.base import Utterance

    return Utterance(chunk.text, chunk.voice, chunk.language)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="1,2,4", help="fleet sizes to measure (default 1,2,4)")
    parser.add_argument("--chunks", type=int, default=960, help="chunks in the book (default 960, about 2 hours)")
    parser.add_argument("--speed", type=float, default=10.0, help="each item's pace on a server, x real time")
    parser.add_argument("--batch", type=int, default=8, help="the most items a server runs together")
    parser.add_argument("--max-in-flight", type=int, default=0, help="per server; 0 adapts (the default)")
    parser.add_argument("--pipeline", type=Path, nargs="?", const=CORPUS_BOOK, metavar="BOOK",
                        help="also measure convert() against the render alone through 2 servers")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: 1 and 2 servers at 50x, 24 chunks, then --pipeline on a two-chapter book")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each server's window as it adapts")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.speed, args.batch)
    smoke_pipeline = False
    if args.smoke:
        args.servers, args.chunks, args.speed = "1,2", 24, 50.0
        smoke_pipeline = args.pipeline is None
    logging.basicConfig(level=logging.WARNING, format="%(relativeCreated)8.0f ms %(message)s")
    if args.verbose:
        logging.getLogger("voxd.tts.fleet").setLevel(logging.DEBUG)

    sizes = [int(n) for n in args.servers.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="voxd-bench-remote-") as tmp:
        for n in sizes:
            servers = start_servers(n, args.speed, args.batch)
            try:
                run = fleet_run([url for _, url in servers], args.chunks, Path(tmp) / f"fleet-{n}",
                                args.max_in_flight)
            finally:
                stop_servers(servers)
            runs.append(run)
        one = next((r["x_real_time"] for r in runs if r["servers"] == 1), None)
        for r in runs:
            r["ratio_to_linear"] = round(r["x_real_time"] / (r["servers"] * one), 3) if one else None
            print(f"{r['servers']} server(s): {r['audio_seconds'] / 3600:.2f} h of audio in {r['wall_seconds']:.1f} s"
                  f" = {r['x_real_time']:.1f}x real time"
                  + (f", {r['ratio_to_linear']:.3f} of linear" if one else "")
                  + f" (windows at the end: {r['windows_at_end']})", flush=True)
        pipeline = None
        if args.pipeline or smoke_pipeline:
            book = args.pipeline if args.pipeline and args.pipeline.is_file() else None
            if smoke_pipeline:
                book = smoke_book(Path(tmp) / "smoke.epub")
            elif book is None:
                from voxd.samples import build_sample

                book = build_sample(Path(tmp) / "alice.epub")
            servers = start_servers(2, args.speed, args.batch)
            try:
                pipeline = pipeline_run([url for _, url in servers], book, Path(tmp) / "pipeline")
            finally:
                stop_servers(servers)
            print(f"pipeline through 2 servers ({pipeline['audio_seconds'] / 3600:.2f} h of audio): "
                  f"{pipeline['pipeline_seconds']:.1f} s vs the render alone {pipeline['render_alone_seconds']:.1f} s"
                  f" = {pipeline['ratio']:.3f}")
    report = {
        **machine(),
        "server_speed": args.speed, "server_batch": args.batch, "max_in_flight": args.max_in_flight,
        "smoke": args.smoke, "runs": runs, "pipeline": pipeline,
    }
    write(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
