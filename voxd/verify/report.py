"""What the read-back found, for people: the flagged chunks with their place in the .m4b, and a
line for ``voxd jobs``, the log and the notification."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..book import Chunk
    from ..cache import ChunkCache
    from ..config import Settings
    from ..service.records import Job
    from ..takes import Flag


def clock(seconds: float | None) -> str:
    """h:mm:ss, as a player shows a position."""
    if seconds is None:
        return "?"
    total = int(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def flag_rows(chunks: Sequence[Chunk], flags: Sequence[Flag], cache: ChunkCache, settings: Settings
              ) -> list[dict[str, Any]]:
    """Each flagged chunk with its place: its number in the book (as ``voxd retry --chunks``
    takes it) and where it starts in the .m4b, from the lengths of the chunks and pauses
    before it, laid out as the assembly lays them."""
    if not flags:
        return []
    by_key = {f.key: f for f in flags}
    numbers = {key: n for n, key in enumerate(dict.fromkeys(c.key for c in chunks), 1)}
    last = max((numbers[k] for k in by_key if k in numbers), default=0)
    rows, at = [], 0.0
    for c in sorted(chunks, key=lambda c: (c.chapter, c.index)):
        if numbers.get(c.key, 0) > last:
            break
        flag = by_key.pop(c.key, None)
        if flag is not None:
            rows.append({"position": numbers[c.key], "chapter": c.chapter + 1, "idx": c.index + 1, "start": at,
                         "key": c.key, "text": c.text, "why": flag.why, "heard": flag.heard, "error": flag.error,
                         "takes": flag.takes})
        seconds = cache.seconds(c.key) or 0.0
        at += seconds + settings.pause_seconds(c.pause)
    return rows


def summary(job: Job) -> str:
    """The read-back in one line: "checked 4,812 of 4,820, 8 flagged"; empty when nothing was."""
    checked, flagged, unchecked = job.chunks_checked, job.chunks_flagged, job.chunks_unchecked
    if not (checked or flagged or unchecked):
        return ""
    total = job.chunks_total or checked + flagged + unchecked
    line = f"checked {checked:,} of {total:,}"
    if flagged:
        line += f", {flagged:,} flagged"
    if unchecked:
        line += f", {unchecked:,} not checked ({job.unchecked_why or 'no recogniser'})"
    return line


def as_json(job: Job, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "job": job.id, "title": job.title, "checked": job.chunks_checked, "not_checked": job.chunks_unchecked,
        "not_checked_why": job.unchecked_why, "flagged": [
            {"chunk": r["position"], "chapter": r["chapter"], "index": r["idx"], "start": clock(r["start"]),
             "text": r["text"], "heard": r["heard"], "error": r["error"], "why": r["why"], "takes": r["takes"]}
            for r in rows],
    }


def describe(job: Job, rows: Sequence[dict[str, Any]]) -> str:
    """``voxd report``: the summary, then each flagged chunk."""
    head = f"job {job.id}: {job.title or job.name}"
    line = summary(job) or "not read back (the read-back was off, or the job has not rendered yet)"
    from ..terminal import one_line  # a book's text may hold what a terminal would obey

    out = [one_line(head), line]
    for r in rows:
        out.append("")
        out.append(f"chunk {r['position']} (chapter {r['chapter']}, at {clock(r['start'])}), "
                   f"{r['takes']} take{'s' if r['takes'] != 1 else ''}: {one_line(r['why'])}")
        out.append(f"  text:  {one_line(r['text'])}")
        if r["heard"] is not None:
            out.append(f"  heard: {one_line(r['heard'])}")
    if rows:
        out.append("")
        out.append(f"voxd retry {job.id} --flagged speaks these again and publishes the book again")
    return "\n".join(out)
