"""How long a cancel and a SIGTERM take to free the daemon while it assembles a very long chapter.

    .venv/bin/python bench/cancel.py                # a book with one 10-hour chapter
    .venv/bin/python bench/cancel.py --hours 1      # a smaller one
    .venv/bin/python bench/cancel.py --into 30      # act 30 s into the assembly instead of 20
    .venv/bin/python bench/cancel.py --smoke --out /tmp/cancel.json   # a 0.1-hour chapter, acting at once

A real daemon (``voxd run``, eSpeak NG on the CPU) in a temporary folder gets a
manifest with one chapter of distinct sentences, sized (from eSpeak's measured
pace) to the hours asked for, and a small second book queued behind it. eSpeak
speaks several hundred times faster than real time, so the whole chapter is
really rendered into the chunk cache; then the assembler levels and encodes it.

1. Once the render has finished and the assembler is encoding the chapter (its
   temp .m4b has begun to grow; the loudness pass before it is done), ``--into``
   seconds later, ``voxd cancel 1`` runs. Measured: from just before the command to
   the second book's claim (its ``started_at`` in the store, written by the daemon).
2. The long book is queued again (``voxd retry 1``): every chunk is in the cache, so
   the assembler starts on it at once. ``--into`` seconds into its encoding, the
   daemon gets SIGTERM. Measured: from the signal to the daemon's exit.

After each, the outbox must hold only the second book: no audiobook of the long one,
no temp file, no empty folder. Results go to bench/results/cancel.json (``--out``).

``--smoke``: a chapter of 0.1 hours, cancelled and stopped as soon as its encoding
has begun (``--into 0``): the same steps in seconds. It writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "cancel.json"
REPO = Path(__file__).resolve().parents[1]

_NOUNS = ("keeper", "lantern", "harbour", "gull", "tide", "ladder", "window", "rope", "boat", "cliff", "storm",
          "sailor", "map", "bell", "fog", "island", "shell", "net", "oar", "anchor")
_VERBS = ("watched", "followed", "carried", "mended", "counted", "painted", "found", "lifted", "passed", "named")
_ADJECTIVES = ("grey", "quiet", "narrow", "patient", "silver", "old", "cold", "bright", "heavy", "distant")


def sentence(n: int) -> str:
    """A distinct sentence for each ``n``, so that no two chunks share a cache entry."""
    a, b, c = _NOUNS[n % 20], _NOUNS[(n // 20) % 20], _ADJECTIVES[(n // 7) % 10]
    return (f"On evening {n}, the {c} {a} {_VERBS[n % 10]} the {b} beside the water, "
            f"and nobody on the island said a word about it.")


def chars_per_second() -> float:
    """eSpeak's pace on these sentences, characters per second of audio."""
    from voxd.tts.base import Utterance
    from voxd.tts.espeak import EspeakEngine

    texts = [" ".join(sentence(n + k) for k in range(4)) for n in range(0, 400, 20)]
    result = EspeakEngine().synthesize([Utterance(text=t, voice="default") for t in texts])
    seconds = sum(len(w) for w in result.waveforms) / result.sample_rate
    return sum(len(t) for t in texts) / seconds


