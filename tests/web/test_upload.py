"""Uploads: streamed into the inbox under a temp name, capped, named safely, queued as ``voxd add`` queues."""

from __future__ import annotations

import pytest

from tests.web.conftest import BEARER, csrf_of, start_page
from voxd.samples import build_sample
from voxd.web.upload import clean_name


def inbox_names(page) -> list[str]:
    return sorted(p.name for p in page.settings.inbox_dir.iterdir()) if page.settings.inbox_dir.exists() else []


def test_an_uploaded_book_is_queued_from_the_inbox_and_the_worker_woken(page, tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    with page.client(headers=BEARER) as c:
        r = c.post("/api/upload", files={"file": ("alice.epub", book.read_bytes(), "application/epub+zip")})
    assert r.status_code == 201, r.text
    job = page.store.get(r.json()["id"])
    assert job.status.value == "queued" and job.name == "alice.epub"
    assert (page.settings.inbox_dir / "alice.epub").read_bytes() == book.read_bytes()
    assert job.source == str(page.settings.inbox_dir / "alice.epub")
    assert page.woken
    # the same book again is the same job, and leaves no second copy
    with page.client(headers=BEARER) as c:
        r = c.post("/api/upload", files={"file": ("copy.epub", book.read_bytes(), "application/epub+zip")})
    assert r.status_code == 200 and r.json()["id"] == job.id and r.json()["created"] is False
    assert inbox_names(page) == ["alice.epub"]


@pytest.mark.parametrize("given, kept", [
    ("../../etc/cron.d/x.epub", "x.epub"),
    ("C:\\Users\\me\\book.pdf", "book.pdf"),
    ("..hidden.epub", "hidden.epub"),
    ("a\x1b]0;pwned\x07b.epub", "a]0;pwnedb.epub"),
    ("\u202etxt.epub", "txt.epub"),
    ("", "upload"),
])
def test_the_clients_file_name_is_only_a_hint(given, kept):
    assert clean_name(given) == kept


def test_a_long_name_is_cut_to_fit_with_its_suffix():
    name = clean_name("é" * 300 + ".epub")
    assert name.endswith(".epub") and len(name.encode()) <= 200


def test_a_hostile_name_lands_inside_the_inbox(page, tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    with page.client(headers=BEARER) as c:
        r = c.post("/api/upload", files={"file": ("../../outside.epub", book.read_bytes(), "application/epub+zip")})
    assert r.status_code == 201
    assert inbox_names(page) == ["outside.epub"]
    assert not (tmp_path / "outside.epub").exists()


def test_a_type_voxd_does_not_read_is_refused_and_nothing_is_left(page):
    with page.client(headers=BEARER) as c:
        r = c.post("/api/upload", files={"file": ("notes.docx", b"PK\x03\x04" + b"x" * 1000, "application/zip")})
    assert r.status_code == 415
    assert "notes.docx" in r.json()["error"] and ".epub" in r.json()["error"]
    assert inbox_names(page) == []
    assert page.store.jobs() == []


def test_an_upload_over_the_cap_is_refused_as_it_streams_and_leaves_no_temp(tmp_path):
    page = start_page(tmp_path, password="secret", max_upload_mb=0.05)  # 52 kB
    try:
        big = b"x" * 200_000

        def body():  # chunked: no Content-Length to refuse it by, so the count must
            yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.epub\"\r\n\r\n"
            for i in range(0, len(big), 8192):
                yield big[i:i + 8192]
            yield b"\r\n--B--\r\n"

        with page.client(headers=BEARER) as c:
            r = c.post("/api/upload", content=body(), headers={"Content-Type": "multipart/form-data; boundary=B"})
            assert r.status_code == 413, r.text
            assert "max_upload_mb" in r.json()["error"]
            # a declared length over the cap is refused before a byte is read
            r = c.post("/api/upload", files={"file": ("big.epub", big, "application/epub+zip")})
            assert r.status_code == 413
        assert inbox_names(page) == []
        assert page.store.jobs() == []
    finally:
        page.server.stop()


@pytest.mark.parametrize("body, content_type, status", [
    (b"not a form", "text/plain", 400),
    (b"--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--B--\r\n",
     "multipart/form-data; boundary=B", 400),
    (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.epub\"\r\n\r\n\r\n--B--\r\n",
     "multipart/form-data; boundary=B", 400),
    (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.epub\"\r\n\r\nPK\x03\x04 and then nothing",
     "multipart/form-data; boundary=B", 400),
])
def test_a_malformed_upload_is_a_400_and_leaves_nothing(page, body, content_type, status):
    with page.client(headers=BEARER) as c:
        r = c.post("/api/upload", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert r.json()["error"]
    assert inbox_names(page) == []


def test_the_form_without_a_script_uploads_and_goes_to_the_book(open_page, tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    with open_page.client() as c:
        token = csrf_of(c.get("/").text)
        r = c.post(f"/upload?csrf={token}", files={"file": ("alice.epub", book.read_bytes(), "application/epub+zip")},
                   headers={"Sec-Fetch-Site": "same-origin", "Origin": open_page.url}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith("/jobs/1?said=")
        assert "queued as job 1" in c.get(r.headers["location"]).text
