"""Benchmark `voxd serve`'s dynamic batching: throughput at 1, 4 and 16 concurrent clients,
and the memory it holds once idle after a burst of the longest requests it takes.

    .venv/bin/python bench/serve.py                      # the tiny random-weight Qwen3-TTS, on the CPU
    .venv/bin/python bench/serve.py --clients 1,8 --requests 64
    .venv/bin/python bench/serve.py --model DIR          # a real checkpoint (on a GPU: --device cuda:0)
    .venv/bin/python bench/serve.py --burst 64           # the memory burst: 64 requests at the text cap
    .venv/bin/python bench/serve.py --smoke --out /tmp/s.json   # seconds: 1 and 2 clients, 4 requests each

A real `voxd serve --engine qwen` process on loopback, and N client threads that
each send one request after another (a closed loop, as a voxd daemon's window
does). What batching buys shows as requests per batch and audio seconds per
wall second: with one client every request is a batch of one; with many, the
server speaks the waiting requests together. The default model is the tests'
tiny checkpoint (tests/tiny_qwen.py), whose per-call overhead is what batching
amortises on a CPU; a GPU run with full-size weights is the real measure.
Results go to bench/results/serve.json.

The memory burst is its own server, ``voxd serve --engine espeak`` (the engine is not what
is measured, and eSpeak speaks the 4,096-character cap in a second): its resident memory
(``VmRSS``) once warmed up, at its peak during ``--burst`` requests at the cap from 16
clients, and idle ``--idle`` seconds after the last reply.

``--smoke``: the tiny checkpoint on the CPU (one torch thread), 1 and 2 clients, 4
requests each, batches of up to 4, a burst of 4; it writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine, write  # noqa: E402 - bench/report.py: sys.path[0] is bench/ when run as a script

RESULTS = ROOT / "bench" / "results" / "serve.json"
TEXTS = [
    "The old lighthouse keeper climbed the narrow stairs each evening, counting every step.",
    "She watched the grey sea turn to silver under a quiet, patient moon.",
    "Nobody in the village remembered a winter as long as that one had been.",
    "He folded the letter twice and put it in the pocket closest to his heart.",
]


def start(config: Path, port: int, key: str, device: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "VOXD_SERVE__API_KEY": key, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "voxd", "serve", "--config", str(config), "--engine", "qwen",
                             "--port", str(port), "--device", device], env=env, cwd=config.parent)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("voxd serve did not start") from None
            time.sleep(0.2)
    raise SystemExit("voxd serve did not start in 2 minutes")


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


#: The longest text voxd serve takes by default ([serve] max_input_chars).
CAP_TEXT = ("The keeper counted every step of the narrow stairs, and the sea below him turned from grey to "
            "silver as the evening came on. " * 40)[:4096]


def burst(tmp: Path, requests: int, clients: int, idle: float) -> dict:
    """An eSpeak server's memory: warmed up, at its peak during the burst, and idle after it."""
    import httpx

    config = tmp / "burst.toml"
    config.write_text('state_dir = "state"\n[serve]\nmax_input_chars = 4096\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VOXD_SERVE__API_KEY": "bench", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "voxd", "serve", "--config", str(config), "--engine", "espeak",
                             "--port", str(port)], env=env, cwd=tmp)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("voxd serve --engine espeak did not start") from None
                time.sleep(0.2)
        url, headers = f"http://127.0.0.1:{port}/v1/audio/speech", {"Authorization": "Bearer bench"}
        body = {"input": CAP_TEXT, "response_format": "wav"}
        httpx.post(url, json={"input": "Warming up.", "response_format": "wav"}, headers=headers,
                   timeout=120).raise_for_status()
        time.sleep(idle)
        start = resident_mb(proc.pid)
        counter, failures = iter(range(requests)), []

        def client() -> None:
            try:
                with httpx.Client(headers=headers, timeout=600) as http:
                    for _ in counter:
                        http.post(url, json=body).raise_for_status()
            except BaseException as exc:  # the main thread raises it
                failures.append(exc)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        peak = start
        while any(t.is_alive() for t in threads):
            peak = max(peak, resident_mb(proc.pid))
            time.sleep(0.1)
        wall = time.perf_counter() - started
        if failures:
            raise SystemExit(f"{len(failures)} burst client(s) failed: {failures[0]!r}") from failures[0]
        time.sleep(idle)
        after = resident_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"engine": "espeak", "requests": requests, "clients": clients, "characters": len(CAP_TEXT),
            "wall_seconds": round(wall, 2), "idle_seconds": idle, "start_mb": round(start, 1),
            "peak_mb": round(peak, 1), "idle_after_mb": round(after, 1),
            "idle_growth_mb": round(after - start, 1)}


