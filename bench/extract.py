"""How long and how much memory ``read_book`` takes, per file.

    .venv/bin/python bench/extract.py                     # every book in ../shared/corpus
    .venv/bin/python bench/extract.py a.pdf b.epub dir/   # these files (folders: the books in them)
    .venv/bin/python bench/extract.py --repeat 5 --json /tmp/extract.json
    .venv/bin/python bench/extract.py --smoke --out /tmp/extract.json   # an EPUB, a PDF, a manifest built here

Each file is measured in a fresh child process so that one book's memory does not
hide another's:

* ``seconds``: the best of ``--repeat`` timed runs of ``read_book`` (no tracing);
* ``rss_peak_mib``: the child's peak resident memory (``getrusage``), and
  ``rss_delta_mib``: that peak minus the peak after voxd and its libraries were
  imported, i.e. what reading the book added;
* ``py_peak_mib``: the peak of memory allocated by Python (``tracemalloc``) during one
  more, traced run (MuPDF's and lxml's own C allocations are not seen by it);
* ``chapters``, ``paragraphs`` and ``characters`` (of the paragraphs) of the book.

The table goes to stdout and all numbers to ``bench/results/extract.json`` (``--json``,
or ``--out``).

``--smoke`` measures, once each, three small books built on the spot (the same two
chapters as an EPUB, a PDF and a voxd manifest), so it never needs the corpus, and
writes only to ``--out``.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_JSON = ROOT / "bench" / "results" / "extract.json"
SUFFIXES = (".epub", ".pdf", ".json")


def _mib_from_rusage(value: int) -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024


def _peak_rss_mib() -> float:
    return _mib_from_rusage(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(path: Path, repeat: int) -> dict[str, Any]:
    """Runs in the child: read ``path`` ``repeat`` times, then once under tracemalloc."""
    import gc
    import tracemalloc

    sys.path.insert(0, str(ROOT))
    from voxd.errors import VoxdError
    from voxd.ingest import read_book

    baseline = _peak_rss_mib()
    result: dict[str, Any] = {"file": path.name, "path": str(path), "bytes": path.stat().st_size}
    runs = []
    book = None
    try:
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter()
            book = read_book(path)
            runs.append(time.perf_counter() - start)
        peak_rss = _peak_rss_mib()
        gc.collect()
        tracemalloc.start()
        read_book(path)
        py_peak = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
        tracemalloc.stop()
    except VoxdError as exc:
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}", seconds=min(runs) if runs else None)
        result.update(rss_peak_mib=round(_peak_rss_mib(), 1), rss_delta_mib=round(_peak_rss_mib() - baseline, 1))
        return result
    assert book is not None
    paragraphs = [p for chapter in book.chapters for p in chapter.paragraphs]
    result.update(
        ok=True,
        error=None,
        seconds=round(min(runs), 4),
        runs=[round(r, 4) for r in runs],
        rss_peak_mib=round(peak_rss, 1),
        rss_delta_mib=round(peak_rss - baseline, 1),
        py_peak_mib=round(py_peak, 2),
        chapters=len(book.chapters),
        paragraphs=len(paragraphs),
        characters=sum(len(p) for p in paragraphs),
        title=book.metadata.title,
        cover_bytes=len(book.cover.data) if book.cover else 0,
    )
    return result


def books_in(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES))
        else:
            found.append(path)
    return found


def run_child(path: Path, repeat: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"file": path.name, "path": str(path), "ok": False, "error": f"crashed: {tail[0]}"}
    return json.loads(proc.stdout)


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'file':<45} {'seconds':>8} {'rss+MiB':>8} {'py MiB':>7} {'chapters':>8} {'chars':>9}  note"
    lines = [head, "-" * len(head)]
    for r in results:
        secs = f"{r['seconds']:.3f}" if r.get("seconds") is not None else "-"
        rss = f"{r['rss_delta_mib']:.1f}" if r.get("rss_delta_mib") is not None else "-"
        py = f"{r['py_peak_mib']:.2f}" if r.get("py_peak_mib") is not None else "-"
        note = "" if r.get("ok") else r.get("error", "")
        lines.append(
            f"{r['file'][:45]:<45} {secs:>8} {rss:>8} {py:>7} {r.get('chapters', '-')!s:>8} "
            f"{r.get('characters', '-')!s:>9}  {note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help=f"books or folders (default: {DEFAULT_CORPUS})")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per file; the best counts (default 3)")
    parser.add_argument(
        "--json", "--out", type=Path, default=DEFAULT_JSON, help=f"where to write the results (default {DEFAULT_JSON})"
    )
    parser.add_argument("--smoke", action="store_true",
                        help="an EPUB, a PDF and a manifest of two short chapters, built here, read once each")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")

    if args.child:
        print(json.dumps(measure(args.child, args.repeat)))
        return 0

    with tempfile.TemporaryDirectory(prefix="voxd-bench-extract-") as tmp:
        if args.smoke and not args.paths:
            sys.path.insert(0, str(ROOT))
            from report import smoke_book, smoke_manifest, smoke_pdf  # bench/report.py

            args.repeat = 1
            paths = [smoke_book(Path(tmp) / "smoke.epub"), smoke_pdf(Path(tmp) / "smoke.pdf"),
                     smoke_manifest(Path(tmp) / "smoke.json")]
        else:
            paths = args.paths or [DEFAULT_CORPUS]
        missing = [p for p in paths if not p.exists()]
        if missing:
            parser.error(f"not found: {', '.join(map(str, missing))}")
        files = books_in(paths)
        if not files:
            parser.error("no books to measure")

        results = [run_child(path, args.repeat) for path in files]
    print(table(results))

    import pymupdf

    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pymupdf": pymupdf.VersionBind,
        "mupdf": pymupdf.VersionFitz,
        "repeat": args.repeat,
        "smoke": args.smoke,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
