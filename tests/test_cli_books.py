"""voxd extract, render, jobs, cancel and retry on hostile or huge books: real subprocesses,
real files, a real SQLite store and chunk cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voxd.cache import ChunkCache
from voxd.samples import build_sample
from voxd.service.store import Store

from .support import settings_for


def voxd(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    cfg = tmp_path / "voxd.toml"
    if not cfg.exists():
        cfg.write_text('inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n')
    return subprocess.run([sys.executable, "-m", "voxd", *args, "--config", str(cfg)], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path, env={**os.environ, **(env or {})})


def test_extract_reads_under_the_daemons_limits(tmp_path: Path) -> None:
    """The reader runs in a child process under ingest_memory_mb and ingest_timeout_seconds,
    as in the daemon: here limits no reader can keep, so that the refusal shows they apply."""
    book = build_sample(tmp_path / "alice.epub")
    out = voxd(tmp_path, "extract", str(book), env={"VOXD_INGEST_MEMORY_MB": "1"})
    assert out.returncode == 1
    assert re.search(r"alice.epub: (reading it needed more than 1 MB|the .epub reader crashed)", out.stderr)
    out = voxd(tmp_path, "extract", str(book), env={"VOXD_INGEST_TIMEOUT_SECONDS": "0.01"})
    assert out.returncode == 1 and "alice.epub: reading it took longer than 0.01 s" in out.stderr
    assert not (tmp_path / "alice.voxd.json").exists()
    assert voxd(tmp_path, "extract", str(book)).returncode == 0 and (tmp_path / "alice.voxd.json").is_file()


def test_render_refuses_a_book_past_max_book_hours_before_rendering_it(tmp_path: Path) -> None:
    book = build_sample(tmp_path / "alice.epub")
    out = voxd(tmp_path, "render", str(book), "-o", str(tmp_path / "alice.m4b"), "--max-hours", "0.01")
    assert out.returncode == 1
    assert "alice.epub would make about 1 minute of audio, more than max_book_hours (0.01)" in out.stderr
    assert "or run again with --max-hours 1" in out.stderr
    assert not (tmp_path / "alice.m4b").exists()
    assert not list((tmp_path / "state" / "cache").rglob("*.vxa"))  # nothing was rendered


def test_jobs_keeps_one_line_per_job_whatever_the_names_hold(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "voxd.sqlite3")
    store.put("a" * 64, tmp_path / "inbox" / "two\nlines\tand\x1b[2Jescapes.epub")
    job, _ = store.put("b" * 64, tmp_path / "inbox" / "wide.epub")
    store.progress(job.id, title="\u543e\u8f29\u306f\u732b\u3067\u3042\u308b", expected_seconds=7200.0)
    third, _ = store.put("c" * 64, tmp_path / "inbox" / "plain.epub")
    store.claim(300)
    store.fail(1, "the reader failed:\nline one\nline two")
    out = voxd(tmp_path, "jobs")
    assert out.returncode == 0, out.stderr
    table = out.stdout.split("\n\n")[0].splitlines()
    assert len(table) == 4, out.stdout
    assert "\x1b" not in out.stdout
    assert "two lines and\\x1b[2Jescapes.epub" in table[1] and "the reader failed: line one line two" in table[1]
    assert "~2h00m00s" in table[2]
    # the columns line up on screen: a wide (CJK) character takes two columns
    from voxd.service.joblist import width

    starts = [width(row[: row.index(status)]) for row, status in zip(table[1:], ("failed", "queued", "queued"))]
    assert len(set(starts)) == 1
    books = {width(row[: row.index(ch)]) for row, ch in zip(table[1:], ("two", "\u543e", "plain"))}
    assert len(books) == 1
    [row] = [r for r in json.loads(voxd(tmp_path, "jobs", "--json").stdout) if r["id"] == job.id]
    assert row["expected_seconds"] == 7200.0 and third.id == 3


def test_cancel_purge_removes_the_books_chunks_but_not_those_other_books_use(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    cfg = tmp_path / "voxd.toml"
    cfg.write_text(f'state_dir = "{settings.state_path}"\ncache_dir = "{settings.cache_path}"\nengine = "espeak"\n')
    store = Store(settings.db_path)
    cache = ChunkCache(settings.cache_path)
    tone = np.full(2400, 0.1, np.float32)
    own, shared_done, shared_queued = ["1" * 64, "2" * 64], "3" * 64, "4" * 64
    for key in (*own, shared_done, shared_queued):
        cache.put(key, tone, 24000)
    cancelled, _ = store.put("a" * 64, tmp_path / "a.epub")
    done, _ = store.put("b" * 64, tmp_path / "b.epub")
    queued, _ = store.put("c" * 64, tmp_path / "c.epub")
    store.set_chunks(cancelled.id, [*own, shared_done, shared_queued])
    store.set_chunks(done.id, [shared_done])
    store.set_chunks(queued.id, [shared_queued])
    store.claim(300)  # job 1
    store.claim(300)  # job 2
    store.finish(done.id, "b.m4b")
    out = voxd(tmp_path, "cancel", str(cancelled.id), "--purge")
    assert out.returncode == 0, out.stderr
    assert "job 1 cancelled" in out.stdout and "removed 2 of its chunks" in out.stdout
    assert [k for k in (*own, shared_done, shared_queued) if cache.has(k)] == [shared_done, shared_queued]
    assert store.require(cancelled.id).status.value == "cancelled"
    again = voxd(tmp_path, "cancel", str(cancelled.id), "--purge")  # a cancelled job: purged again, nothing left
    assert again.returncode == 0 and "removed 0 of its chunks" in again.stdout
    refused = voxd(tmp_path, "cancel", str(done.id), "--purge")
    assert refused.returncode == 1 and "only cancelled or failed ones purged" in refused.stderr
    assert cache.has(shared_done)


def test_retry_with_max_hours_lets_one_book_through(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "voxd.sqlite3")
    job, _ = store.put("a" * 64, tmp_path / "inbox" / "long.epub")
    store.claim(300)
    store.fail(job.id, "too long")
    out = voxd(tmp_path, "retry", str(job.id), "--max-hours", "40")
    assert out.returncode == 0 and "queued again, up to 40 hours" in out.stdout
    again = store.require(job.id)
    assert again.status.value == "queued" and again.max_hours == 40.0


HOSTILE_TITLE = "Pwned\x1b]0;owned\x07 \u202eeman"


def test_plan_extract_render_and_jobs_show_a_books_controls_escaped(tmp_path: Path) -> None:
    """A title that would set the terminal's title, ring its bell and turn a line around."""
    manifest = tmp_path / "hostile.voxd.json"
    manifest.write_text(json.dumps({
        "voxd_manifest": 1, "title": HOSTILE_TITLE, "authors": ["A\x1b[2J"], "language": "en",
        "chapters": [{"title": "One\x1b[31m", "text": "It was \u202edrawkcab\u202c, they said."}],
    }))
    for args in (("plan", str(manifest)), ("plan", "--flagged", str(manifest)),
                 ("extract", str(manifest), "-o", str(tmp_path / "out.voxd.json"))):
        out = voxd(tmp_path, *args)
        assert out.returncode == 0, out.stderr
        assert not any(ch in out.stdout for ch in "\x1b\x07\u202e\u202c"), (args, out.stdout)
        assert "Pwned\\x1b]0;owned\\x07 \\u202eeman" in out.stdout
    assert "One\\x1b[31m" in voxd(tmp_path, "plan", str(manifest)).stdout
    planned = voxd(tmp_path, "plan", "--json", str(manifest)).stdout
    assert "\u202e" not in planned and json.loads(planned)["title"] == HOSTILE_TITLE
    store = Store(tmp_path / "state" / "voxd.sqlite3")
    job, _ = store.put("d" * 64, manifest)
    store.progress(job.id, title=HOSTILE_TITLE)
    jobs = voxd(tmp_path, "jobs").stdout
    assert "Pwned\\x1b]0;owned\\x07 \\u202eeman" in jobs and "\x1b" not in jobs and "\u202e" not in jobs


@pytest.mark.slow
def test_render_shows_a_books_controls_escaped(tmp_path: Path) -> None:
    manifest = tmp_path / "hostile.voxd.json"
    manifest.write_text(json.dumps({"voxd_manifest": 1, "title": HOSTILE_TITLE, "language": "en",
                                    "chapters": [{"title": "One", "text": "A short one."}]}))
    out = voxd(tmp_path, "render", str(manifest), "-o", str(tmp_path / "h.m4b"))
    assert out.returncode == 0, out.stderr
    assert "Pwned\\x1b]0;owned\\x07 \\u202eeman by" in out.stdout
    assert not any(ch in out.stdout + out.stderr for ch in "\x1b\x07\u202e")
