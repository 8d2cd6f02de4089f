"""Big books through the real daemon: the ceiling on a book's length, its expected length stated up
front, and a cancel or a stop while one long chapter is being assembled."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.support import Daemon
from voxd.cache import ChunkCache
from voxd.samples import build_sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARAGRAPHS = [
    f"On evening {n}, the keeper climbed the narrow stairs, counted every step, trimmed the lamp, and "
    f"watched the grey sea turn to silver under a quiet and patient moon, as he had done for years, while "
    f"the gulls settled on the rocks below and the boats came home one by one to the harbour wall."
    for n in range(10)
]


def manifest(path: Path, title: str, paragraphs: list[str]) -> Path:
    doc = {"voxd_manifest": 1, "title": title, "authors": ["Test Author"], "language": "en",
           "chapters": [{"title": "The Only Chapter", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def job(d: Daemon, job_id: int):
    store = d.store()
    try:
        return store.get(job_id)
    finally:
        store.close()


def rendered(d: Daemon, job_id: int) -> bool:
    j = job(d, job_id)
    return bool(j and j.status.value == "running" and j.chunks_total and j.chunks_done >= j.chunks_total)


def leftovers(outbox: Path) -> list[Path]:
    temps = list(outbox.rglob(".*.tmp"))
    empty = [p for p in outbox.rglob("*") if p.is_dir() and not any(p.iterdir())]
    return temps + empty


def test_a_cancel_and_a_stop_during_a_long_chapters_assembly(daemon_factory, tmp_path):
    """Forty-odd minutes in one chapter (ten distinct paragraphs, so the render is quick and
    the assembly is not): ``voxd cancel --purge`` as the assembly runs lets the next book start
    and leaves neither the book nor its chunks; SIGTERM as it runs again stops the daemon with
    the job queued and nothing half-written. Before, both waited for the whole chapter, and the
    book was published after all."""
    d = daemon_factory()
    d.start()
    stage = tmp_path / "stage"
    stage.mkdir()
    manifest(stage / "long.voxd.json", "The Long Watch", PARAGRAPHS * 17)
    manifest(stage / "next.voxd.json", "The Next Book", ["A short book, queued behind the long one."])
    (stage / "long.voxd.json").rename(d.inbox / "long.voxd.json")
    d.wait_for(lambda: rendered(d, 1), 120, "the long chapter rendered")
    (stage / "next.voxd.json").rename(d.inbox / "next.voxd.json")
    d.wait_for(lambda: job(d, 2), 30, "the next book queued")
    out = d.cli("cancel", "1", "--purge")
    assert out.returncode == 0, out.stderr
    d.wait_for(lambda: (j := job(d, 2)) and j.status.value == "done", 120, "the next book done")
    assert job(d, 1).status.value == "cancelled"
    assert [p.parent.name for p in d.outputs()] == ["The Next Book"]
    assert not leftovers(d.outbox)
    store = d.store()
    try:
        mine, shared = store.purgeable_keys(1), store.purgeable_keys(2)
    finally:
        store.close()
    assert len(mine) == 10  # ten paragraphs; the chapter's title is the next book's too...
    cache = ChunkCache(d.state / "cache")
    assert not [key for key in mine if cache.has(key)]  # ...its own are gone
    assert len(shared) == 2 and all(cache.has(key) for key in shared)  # the next book's are not
    assert "job 1: cancelled" in d.log() and "retrying" not in d.log()

    assert d.cli("retry", "1").returncode == 0
    d.wait_for(lambda: rendered(d, 1), 120, "the long chapter rendered again")
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(120) == 0
    assert job(d, 1).status.value == "queued"
    assert [p.parent.name for p in d.outputs()] == ["The Next Book"]
    assert not leftovers(d.outbox)


def test_a_book_past_max_book_hours_fails_at_once_and_may_be_let_through(daemon_factory, tmp_path):
    d = daemon_factory()
    d.append_config("max_book_hours = 0.02\n")  # 72 s
    d.start()
    shutil.copy(manifest(tmp_path / "long.voxd.json", "Three Minutes", PARAGRAPHS[:10]), d.inbox / "long.voxd.json")
    d.wait_for(lambda: (j := job(d, 1)) and j.status.value == "failed", 60, "the book refused")
    failed = job(d, 1)
    assert failed.error.startswith("long.voxd.json would make about 3 minutes of audio, more than max_book_hours "
                                   "(0.02)")
    assert failed.error.endswith("voxd retry 1 --max-hours 1")
    assert failed.expected_seconds == pytest.approx(180, abs=30) and failed.chunks_done == 0
    note_path = d.inbox / "failed" / "long.voxd.json.error.txt"  # written just after the job is marked failed
    d.wait_for(note_path.exists, 30, "the error note")
    note = note_path.read_text(encoding="utf-8")
    assert "more than max_book_hours (0.02)" in note
    assert not list((d.state / "cache").rglob("*.vxa"))  # nothing rendered
    assert "~3m" in d.cli("jobs").stdout
    assert d.cli("retry", "1", "--max-hours", "1").returncode == 0
    d.wait_for(lambda: (j := job(d, 1)) and j.status.value == "done", 120, "the book let through")
    assert "job 1: Three Minutes by Test Author, 1 chapters, 11 chunks, about 3m" in d.log()
    assert [p.parent.name for p in d.outputs()] == ["Three Minutes"]


def test_the_expected_length_is_stated_before_the_render(daemon_factory, tmp_path):
    d = daemon_factory()
    d.start()
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    d.wait_for(d.outputs, 120, "the audiobook")
    log = d.log()
    stated = log.index("job 1: Down the Rabbit-Hole by Lewis Carroll, 3 chapters")
    assert "of audio" in log[stated:].splitlines()[0]
    assert stated < log.index("job 1: 100%")
    assert json.loads(d.cli("jobs", "--json").stdout)[0]["expected_seconds"] > 30
