"""What every benchmark writes: its numbers as JSON under bench/results/, with the machine they came from.

Also the small books the benchmarks' ``--smoke`` runs read, built on the spot, so that a smoke
run needs neither ../shared/corpus nor anything else outside the checkout, and the split of a
GPU run's wall time into phases that bench/batching.py and bench/gpu_report.py both print.
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


#: A batch's record (bench/batching.py's ``phases``) by phase: what voxd's decode loop times
#: (graph capture, prefill, the frame loop) and the codec decode around it.
PHASE_KEYS = {"capture": "capture_seconds", "prefill": "prefill_seconds", "frames": "frame_seconds",
              "decode": "decode_seconds"}


def phase_split(row: dict) -> dict:
    """Seconds of one batching row's wall time by phase, summed over its batches, and the
    gaps: everything else (qwen_tts building prompts, the render's own work, waits on the
    host). qwen_tts's own loop times no phase of generation: its generation is in
    ``generation_and_gaps`` and ``gaps`` is None. ``frames_share`` is the frame loop's share
    of the wall time."""
    batches = row.get("phases") or []
    split: dict = {}
    for name, key in PHASE_KEYS.items():
        values = [b[key] for b in batches if key in b]
        split[name] = round(sum(values), 3) if values else None
    wall = row["wall_seconds"]
    if split["frames"] is None:
        split.update(gaps=None, generation_and_gaps=round(wall - (split["decode"] or 0.0), 3), frames_share=None)
    else:
        split["gaps"] = round(wall - sum(v for v in split.values() if v is not None), 3)
        split["frames_share"] = round(split["frames"] / wall, 3) if wall else None
    return split


def phase_line(split: dict) -> str:
    """One line of a phase split, for the scripts' tables."""
    names = ("capture", "prefill", "frames", "decode", "gaps", "generation_and_gaps")
    shown = [f"{name} {split[name]:.2f}s" for name in names if split.get(name) is not None]
    share = split.get("frames_share")
    return ", ".join(shown) + (f" (frames {100 * share:.0f}% of the wall time)" if share is not None else "")