def long_manifest(path: Path, hours: float, pace: float) -> int:
    """One chapter of about ``hours`` of eSpeak speech; returns its characters."""
    want = hours * 3600 * pace
    paragraphs, size, n = [], 0, 0
    while size < want:
        paragraph = " ".join(sentence(n + k) for k in range(5))
        n += 5
        paragraphs.append(paragraph)
        size += len(paragraph)
    doc = {"voxd_manifest": 1, "title": f"The Long Watch ({hours:g} h)", "authors": ["voxd bench"],
           "language": "en", "chapters": [{"title": "The Only Chapter", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return size


def small_manifest(path: Path) -> None:
    doc = {"voxd_manifest": 1, "title": "The Next Book", "authors": ["voxd bench"], "language": "en",
           "chapters": [{"title": "One", "text": "A short book, queued behind the long one."}]}
    path.write_text(json.dumps(doc), encoding="utf-8")


class Daemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "voxd.toml"
        self.config.write_text(
            'inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n'
            "settle_seconds = 0.5\nrescan_seconds = 2.0\ncache_min_free_gb = 0\ncache_max_gb = 0\n"
            'log_level = "INFO"\n'
        )
        (root / "inbox").mkdir()
        self.log_path = root / "daemon.log"
        self.env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.env["PYTHONPATH"] = str(REPO) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "voxd", "run", "--config", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root)
        self.wait(lambda: "voxd ready" in self.log()[offset:], 120, "the daemon to start")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "voxd", *args, "--config", str(self.config)],
                             capture_output=True, text=True, env=self.env, cwd=self.root, timeout=120)
        if out.returncode:
            raise SystemExit(f"voxd {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def job(self, job_id: int) -> dict | None:
        db = self.root / "state" / "voxd.sqlite3"
        if not db.exists():
            return None
        with sqlite3.connect(db, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"the daemon exited waiting for {what}:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise SystemExit(f"timed out waiting for {what}:\n{self.log()[-3000:]}")


def leftovers(outbox: Path) -> dict:
    """What the outbox holds: audiobooks (the cancelled or stopped one must not be among them),
    temp files and empty folders (there must be none)."""
    books = sorted(str(p.relative_to(outbox)) for p in outbox.rglob("*.m4b"))
    temps = [str(p.relative_to(outbox)) for p in outbox.rglob(".*.tmp")]
    empty = [str(p.relative_to(outbox)) for p in outbox.rglob("*") if p.is_dir() and not any(p.iterdir())]
    return {"audiobooks": books, "temp_files": temps, "empty_folders": empty}


def temp_size(outbox: Path) -> int:
    return sum(p.stat().st_size for p in outbox.rglob(".*.m4b.*.tmp"))


def encoding(d: Daemon, outbox: Path, job_id: int) -> bool:
    """True once the assembler's temp .m4b has begun to grow; an error if the job ended first
    (its chapter too short to be caught in the act: ask for more ``--hours``)."""
    if temp_size(outbox) > 0:
        return True
    job = d.job(job_id)
    if job is not None and job["status"] != "running":
        raise SystemExit(f"job {job_id} ended ({job['status']}) before its encoding was seen: use a longer --hours")
    return False


def rendered(d: Daemon, job_id: int) -> bool:
    job = d.job(job_id)
    return bool(job and job["status"] == "running" and job["chunks_total"]
                and job["chunks_done"] >= job["chunks_total"])


def run(root: Path, hours: float, into: float) -> dict:
    pace = chars_per_second()
    stage = root / "stage"
    stage.mkdir()
    chars = long_manifest(stage / "long.voxd.json", hours, pace)
    small_manifest(stage / "next.voxd.json")
    d = Daemon(root)
    outbox = root / "outbox"
    d.start()
    result: dict = {"hours_asked": hours, "espeak_chars_per_second": round(pace, 2), "chapter_chars": chars}
    try:
        began = time.monotonic()
        (stage / "long.voxd.json").rename(root / "inbox" / "long.voxd.json")
        d.wait(lambda: rendered(d, 1), 4 * 3600, "the long chapter's render")
        result["render_seconds"] = round(time.monotonic() - began, 1)
        long_job = d.job(1)
        assert long_job is not None
        result["chunks"] = long_job["chunks_total"]
        result["audio_hours_rendered"] = round(long_job["audio_seconds"] / 3600, 2)
        (stage / "next.voxd.json").rename(root / "inbox" / "next.voxd.json")
        d.wait(lambda: d.job(2), 60, "the second book to be queued")
        d.wait(lambda: encoding(d, outbox, 1), 3600, "the encoding to begin")
        time.sleep(into)
        job = d.job(1)
        assert job is not None and job["status"] == "running", job
        result["cancel_temp_mb"] = round(temp_size(outbox) / 2**20, 1)
        t0 = time.time()
        d.cli("cancel", "1")
        d.wait(lambda: (d.job(2) or {}).get("started_at"), 3600, "the next book to start")
        started = (d.job(2) or {})["started_at"]
        result["cancel_to_next_job_seconds"] = round(started - t0, 2)
        d.wait(lambda: (d.job(2) or {}).get("status") == "done", 600, "the next book to finish")
        result["after_cancel"] = leftovers(outbox)

        d.cli("retry", "1")
        d.wait(lambda: rendered(d, 1), 3600, "the long chapter's second run to find its chunks")
        d.wait(lambda: encoding(d, outbox, 1), 3600, "the encoding to begin")
        time.sleep(into)
        result["sigterm_temp_mb"] = round(temp_size(outbox) / 2**20, 1)
        assert d.proc is not None
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(3600)
        result["sigterm_to_exit_seconds"] = round(time.monotonic() - t0, 2)
        result["sigterm_exit_code"] = d.proc.returncode
        result["after_sigterm"] = leftovers(outbox)
        job = d.job(1)
        result["long_job_after_sigterm"] = job["status"] if job else None
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(30)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=10.0, help="length of the one chapter (default 10)")
    parser.add_argument("--into", type=float, default=20.0,
                        help="seconds after the render before the cancel and the SIGTERM (default 20)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    parser.add_argument("--smoke", action="store_true", help="a 0.1-hour chapter, acting at once: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hours, args.into = 0.1, 0.0
    root = Path(tempfile.mkdtemp(prefix="voxd-cancel-"))
    try:
        result = run(root, args.hours, args.into)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            subprocess.run(["rm", "-rf", str(root)], check=False)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    document = {
        "benchmark": "cancel and SIGTERM during the assembly of one long chapter",
        "code": commit,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "into_seconds": args.into,
        "smoke": args.smoke,
        **result,
    }
    for key in ("chunks", "audio_hours_rendered", "render_seconds", "cancel_temp_mb", "cancel_to_next_job_seconds",
                "sigterm_temp_mb", "sigterm_to_exit_seconds", "after_cancel", "after_sigterm"):
        print(f"{key:>28}: {document.get(key)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
