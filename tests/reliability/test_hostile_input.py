"""Hostile and broken files dropped into a running daemon's inbox, all at once.

One daemon serves the whole module. Every bad file must end as a failed job whose reason
names the file and says what is wrong, be moved to ``inbox/failed/`` with
``<name>.error.txt`` beside it, and leave the daemon serving: a good book dropped after
them all still becomes an .m4b. Files with entity tricks (XXE, billion laughs) that hold
nothing else fail as books without text; one XXE book that also has real text is read
with the entity dropped, and the secret it points at must appear nowhere.
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mutagen.mp4
import pytest

from voxd.ingest import read_book
from voxd.narration.text import plan_chunks

from .support import by_name, drop, events, jobs, small_book, start_daemon, stop_daemon, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # one daemon for the module: about 8 s to set up

SECRET = "VOXD-XXE-CANARY-7f3a9c"
BIG_BYTES = 200 * 1024 * 1024  # sparse: no disk blocks behind it


# ------------------------------------------------------------------------------- builders


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name) if name == "mimetype" else name, data)
    return path


def seed_members(stage: Path, n: int, title: str) -> dict[str, bytes]:
    return members_of(small_book(stage / f"seed-{n}.epub", 900 + n, title=title))


def chapter(body: str, doctype: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + doctype
        + '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head>'
        + f"<body>{body}</body></html>"
    ).encode()


def xxe_doctype(root: str, secret: Path) -> str:
    return f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'


def lol_doctype(root: str) -> str:
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    return f"<!DOCTYPE {root} [{ents}]>\n"


def with_prolog_doctype(xml: bytes, doctype: str) -> bytes:
    text = xml.decode().replace("<!DOCTYPE html>", "")
    end = text.index("?>") + 2 if text.startswith("<?xml") else 0
    return (text[:end] + "\n" + doctype + text[end:].lstrip()).encode()


def b_empty(stage: Path, name: str, ctx: dict) -> Path:
    (stage / name).write_bytes(b"")
    return stage / name


def b_text(stage: Path, name: str, ctx: dict) -> Path:
    (stage / name).write_text("Chapter one.\n\nIt was a dark and stormy night.\n")
    return stage / name


def b_docx(stage: Path, name: str, ctx: dict) -> Path:
    return write_zip(stage / name, {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})


def b_random(stage: Path, name: str, ctx: dict) -> Path:
    (stage / name).write_bytes(os.urandom(64 * 1024))
    return stage / name


def b_truncated(stage: Path, name: str, ctx: dict) -> Path:
    full = small_book(stage / "whole.epub", 901, chapters=2).read_bytes()
    (stage / name).write_bytes(full[: len(full) // 2])
    return stage / name


def b_bomb(stage: Path, name: str, ctx: dict) -> Path:
    members = seed_members(stage, 2, "Bomb")
    members["EPUB/padding.xhtml"] = bytes(32 * 1024 * 1024)  # 32 MiB of zeros, ~32 KiB packed: ~1000x
    return write_zip(stage / name, members)


def b_traversal(stage: Path, name: str, ctx: dict) -> Path:
    members = seed_members(stage, 3, "Traversal")
    members["../../evil"] = b"#!/bin/sh\ntouch /tmp/pwned\n"
    return write_zip(stage / name, members)


def b_xxe_only(stage: Path, name: str, ctx: dict) -> Path:
    """All the text is the external entity: read as nothing, never as the secret."""
    members = seed_members(stage, 4, "Only Entities")
    members["EPUB/chapter001.xhtml"] = chapter("<p>&xxe;</p>", xxe_doctype("html", ctx["secret"]))
    return write_zip(stage / name, members)


def b_xxe_mixed(stage: Path, name: str, ctx: dict) -> Path:
    """The entity in the package title, the TOC (nav and NCX), a heading and the text."""
    secret = ctx["secret"]
    members = seed_members(stage, 5, "XXE Mixed")
    opf = members["EPUB/content.opf"].decode().replace("<dc:title>XXE Mixed</dc:title>",
                                                      "<dc:title>XXE Mixed &xxe;</dc:title>")
    members["EPUB/content.opf"] = with_prolog_doctype(opf.encode(), xxe_doctype("package", secret))
    nav = members["EPUB/nav.xhtml"].decode().replace(">Part 1<", ">Part 1 &xxe;<")
    members["EPUB/nav.xhtml"] = with_prolog_doctype(nav.encode(), xxe_doctype("html", secret))
    ncx = members["EPUB/toc.ncx"].decode().replace("<text>Part 1</text>", "<text>Part 1 &xxe;</text>")
    members["EPUB/toc.ncx"] = with_prolog_doctype(ncx.encode(), xxe_doctype("ncx", secret))
    members["EPUB/chapter001.xhtml"] = chapter(
        "<h1>Part 1 &xxe;</h1><p>Before the entity &xxe; and after it.</p>", xxe_doctype("html", secret)
    )
    assert all(b"&xxe;" in members[m] for m in ("EPUB/content.opf", "EPUB/nav.xhtml", "EPUB/toc.ncx"))
    return write_zip(stage / name, members)


def b_laughs(stage: Path, name: str, ctx: dict) -> Path:
    members = seed_members(stage, 6, "Laughs")
    members["EPUB/chapter001.xhtml"] = chapter("<p>&lol9;</p><p>&lol9;&lol9;</p>", lol_doctype("html"))
    return write_zip(stage / name, members)


def b_laughs_package(stage: Path, name: str, ctx: dict) -> Path:
    members = seed_members(stage, 7, "Laughs Package")
    opf = members["EPUB/content.opf"].decode().replace("<dc:title>Laughs Package</dc:title>",
                                                      "<dc:title>&lol9;</dc:title>")
    members["EPUB/content.opf"] = with_prolog_doctype(opf.encode(), lol_doctype("package"))
    return write_zip(stage / name, members)


def b_no_text(stage: Path, name: str, ctx: dict) -> Path:
    members = seed_members(stage, 8, "Pictures Only")
    members["EPUB/chapter001.xhtml"] = chapter('<div><img src="p.png" alt="A long alt text that is not read"/></div>')
    return write_zip(stage / name, members)


def b_big(stage: Path, name: str, ctx: dict) -> Path:
    with (stage / name).open("wb") as fh:
        fh.truncate(BIG_BYTES)
    return stage / name


def b_pdf_encrypted(stage: Path, name: str, ctx: dict) -> Path:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A secret chapter that needs a password.")
    doc.save(stage / name, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user-pw", owner_pw="owner-pw")
    return stage / name


def b_pdf_scanned(stage: Path, name: str, ctx: dict) -> Path:
    import pymupdf

    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 120, 160), False)
    pix.clear_with(230)
    doc = pymupdf.open()
    for _ in range(2):
        page = doc.new_page()
        page.insert_image(page.rect, stream=pix.tobytes("png"))
    doc.save(stage / name)
    return stage / name


def b_json_malformed(stage: Path, name: str, ctx: dict) -> Path:
    (stage / name).write_text('{"voxd_manifest": 1, "title": "Half", "chapters": [{"title": "One", "text": "Hi')
    return stage / name


def b_json_invalid(stage: Path, name: str, ctx: dict) -> Path:
    doc = {"voxd_manifest": 1, "title": 42, "chapters": [{"text": "No title."}], "voise": "narrator"}
    (stage / name).write_text(json.dumps(doc))
    return stage / name


def b_json_cover_outside(stage: Path, name: str, ctx: dict) -> Path:
    doc = {
        "voxd_manifest": 1, "title": "Cover Escape", "authors": ["Rel Tester"],
        "cover": "../secrets/cover.png",
        "chapters": [{"title": "One", "text": "A perfectly good chapter."}],
    }
    (stage / name).write_text(json.dumps(doc))
    return stage / name


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, str, dict], Path]
    reason: str  # regex the job's error must match (besides naming the file)


CASES = [
    Case("empty.epub", b_empty, r"empty"),
    Case("notes.txt", b_text, r"unsupported file type '\.txt'"),
    Case("report.docx", b_docx, r"unsupported file type '\.docx'"),
    Case("random-bytes.epub", b_random, r"not a valid EPUB \(zip\) file"),
    Case("truncated.epub", b_truncated, r"not a valid EPUB \(zip\) file .*(cut short|truncated)"),
    Case("zip-bomb.epub", b_bomb, r"expands \d+ times .*zip bomb"),
    Case("traversal.epub", b_traversal, r"member '\.\./\.\./evil' has an unsafe path"),
    Case("xxe-only.epub", b_xxe_only, r"has no readable text"),
    Case("billion-laughs.epub", b_laughs, r"has no readable text"),
    Case("billion-laughs-package.epub", b_laughs_package, r"not a readable EPUB \(.*malformed"),
    Case("pictures-only.epub", b_no_text, r"has no readable text"),
    Case("huge-sparse.epub", b_big, r"not a valid EPUB \(zip\) file"),
    Case("locked.pdf", b_pdf_encrypted, r"password|encrypt"),
    Case("scanned.pdf", b_pdf_scanned, r"no text layer|scanned|no readable text"),
    Case("malformed.voxd.json", b_json_malformed, r"not valid JSON"),
    Case("invalid.voxd.json", b_json_invalid, r"not a valid voxd manifest.*title.*voise"),
    Case("cover-outside.voxd.json", b_json_cover_outside, r"cover"),
]
XXE_MIXED = "xxe-mixed.epub"


@dataclass
class Run:
    d: object
    root: Path
    jobs: dict
    bad_seconds: float
    good_seconds: float
    good_output: Path
    big_blocks: int


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("hostile")
    stage, secrets = root / "stage", root / "secrets"
    stage.mkdir()
    secrets.mkdir()
    secret = secrets / "passwd.txt"
    secret.write_text(f"{SECRET}\n")
    (secrets / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET.encode())
    ctx = {"secret": secret}
    built = [c.build(stage, c.name, ctx) for c in CASES] + [b_xxe_mixed(stage, XXE_MIXED, ctx)]
    good = small_book(stage / "good-after.epub", 1, title="Served After All", chapters=2)
    big = stage / "huge-sparse.epub"

    d = start_daemon(root)
    try:
        started = time.monotonic()
        for path in built:
            drop(path, d.inbox)
        names = [p.name for p in built]
        wait_until(d, lambda: all(by_name(d).get(n) and by_name(d)[n].status.value in ("done", "failed")
                                  for n in names), 120, "every hostile file to end", poll=0.5)
        bad_seconds = time.monotonic() - started

        started = time.monotonic()
        drop(good, d.inbox)
        wait_until(d, lambda: (j := by_name(d).get(good.name)) and j.status.value in ("done", "failed"), 60,
                   "the good book after the hostile ones")
        good_seconds = time.monotonic() - started
        moved_big = d.inbox / "failed" / big.name
        big_blocks = moved_big.stat().st_blocks if moved_big.exists() else -1
        job = by_name(d)[good.name]
        assert job.status.value == "done", job.error
        yield Run(d, root, by_name(d), bad_seconds, good_seconds, Path(job.output), big_blocks)
    finally:
        stop_daemon(d)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_hostile_file_is_a_failed_job_with_reason_and_note(run, case):
    job = run.jobs[case.name]
    failed = run.d.inbox / "failed"
    print(f"{case.name}: failed in {job.finished_at - job.created_at:.2f} s: {job.error}")
    assert job.status.value == "failed", f"{case.name} ended {job.status.value}"
    assert case.name in job.error, f"the reason does not name the file: {job.error}"
    assert re.search(case.reason, job.error, re.IGNORECASE | re.DOTALL), job.error
    assert "Traceback" not in job.error and "unexpected error" not in job.error
    assert not (run.d.inbox / case.name).exists(), "still in the inbox"
    assert (failed / case.name).is_file(), "not moved to inbox/failed/"
    note = (failed / f"{case.name}.error.txt").read_text()
    assert case.name in note and job.error in note
    assert job.source == str(failed / case.name)


def test_daemon_serves_a_good_book_after_all_hostile_files(run):
    n = len(CASES) + 1
    print(f"{n} hostile files settled in {run.bad_seconds:.1f} s; the next good book took {run.good_seconds:.1f} s")
    assert run.good_output.is_file()
    assert run.good_output.relative_to(run.d.outbox).parts == (
        "Rel Tester", "Served After All", "Served After All.m4b")
    assert [c.title for c in mutagen.mp4.MP4(run.good_output).chapters] == ["Part 1", "Part 2"]
    assert run.d.proc.poll() is None
    assert "Traceback" not in run.d.log(), run.d.log()[-3000:]


def test_every_hostile_file_accounted_for_nothing_left_behind(run):
    inbox = run.d.inbox
    left = sorted(p.name for p in inbox.iterdir() if p.name not in ("done", "failed", "voices"))
    assert left == [], f"left in the inbox: {left}"
    failed = sorted(p.name for p in (inbox / "failed").iterdir() if not p.name.endswith(".error.txt"))
    assert failed == sorted(c.name for c in CASES)
    assert sorted(p.name for p in (inbox / "done").iterdir()) == sorted([XXE_MIXED, "good-after.epub"])
    # one output per book that was readable, nothing else in the outbox
    assert len(run.d.outputs()) == 2
    extra = [p for p in run.d.outbox.rglob("*") if p.is_file() and p.suffix != ".m4b" and p.name != "metadata.json"]
    assert not extra
    # nothing was unpacked anywhere: no 'evil' member, no temp files
    assert not [p for p in run.root.rglob("*evil*")] and not Path("/tmp/pwned").exists()
    assert not [p for p in run.d.outbox.rglob(".*")]


def test_large_sparse_epub_is_refused_without_reading_it_all(run):
    job = run.jobs["huge-sparse.epub"]
    seconds = job.finished_at - job.started_at
    print(f"{BIG_BYTES >> 20} MiB sparse .epub refused in {seconds:.2f} s of worker time "
          f"({run.big_blocks * 512 // 1024} KiB on disk)")
    assert job.status.value == "failed"
    assert run.big_blocks * 512 < 1024 * 1024, "the sparse file was filled in"
    assert seconds < 10


def test_billion_laughs_expands_nothing(run):
    for name in ("billion-laughs.epub", "billion-laughs-package.epub"):
        job = run.jobs[name]
        seconds = job.finished_at - job.started_at
        print(f"{name}: {job.error!r} after {seconds:.2f} s")
        assert seconds < 5
        assert "lollol" not in (job.error or "") and "lollol" not in (job.title or "")


def _tags_text(path: Path) -> str:
    tags = mutagen.mp4.MP4(path)
    values = [repr(v) for v in (tags.tags or {}).values()]
    return "\n".join(values + [c.title for c in tags.chapters])


def test_xxe_secret_appears_nowhere(run):
    """Not in any job field or event, error note, log line, output tag or chapter; not in the chunks."""
    mixed = run.jobs[XXE_MIXED]
    assert mixed.status.value == "done", mixed.error
    output = Path(mixed.output)
    assert mixed.title == "XXE Mixed" and mixed.chapters == 1

    fields = [str(v) for j in jobs(run.d) for v in (j.title, j.author, j.name, j.error, j.output)]
    fields += [e.message for e in events(run.d)]
    fields += [p.read_text() for p in (run.d.inbox / "failed").glob("*.error.txt")]
    fields += [run.d.log(), _tags_text(output)]
    fields += [p.read_text(errors="replace") for p in run.d.outbox.rglob("*") if p.is_file() and p.suffix != ".m4b"]
    assert not [f for f in fields if SECRET in f]
    assert SECRET.encode() not in output.read_bytes()
    assert [c.title for c in mutagen.mp4.MP4(output).chapters] == ["Part 1"]

    for name in (XXE_MIXED, "xxe-only.epub"):
        folder = "done" if name == XXE_MIXED else "failed"
        try:
            book = read_book(run.d.inbox / folder / name)
        except Exception as exc:  # noqa: BLE001 - the only-entities book has no text
            assert SECRET not in str(exc)
            continue
        chunks = plan_chunks(book, voice="default", language="en")
        spoken = "\n".join(c.text for c in chunks) + repr(book.metadata)
        assert SECRET not in spoken
        assert "Before the entity and after it." in spoken


def test_manifest_cover_outside_its_folder_is_never_read(run):
    job = run.jobs["cover-outside.voxd.json"]
    assert job.status.value == "failed" and job.output is None
    assert (run.root / "secrets" / "cover.png").is_file(), "the file outside was moved"
    assert SECRET not in (job.error or "")
