"""The HTML pages: what a book supplies is escaped, each button is a form that works without a script."""

from __future__ import annotations

import pytest

from tests.web.conftest import csrf_of
from voxd.web.pages import _finding

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def hostile_job(page):
    job, _ = page.store.put("d" * 64, page.settings.inbox_dir / "evil.epub", name=HOSTILE + ".epub")
    page.store.progress(job.id, title=HOSTILE, author=HOSTILE, chapters=1, chunks_total=1)
    page.store.set_plan(job.id, [HOSTILE], [(0, "e" * 64, "chapter")])
    page.store.set_flags(job.id, [{"position": 1, "chapter": 0, "idx": 0, "start": 0.0, "key": "e" * 64,
                                   "text": HOSTILE, "why": "heard otherwise", "heard": HOSTILE, "error": 0.9,
                                   "takes": 3}])
    return job


def test_every_string_a_book_supplies_is_escaped(open_page):
    job = hostile_job(open_page)
    with open_page.client() as c:
        for path in ("/", f"/jobs/{job.id}"):
            html = c.get(path).text
            assert "<script>alert" not in html and "<img src=x" not in html, path
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path


def test_a_page_without_a_password_still_gives_each_browser_a_token(open_page):
    """The process's own token (no login, no session to lose), which another site cannot read."""
    with open_page.client() as c:
        r = c.get("/")
        assert "set-cookie" not in r.headers
        token = csrf_of(r.text)
        assert len(token) > 20 and csrf_of(c.get("/voices").text) == token


def test_the_job_pages_buttons_are_forms_that_act_and_come_back(open_page):
    job, _ = open_page.store.put("f" * 64, open_page.settings.inbox_dir / "b.epub")
    with open_page.client() as c:
        token = csrf_of(c.get(f"/jobs/{job.id}").text)
        browser = {"Sec-Fetch-Site": "same-origin", "Origin": open_page.url}
        r = c.post(f"/jobs/{job.id}", data={"action": "cancel", "csrf": token}, headers=browser,
                   follow_redirects=False)
        assert r.status_code == 303
        assert open_page.store.get(job.id).status.value == "cancelled"
        assert f"job {job.id} cancelled" in c.get(r.headers["location"]).text
        r = c.post(f"/jobs/{job.id}", data={"action": "retry", "csrf": token}, headers=browser, follow_redirects=False)
        assert open_page.store.get(job.id).status.value == "queued"
        r = c.post(f"/jobs/{job.id}", data={"action": "cancel"}, headers=browser)  # no token: refused
        assert r.status_code == 403
        assert open_page.store.get(job.id).status.value == "queued"
        r = c.post(f"/jobs/{job.id}", data={"action": "retry", "csrf": token}, headers=browser)
        assert r.status_code == 409 and "only done, failed or cancelled jobs" in r.text


def test_an_unknown_page_and_job_are_404s_in_words(open_page):
    with open_page.client() as c:
        assert c.get("/jobs/404").status_code == 404
        r = c.get("/nowhere")
        assert r.status_code == 404 and "<main" in r.text
        assert c.get("/api/nowhere").json()["error"]


def test_the_voices_page_lists_the_engines_voices(open_page):
    with open_page.client() as c:
        html = c.get("/voices").text
    assert "en-us" in html and "Hear" in html


@pytest.mark.slow
def test_a_voice_preview_is_speech(open_page):
    with open_page.client() as c:
        token = csrf_of(c.get("/voices").text)
        r = c.post("/voices/preview", data={"voice": "en-us", "csrf": token},
                   headers={"Sec-Fetch-Site": "same-origin", "Origin": open_page.url})
        assert r.status_code == 200, r.text
        assert r.content[:4] == b"RIFF" and len(r.content) > 20_000
        r = c.post("/voices/preview", data={"voice": "no-such-voice", "csrf": token})
        assert r.status_code == 409


@pytest.mark.slow
def test_the_checks_page_shows_what_voxd_doctor_finds(open_page):
    with open_page.client() as c:
        html = c.get("/doctor").text
    assert "espeak" in html and "inbox" in html
    assert 'off ([web] listen = &#34;&#34;)' in html  # the tests' environment turns the page off


def test_a_doctor_line_is_read_as_verdict_label_text():
    assert _finding("ok  espeak   eSpeak NG 1.52, 131 voices") == {
        "verdict": "ok", "label": "espeak", "text": "eSpeak NG 1.52, 131 voices"}
    assert _finding("NO  gpu      no CUDA device")["verdict"] == "problem"
    assert _finding("voxd 0.1.0, Python 3.11.2") == {"verdict": "", "label": "", "text": "voxd 0.1.0, Python 3.11.2"}


def test_speak_again_from_the_page_marks_that_chunk_and_queues_the_book(open_page, tmp_path):
    from voxd.cache import ChunkCache

    job, _ = open_page.store.put("f" * 64, open_page.settings.inbox_dir / "b.epub")
    open_page.store.set_chunks(job.id, ["k" * 64, "m" * 64])
    with open_page.store.transaction() as conn:
        conn.execute("UPDATE jobs SET status = 'done' WHERE id = ?", (job.id,))
    with open_page.client() as c:
        token = csrf_of(c.get(f"/jobs/{job.id}").text)
        r = c.post(f"/jobs/{job.id}", data={"action": "respeak", "chunks": "2", "csrf": token},
                   headers={"Sec-Fetch-Site": "same-origin", "Origin": open_page.url}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert "speaking 1 chunk(s) again" in c.get(r.headers["location"]).text
    cache = ChunkCache(open_page.settings.cache_path)
    assert cache.flagged("m" * 64) and not cache.flagged("k" * 64)
    assert open_page.store.get(job.id).status.value == "queued"
