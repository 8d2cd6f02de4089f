"""Benchmark the chunk cache's format: disk per hour of audio, and what storing and reading it costs.

    .venv/bin/python bench/cache.py                 # 30 minutes of each kind of audio, best of 3
    .venv/bin/python bench/cache.py --minutes 60    # longer
    .venv/bin/python bench/cache.py --quick         # 3 minutes each, one run
    .venv/bin/python bench/cache.py --smoke --out /tmp/c.json   # 15 s each, one run, a two-chapter book: seconds

Two formats of the same chunks:

* ``float32``: the format before, version 1 (the checked header, then raw float32),
  reimplemented here as voxd wrote and read it, since voxd itself now only reads it;
  its look-up read every entry whole, as the render loop's did.
* ``flac16``: voxd's format, version 2 (the checked header, then 16-bit FLAC).

Two kinds of audio:

* ``espeak``: the first chapters of a novel from ../shared/corpus (the sample book
  when it is missing), chunked as voxd plans them and spoken by eSpeak NG (22050 Hz):
  real speech, from the engine of a machine without a GPU.
* ``synthetic``: bench/assemble.py's synthetic voice at 24 kHz (Qwen3-TTS's rate),
  with breath noise under the harmonics, which compresses worse than eSpeak's clean
  output. There are no Qwen3-TTS weights here to measure real neural speech.

Reported per kind and format: GB per hour of audio on disk; seconds per hour of
audio to store every chunk (``put``), to read every chunk (``get``, the
assembler's read) and to look every chunk up (``seconds``, the render loop's
check of what is cached); the largest sample error and the signal-to-noise ratio
after the round trip. For ``espeak``, end to end with each format: ``render`` (the
render loop with eSpeak into an empty cache: engine and stores, where the engine
is as fast as any and the store's share is largest), ``resume`` (the render loop
over the full cache: only look-ups) and ``assemble`` (``voxd.audio.assembly.assemble``
of those chapters into an .m4b: both passes, AAC, tags). Timings are the best of
``--repeat`` runs. Results go to bench/results/cache.json.

``--smoke`` takes 15 seconds of each kind, one run, the eSpeak speech from a book of
two short chapters built on the spot (never the corpus), and writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine, smoke_book, write  # noqa: E402 - bench/report.py
from voxd.cache import ChunkCache, usage  # noqa: E402
from voxd.files import atomic_write  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cache.json"
CORPUS_BOOK = ROOT.parent / "shared" / "corpus" / "p-g-wodehouse_love-among-the-chickens.epub"
SYNTHETIC_RATE = 24000
_V1 = struct.Struct("<4sHHIII")


class Float32Cache(ChunkCache):
    """The cache before version 2: ``<key>.pcm``, the header and raw float32, as voxd wrote it."""

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pcm"

    def put(self, key: str, audio: np.ndarray, sample_rate: int) -> Path:
        samples = np.ascontiguousarray(audio, dtype="<f4").reshape(-1)
        payload = samples.tobytes()
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as fh:
            fh.write(_V1.pack(b"VXDA", 1, 0, sample_rate, samples.size, zlib.crc32(payload)))
            fh.write(payload)
        return target

    def get(self, key: str) -> tuple[np.ndarray, int] | None:
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        _, _, _, rate, n_samples, crc = _V1.unpack_from(blob)
        payload = blob[_V1.size :]
        if len(payload) != n_samples * 4 or zlib.crc32(payload) != crc:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return np.frombuffer(payload, dtype="<f4").astype(np.float32), rate

    def seconds(self, key: str) -> float | None:
        hit = self.get(key)  # the render loop read every cached chunk whole
        return None if hit is None else len(hit[0]) / hit[1]


FORMATS = {"float32": Float32Cache, "flac16": ChunkCache}


def best(repeat: int, run) -> float:
    """The shortest of ``repeat`` timed runs of ``run(n)``."""
    times = []
    for n in range(repeat):
        started = time.perf_counter()
        run(n)
        times.append(time.perf_counter() - started)
    return min(times)


def measure(kind: str, audio: list[tuple[str, np.ndarray, int]], tmp: Path, repeat: int) -> list[dict]:
    """Store, read and look up the same chunks in each format."""
    seconds = sum(a.size / rate for _, a, rate in audio)
    hours = seconds / 3600
    signal = sum(float(np.sum(a.astype(np.float64) ** 2)) for _, a, _ in audio)
    rows = []
    for name, cls in FORMATS.items():
        def fill(n: int, cls=cls, name=name) -> None:
            cache = cls(tmp / f"{kind}-{name}-{n}")
            for key, a, rate in audio:
                cache.put(key, a, rate)

        put = best(repeat, fill)
        cache = cls(tmp / f"{kind}-{name}-0")
        size = usage(cache.root).bytes
        get = best(repeat, lambda n, cache=cache: [cache.get(key) for key, _, _ in audio])
        look = best(repeat, lambda n, cache=cache: [cache.seconds(key) for key, _, _ in audio])
        error = noise = 0.0
        for key, a, _ in audio:
            hit = cache.get(key)
            assert hit is not None, f"{name}: {key} did not come back"
            diff = hit[0].astype(np.float64) - a
            error = max(error, float(np.max(np.abs(diff))) if diff.size else 0.0)
            noise += float(np.sum(diff**2))
        rows.append({
            "kind": kind,
            "format": name,
            "chunks": len(audio),
            "audio_seconds": round(seconds, 1),
            "bytes": size,
            "gb_per_hour": round(size / hours / 1e9, 4),
            "put_seconds_per_hour": round(put / hours, 3),
            "get_seconds_per_hour": round(get / hours, 3),
            "lookup_seconds_per_hour": round(look / hours, 3),
            "max_error": error,
            "snr_db": round(10 * np.log10(signal / noise), 1) if noise else None,
        })
        r = rows[-1]
        print(f"{kind:>9} {name:>7}: {r['gb_per_hour']:.3f} GB/h, put {r['put_seconds_per_hour']:.2f} s/h, "
              f"get {r['get_seconds_per_hour']:.2f} s/h, look-up {r['lookup_seconds_per_hour']:.2f} s/h, "
              f"max error {error:.2e}" + (f", SNR {r['snr_db']} dB" if noise else ", exact"), flush=True)
    return rows


def espeak_chunks(tmp: Path, minutes: float, source: Path | None = None):
    """Whole chapters from the start of the book, about ``minutes`` of speech, planned as voxd plans them."""
    from voxd.book import Book
    from voxd.config import Settings
    from voxd.ingest import read_book
    from voxd.narration.plan import speech_chunks
    from voxd.render import with_keys
    from voxd.samples import build_sample
    from voxd.tts.base import speech_seconds
    from voxd.tts.registry import load_engine

    if source is None:
        source = CORPUS_BOOK if CORPUS_BOOK.is_file() else build_sample(tmp / "alice.epub")
    book = read_book(source)
    settings = Settings(engine="espeak", state_dir=tmp / "state", speak_chapter_titles=True)
    engine = load_engine(settings)
    planned = with_keys(speech_chunks(book, settings).chunks, engine.model_id, engine.voice_identity)
    chapters, total = 0, 0.0
    while chapters < len(book.chapters) and total < minutes * 60:
        total += sum(speech_seconds(c.text) for c in planned if c.chapter == chapters)
        chapters += 1
    chunks = [c for c in planned if c.chapter < chapters]
    return Book(metadata=book.metadata, chapters=book.chapters[:chapters]), chunks, engine, settings, source


def synthetic_audio(minutes: float) -> list[tuple[str, np.ndarray, int]]:
    from assemble import _utterance  # bench/assemble.py: sys.path[0] is bench/ when run as a script

    rng = np.random.default_rng(20261123)
    audio, total, n = [], 0.0, 0
    while total < minutes * 60:
        seconds = float(rng.uniform(4.0, 20.0))
        level = float(10 ** (rng.uniform(-15, -3) / 20))
        audio.append((f"{n:06x}".ljust(64, "0"), _utterance(rng, seconds, level), SYNTHETIC_RATE))
        total += seconds
        n += 1
    return audio


def end_to_end(book, chunks, engine, settings, tmp: Path, repeat: int) -> list[dict]:
    """The render loop and assembly with each format, on the eSpeak chunks."""
    from voxd.audio.assembly import assemble
    from voxd.render import Check, render

    rows = []
    size = settings.espeak.batch_size
    for name, cls in FORMATS.items():
        caches: list[ChunkCache] = []

        def fill(n: int, cls=cls, name=name, caches=caches) -> None:
            caches.append(cls(tmp / f"render-{name}-{n}"))
            render(chunks, engine, caches[-1], batch_size=size, check=Check())

        rendered = best(repeat, fill)
        cache = caches[0]
        resumed = best(repeat, lambda n, cache=cache: render(chunks, engine, cache, batch_size=size, check=Check()))
        out = tmp / f"{name}.m4b"
        assembled = best(repeat, lambda n, cache=cache, out=out: assemble(
            book, chunks, cache, out, settings, narrator="voxd bench"))
        audio = sum(s for s in (cache.seconds(k) for k in {c.key for c in chunks}) if s)
        hours = audio / 3600
        rows.append({
            "format": name,
            "audio_seconds": round(audio, 1),
            "render_seconds_per_hour": round(rendered / hours, 2),
            "resume_seconds_per_hour": round(resumed / hours, 3),
            "assemble_seconds_per_hour": round(assembled / hours, 2),
        })
        r = rows[-1]
        print(f"   espeak {name:>7}: render {r['render_seconds_per_hour']:.2f} s/h, "
              f"resume {r['resume_seconds_per_hour']:.3f} s/h, assemble {r['assemble_seconds_per_hour']:.2f} s/h",
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="audio of each kind (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, the best kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="3 minutes, one run")
    parser.add_argument("--smoke", action="store_true", help="15 seconds, one run, a two-chapter book: seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from voxd.tts.base import Utterance

    if args.quick:
        args.minutes, args.repeat = 3.0, 1
    if args.smoke:
        args.minutes, args.repeat = 0.25, 1

    with tempfile.TemporaryDirectory(prefix="voxd-bench-cache-") as name:
        tmp = Path(name)
        book, chunks, engine, settings, source = espeak_chunks(
            tmp, args.minutes, smoke_book(tmp / "smoke.epub") if args.smoke else None)
        unique = list({c.key: c for c in chunks}.values())
        spoken = []
        for start in range(0, len(unique), 16):
            batch = unique[start : start + 16]
            result = engine.synthesize([Utterance(c.text, c.voice, c.language, c.style) for c in batch])
            spoken += [(c.key, w, result.sample_rate) for c, w in zip(batch, result.waveforms)]
        formats = measure("espeak", spoken, tmp, args.repeat)
        del spoken
        formats += measure("synthetic", synthetic_audio(args.minutes), tmp, args.repeat)
        pipeline = end_to_end(book, chunks, engine, settings, tmp, args.repeat)
        engine.close()

    write(args.out, {
        **machine(),
        "benchmark": "voxd.cache: chunk audio formats",
        "book": source.name,
        "minutes": args.minutes,
        "repeat": args.repeat,
        "smoke": args.smoke,
        "formats": formats,
        "espeak_end_to_end": pipeline,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
