"""The read-back on the command line: ``voxd report``, ``voxd retry --flagged/--chunks``, and the
lines ``voxd render`` prints about what it heard."""

from __future__ import annotations

import json
import sys

from .config import Settings
from .errors import VoxdError
from .render import Progress
from .service.records import Job
from .service.store import Store
from .verify.report import as_json, describe


def respeak(settings: Settings, store: Store, job: Job, *, flagged: bool, chunks: str | None) -> int:
    """Before a retry: the chunks to speak again are marked unsettled in the cache, so the render
    speaks them (and only them, with the rest found there) and the book is published again.
    Flagged chunks are unsettled already. Returns how many will be spoken again."""
    from .cache import ChunkCache

    if job.status.value != "done":
        raise VoxdError(f"job {job.id} is {job.status.value}; --flagged and --chunks speak again chunks of a "
                        "finished book (a plain voxd retry renders what a failed or cancelled one lacks)")
    flags = store.flags(job.id) if flagged else []
    if flagged and not flags:
        raise VoxdError(f"job {job.id} has no flagged chunks (voxd report {job.id})")
    wanted: list[int] = []
    for part in (chunks or "").split(","):
        if part.strip():
            if not part.strip().isdigit() or int(part) < 1:
                raise VoxdError(f"--chunks takes chunk numbers as voxd report shows them, e.g. 12,40; not {part!r}")
            wanted.append(int(part))
    keys = store.chunk_keys(job.id, wanted)
    missing = sorted(set(wanted) - set(keys))
    if missing:
        raise VoxdError(f"job {job.id} has no chunk {', '.join(map(str, missing))}")
    cache = ChunkCache(settings.cache_path)
    for number, key in keys.items():
        cache.flag(key, {"why": "asked to speak it again", "chunk": number})
    return len({f["key"] for f in flags} | set(keys.values()))


def report(settings: Settings, job_id: int, *, json_out: bool) -> int:
    """``voxd report``: the job's flagged chunks, as text or JSON."""
    store = Store(settings.db_path)
    job = store.get(job_id)
    if job is None:
        raise VoxdError(f"no job {job_id}")
    rows = store.flags(job.id)
    if json_out:
        json.dump(as_json(job, rows), sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print(describe(job, rows))
    return 0


def read_back(progress: Progress) -> None:
    """What the read-back found, after a render: one line, and each chunk that stayed wrong."""
    if not (progress.checked or progress.unchecked or progress.flags):
        return
    line = f"read back: {progress.checked} of {progress.chunks_done - progress.chunks_cached} heard right"
    if progress.unchecked:
        line += f", {progress.unchecked} not checked ({progress.unchecked_why})"
    print(line + (f", {len(progress.flags)} flagged:" if progress.flags else ""))
    for flag in progress.flags:
        heard = f"; heard {flag.heard!r}" if flag.heard is not None else ""
        print(f"  chapter {flag.chapter + 1}, chunk {flag.index + 1}: {flag.why}{heard}")