def run(port: int, key: str, clients: int, requests: int) -> dict:
    import httpx

    from voxd.audio.wav import decode_wav

    url = f"http://127.0.0.1:{port}/v1/audio/speech"
    headers = {"Authorization": f"Bearer {key}"}
    audio, latencies, lock = [0.0], [], threading.Lock()
    counter = iter(range(requests))
    failures: list[BaseException] = []

    def client() -> None:
        try:
            with httpx.Client(headers=headers, timeout=600) as http:
                for n in counter:
                    started = time.perf_counter()
                    # WAV, named: the server's default is OpenAI's, mp3
                    reply = http.post(url, json={"input": TEXTS[n % len(TEXTS)], "voice": "default", "language": "en",
                                                 "response_format": "wav"})
                    reply.raise_for_status()
                    wav = decode_wav(reply.content)
                    with lock:
                        audio[0] += wav.samples.size / wav.sample_rate
                        latencies.append(time.perf_counter() - started)
        except BaseException as exc:  # the main thread raises it: a failed request is a failed run
            failures.append(exc)

    before = health(port)["batches"]
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} client(s) failed: {failures[0]!r}") from failures[0]
    batches = health(port)["batches"] - before
    return {
        "clients": clients, "requests": requests, "wall_seconds": round(wall, 2),
        "requests_per_second": round(requests / wall, 2), "audio_seconds": round(audio[0], 1),
        "x_real_time": round(audio[0] / wall, 2), "batches": batches,
        "requests_per_batch": round(requests / max(batches, 1), 2),
        "mean_latency_seconds": round(sum(latencies) / len(latencies), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients to measure (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=48, help="requests per measurement (default 48)")
    parser.add_argument("--model", help="a CustomVoice checkpoint directory (default: the tiny test checkpoint)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda:N")
    parser.add_argument("--batch-size", type=int, default=16, help="largest batch the server forms (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1)")
    parser.add_argument("--burst", type=int, default=64,
                        help="requests at the 4,096-character cap in the memory burst (default 64; 0: none)")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds idle before memory is read, warmed up and after the burst (default 5)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: 1 and 2 clients, 4 requests each, batches of up to 4 (tiny model, CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        if args.model:
            parser.error("--smoke runs the tiny checkpoint: not with --model")
        args.clients, args.requests, args.batch_size, args.device, args.threads = "1,2", 4, 4, "cpu", 1
        args.burst, args.idle = 4, 2.0

    with tempfile.TemporaryDirectory(prefix="voxd-bench-serve-") as tmp:
        model = args.model
        if model is None:
            from tests.tiny_qwen import build_tiny_checkpoint

            model = str(build_tiny_checkpoint(Path(tmp) / "Qwen3-TTS-tiny-CustomVoice"))
        config = Path(tmp) / "voxd.toml"
        # Greedy decoding: every request's audio lasts the same, so requests per second compare.
        config.write_text(f'state_dir = "state"\n[qwen]\ncustom_voice_model = "{model}"\n'
                          f"batch_size = {args.batch_size}\ndo_sample = false\nsubtalker_do_sample = false\n"
                          "[serve]\nbatch_wait_ms = 20\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = start(config, port, "bench", args.device, args.threads)
        try:
            run(port, "bench", 1, 4)  # load the model, warm up
            runs = []
            for clients in (int(n) for n in args.clients.split(",")):
                r = run(port, "bench", clients, args.requests)
                runs.append(r)
                print(f"{clients:>3} client(s): {r['requests_per_second']:.2f} requests/s, "
                      f"{r['x_real_time']:.2f}x real time, {r['requests_per_batch']:.1f} requests per batch, "
                      f"mean latency {r['mean_latency_seconds']:.2f} s", flush=True)
        finally:
            server.terminate()
            server.wait(30)
        memory = burst(Path(tmp), args.burst, 16, args.idle) if args.burst else None
        if memory:
            print(f"memory: {memory['start_mb']:.0f} MB warmed up, {memory['peak_mb']:.0f} MB at the peak of "
                  f"{memory['requests']} requests of {memory['characters']} characters, "
                  f"{memory['idle_after_mb']:.0f} MB idle {memory['idle_seconds']:g} s after", flush=True)
    report = {
        **machine(), "model": args.model or "tiny (tests/tiny_qwen.py)",
        "device": args.device, "server_threads": args.threads, "batch_size": args.batch_size, "smoke": args.smoke,
        "runs": runs, "memory": memory,
    }
    write(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
