"""The JSON API: jobs, a chapter's audio (Range) while the rest renders, retry and cancel, the event stream."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest

from tests.support import chapters_of, decode, handmade_book
from tests.web.conftest import BEARER
from voxd.audio.assembly import assemble


def planned_job(page, tmp_path, levels=(0.1, 0.3)):
    """A job whose book (one chapter per level, three 2 s tones each) is planned and in the cache."""
    book, chunks, cache = handmade_book(tmp_path, list(levels))
    assert cache.root == page.settings.cache_path  # the cache the page reads
    job, _ = page.store.put("c" * 64, page.settings.inbox_dir / "levels.epub")
    page.store.progress(job.id, title=book.metadata.title, author=book.metadata.author, chapters=len(book.chapters),
                        chunks_total=len(chunks))
    page.store.set_chunks(job.id, [c.key for c in chunks])
    page.store.set_plan(job.id, [ch.title for ch in book.chapters], [(c.chapter, c.key, c.pause.value) for c in chunks])
    return job, book, chunks, cache


def test_jobs_and_one_job_as_json(page, tmp_path):
    job, book, chunks, _ = planned_job(page, tmp_path)
    with page.client(headers=BEARER) as c:
        jobs = c.get("/api/jobs").json()
        assert [j["id"] for j in jobs] == [job.id]
        assert jobs[0]["title"] == "Levels" and jobs[0]["status"] == "queued"
        one = c.get(f"/api/jobs/{job.id}").json()
        assert [(ch["number"], ch["title"], ch["chunks"], ch["ready"]) for ch in one["chapter_list"]] == [
            (1, "Part 1", 3, 3), (2, "Part 2", 3, 3)]
        assert one["history"][0]["kind"] == "queued"
        assert c.get("/api/jobs/99").status_code == 404
        assert c.get("/api/jobs/99999999999999999999").status_code == 404


def test_a_chapter_plays_as_aac_levelled_like_the_book_with_range_requests(page, tmp_path):
    job, book, chunks, cache = planned_job(page, tmp_path)
    with page.client(headers=BEARER) as c:
        r = c.get(f"/api/jobs/{job.id}/chapters/2/audio")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/mp4"
        assert r.headers["accept-ranges"] == "bytes"
        whole = r.content
        part = c.get(f"/api/jobs/{job.id}/chapters/2/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    got = tmp_path / "chapter2.m4a"
    got.write_bytes(whole)
    pcm, rate = decode(got)
    # the whole book's own second chapter, as the assembler writes it
    out = tmp_path / "book.m4b"
    assemble(book, chunks, cache, out, page.settings.model_copy(update={"write_sidecars": False}), narrator=None)
    marks = chapters_of(out)
    full, _ = decode(out)
    start, end = marks[1][1], marks[1][2]
    theirs = full[int(start * rate):int(end * rate)]
    assert abs(len(pcm) - len(theirs)) < 0.1 * rate
    n = min(len(pcm), len(theirs)) - rate // 10
    rms = lambda x: float(np.sqrt(np.mean(x[rate // 10:n] ** 2)))  # noqa: E731
    assert rms(pcm) == pytest.approx(rms(theirs), rel=0.05)
    if shutil.which("ffprobe"):
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(got)],
                                          capture_output=True, check=True).stdout)
        assert probe["streams"][0]["codec_name"] == "aac"


def test_a_chapter_not_yet_rendered_says_how_far_it_is(page, tmp_path):
    job, _, chunks, cache = planned_job(page, tmp_path)
    cache.remove(chunks[4].key)
    with page.client(headers=BEARER) as c:
        r = c.get(f"/api/jobs/{job.id}/chapters/2/audio")
        assert r.status_code == 409 and r.json()["error"] == "chapter 2 is not rendered yet: 2 of 3 chunks"
        assert c.get(f"/api/jobs/{job.id}/chapters/1/audio").status_code == 200
        assert c.get(f"/api/jobs/{job.id}/chapters/3/audio").status_code == 404
        assert c.get(f"/api/jobs/{job.id}/chapters/0/audio").status_code == 404
        assert c.get(f"/api/jobs/{job.id}").json()["chapter_list"][1]["ready"] == 2


def test_a_finished_books_chapter_comes_from_its_m4b_once_its_chunks_left_the_cache(page, tmp_path):
    job, book, chunks, cache = planned_job(page, tmp_path, levels=(0.1, 0.3, 0.2))
    out = tmp_path / "outbox" / "Levels.m4b"
    out.parent.mkdir(parents=True)
    assemble(book, chunks, cache, out, page.settings.model_copy(update={"write_sidecars": False}), narrator=None)
    with page.store.transaction() as conn:
        conn.execute("UPDATE jobs SET status = 'done', output = ? WHERE id = ?", (str(out), job.id))
    for c in chunks:
        cache.remove(c.key)
    with page.client(headers=BEARER) as c:
        r = c.get(f"/api/jobs/{job.id}/chapters/2/audio")
    assert r.status_code == 200, r.text
    got = tmp_path / "from-book.m4a"
    got.write_bytes(r.content)
    pcm, rate = decode(got)
    start, end = chapters_of(out)[1][1:]
    assert len(pcm) / rate == pytest.approx(end - start, abs=0.1)
    assert float(np.sqrt(np.mean(pcm ** 2))) > 0.01


def test_retry_speaks_the_chunks_asked_for_again(page, tmp_path):
    job, _, chunks, cache = planned_job(page, tmp_path)
    with page.store.transaction() as conn:
        conn.execute("UPDATE jobs SET status = 'done' WHERE id = ?", (job.id,))
    with page.client(headers=BEARER) as c:
        r = c.post(f"/api/jobs/{job.id}/retry", json={"chunks": [2, 5]})
        assert r.status_code == 200, r.text
        assert "speaking 2 chunk(s) again" in r.json()["said"]
        assert c.post(f"/api/jobs/{job.id}/retry").status_code == 409  # queued already
        assert c.post(f"/api/jobs/{job.id}/retry", json=["x"]).status_code == 400
    assert page.store.get(job.id).status.value == "queued"
    assert [bool(cache.flagged(ch.key)) for ch in chunks] == [False, True, False, False, True, False]
    assert page.woken


def test_cancel_and_purge(page, tmp_path):
    job, _, chunks, cache = planned_job(page, tmp_path)
    with page.client(headers=BEARER) as c:
        assert c.get(f"/api/jobs/{job.id}/chapters/1/audio").status_code == 200
        assert list((page.settings.state_path / "web").rglob("*.m4a"))
        assert c.post(f"/api/jobs/{job.id}/cancel?purge=1").status_code == 200
        assert c.post(f"/api/jobs/{job.id}/cancel").status_code == 409
    assert page.store.get(job.id).status.value == "cancelled"
    assert not any(cache.has(ch.key) for ch in chunks)
    assert not list((page.settings.state_path / "web").rglob("*.m4a"))  # nor the page's copy of a chapter


def test_a_flagged_chunk_plays_as_wav(page, tmp_path):
    job, _, chunks, cache = planned_job(page, tmp_path)
    with page.client(headers=BEARER) as c:
        r = c.get(f"/api/jobs/{job.id}/chunks/4/audio")
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
        assert c.get(f"/api/jobs/{job.id}/chunks/40/audio").status_code == 404


def test_the_event_stream_sends_the_jobs_and_again_when_one_changes(page, tmp_path):
    job, *_ = planned_job(page, tmp_path)
    seen: list[list[dict]] = []
    # a read timeout below the stream's keep-alive: a change that is never sent fails the test
    with httpx.Client(base_url=page.url, headers=BEARER, timeout=10) as c, c.stream("GET", "/api/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "jobs":
                seen.append(json.loads(line[6:]))
                if len(seen) == 1:
                    page.store.progress(job.id, chunks_done=3, phase="writing the .m4b: 1 of 2 chapters")
                    with page.store.transaction() as conn:
                        conn.execute("UPDATE jobs SET status = 'running' WHERE id = ?", (job.id,))
                else:
                    break
    assert seen[0][0]["chunks_done"] == 0
    assert seen[1][0]["percent"] == 50.0 and seen[1][0]["phase"] == "writing the .m4b: 1 of 2 chapters"


def test_a_chapter_from_the_m4b_is_found_past_an_empty_chapter_and_a_long_ones_parts(page, tmp_path):
    """The assembler writes no mark for a chapter with nothing to say and extra marks for the
    parts of a long one: the page's chapter 4 is still the book's fourth chapter."""
    import dataclasses

    from voxd.book import Chapter

    book, chunks, cache = handmade_book(tmp_path, [0.1, 0.3, 0.2])  # three chapters of three 2 s tones
    # an empty chapter at place 1: the others move up one
    chapters = (book.chapters[0], Chapter(title="Nothing to say", paragraphs=()), *book.chapters[1:])
    book = dataclasses.replace(book, chapters=chapters)
    chunks = [dataclasses.replace(c, chapter=c.chapter + (c.chapter >= 1)) for c in chunks]
    settings = page.settings.model_copy(update={"write_sidecars": False, "max_chapter_minutes": 0.06})  # 3.6 s
    out = tmp_path / "outbox" / "Levels.m4b"
    out.parent.mkdir(parents=True)
    assemble(book, chunks, cache, out, settings, narrator=None)
    marks = chapters_of(out)
    assert len(marks) > 3  # parts were written: the premise
    job, _ = page.store.put("c" * 64, page.settings.inbox_dir / "levels.epub")
    page.store.set_plan(job.id, [ch.title for ch in chapters], [(c.chapter, c.key, c.pause.value) for c in chunks])
    with page.store.transaction() as conn:
        conn.execute("UPDATE jobs SET status = 'done', output = ? WHERE id = ?", (str(out), job.id))
    for c in chunks:
        cache.remove(c.key)
    with page.client(headers=BEARER) as c:
        assert c.get(f"/api/jobs/{job.id}/chapters/2/audio").status_code == 404  # nothing to hear
        r = c.get(f"/api/jobs/{job.id}/chapters/4/audio")
        assert c.get(f"/api/jobs/{job.id}/chunks/99999999999999999999/audio").status_code == 404
    assert r.status_code == 200, r.text
    got = tmp_path / "ch4.m4a"
    got.write_bytes(r.content)
    pcm, rate = decode(got)
    starts = [m for m in marks if m[0].startswith("Part 3")]
    assert len(pcm) / rate == pytest.approx(starts[-1][2] - starts[0][1], abs=0.1)  # all its parts
