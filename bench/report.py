"""What every benchmark writes: its numbers as JSON under bench/results/, with the machine they came from.

Also the small books the benchmarks' ``--smoke`` runs read, built on the spot, so that a smoke
run needs neither ../shared/corpus nor anything else outside the checkout.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

# Two short chapters: every stage of the pipeline sees more than one of everything, and little of it.
SMOKE_TITLE = "A Smoke Test"
SMOKE_CHAPTERS: list[tuple[str, list[str]]] = [
    ("The Lighthouse", [
        "The old keeper climbed the narrow stairs each evening and counted every step.",
        "She watched the grey sea turn to silver under a quiet moon.",
    ]),
    ("The Harbour", [
        "Nobody in the village remembered a winter as long as that one had been.",
    ]),
]


def machine() -> dict:
    """When and where the numbers were taken."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def smoke_book(path: Path, chapters: list[tuple[str, list[str]]] = SMOKE_CHAPTERS) -> Path:
    """An EPUB of ``chapters`` (voxd.samples' builder), for a ``--smoke`` run."""
    from voxd.samples import build_epub

    return build_epub(path, title=SMOKE_TITLE, authors=("voxd bench",), chapters=chapters,
                      identifier="voxd-bench-smoke")


def smoke_pdf(path: Path, chapters: list[tuple[str, list[str]]] = SMOKE_CHAPTERS) -> Path:
    """A PDF of ``chapters``, a page and an outline entry per chapter."""
    import pymupdf

    doc = pymupdf.open()
    doc.set_metadata({"title": SMOKE_TITLE, "author": "voxd bench"})
    toc = []
    for n, (title, paragraphs) in enumerate(chapters):
        page = doc.new_page()
        page.insert_text((72, 100), title, fontsize=20, fontname="hebo")
        y = 140.0
        for paragraph in paragraphs:
            page.insert_textbox(pymupdf.Rect(72, y, 520, y + 80), paragraph, fontsize=11, fontname="helv")
            y += 80
        toc.append([1, title, n + 1])
    doc.set_toc(toc)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    doc.close()
    return path


def smoke_manifest(path: Path) -> Path:
    """A voxd manifest (JSON) of :data:`SMOKE_CHAPTERS`."""
    doc = {"voxd_manifest": 1, "title": SMOKE_TITLE, "authors": ["voxd bench"], "language": "en",
           "chapters": [{"title": title, "paragraphs": paragraphs} for title, paragraphs in SMOKE_CHAPTERS]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path
