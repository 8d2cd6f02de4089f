"""The inbox as people really fill it, against one running daemon.

50 books dropped at once (with duplicates under other names and two different books
sharing a title), slow writes, renames into the inbox, files deleted or replaced while
queued or while rendering, a directory, symlinks pointing outside, and names with
spaces, unicode, shell metacharacters, bytes that are not UTF-8 and 245-byte names.
Each distinct book must be rendered exactly once; nothing else may become a job, and
nothing a name says may ever be executed.
"""

from __future__ import annotations

import os
import shutil
import time
import unicodedata
from pathlib import Path

import pytest

from voxd.samples import build_epub

from .support import by_name, events, jobs, small_book, start_daemon, stop_daemon, wait_until

pytestmark = pytest.mark.e2e

DISTINCT = 40
DUPLICATES = 10
MAX_FIFTY_SECONDS = 90


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    root = tmp_path_factory.mktemp("states")
    (root / "stage").mkdir()
    daemon = start_daemon(root)
    # Things that must never become jobs, present for the whole module (many rescans).
    outside = root / "outside"
    outside.mkdir()
    real = small_book(outside / "real.epub", 700, title="Never Followed")
    (outside / "secret.txt").write_text("not a book")
    (daemon.inbox / "linked.epub").symlink_to(real)
    (daemon.inbox / "passwd.epub").symlink_to(outside / "secret.txt")
    (daemon.inbox / "dangling.epub").symlink_to(outside / "missing.epub")
    (daemon.inbox / "folder.epub").mkdir()
    small_book(daemon.inbox / "Some Folder" / "inside.epub", 701, title="Inside A Folder")
    daemon.never = {"linked.epub", "passwd.epub", "dangling.epub", "folder.epub", "Some Folder", "inside.epub"}
    daemon.real_sha = real.read_bytes()
    daemon.started = time.monotonic()
    yield daemon
    stop_daemon(daemon)


def stage(d) -> Path:
    return d.root / "stage"


def settled(d, names) -> bool:
    current = by_name(d)
    return all(n in current and current[n].status.value in ("done", "failed") for n in names)


@pytest.mark.slow
def test_fifty_books_at_once_each_distinct_book_rendered_exactly_once(d):
    books = []
    for n in range(DISTINCT):
        title = "Twin Title" if n >= DISTINCT - 2 else None  # two different books, same title and author
        books.append(small_book(stage(d) / f"book-{n:02d}.epub", n, title=title))
    copies = []
    for n in range(DUPLICATES):  # the same bytes under another name
        copy = stage(d) / f"Copy of book {n:02d}.epub"
        shutil.copyfile(books[n * 3], copy)
        copies.append(copy)
    files = books + copies
    names = {p.name for p in files}
    before = {j.id for j in jobs(d)}

    started = time.monotonic()
    for p in files:  # 50 renames in a few milliseconds
        p.rename(d.inbox / p.name)

    def all_done():
        mine = [j for j in jobs(d) if j.id not in before]
        dups = [e for e in events(d) if e.kind == "duplicate"]
        return len(mine) >= DISTINCT and all(j.status.value == "done" for j in mine) and len(dups) >= DUPLICATES

    wait_until(d, all_done, 150, "50 books rendered", poll=0.5)
    seconds = time.monotonic() - started
    time.sleep(1.5)  # a late second render or duplicate job would show up by now

    mine = [j for j in jobs(d) if j.id not in before]
    outputs = {j.output for j in mine}
    dup_events = [e for e in events(d) if e.kind == "duplicate"]
    done_events = [e for e in events(d) if e.kind == "done" and e.job_id in {j.id for j in mine}]
    print(f"{len(files)} books ({DISTINCT} distinct, {DUPLICATES} duplicates) dropped at once: "
          f"{len(mine)} jobs, {len(outputs)} outputs, {len(dup_events)} duplicate events in {seconds:.1f} s")

    assert len(mine) == DISTINCT
    assert len({j.sha256 for j in mine}) == DISTINCT
    assert {j.name for j in mine} <= names
    assert len(done_events) == DISTINCT, "a book was rendered more than once"
    assert len(dup_events) == DUPLICATES
    assert len(outputs) == DISTINCT and all(Path(o).is_file() for o in outputs)
    twins = sorted(Path(j.output).relative_to(d.outbox).as_posix() for j in mine if j.title == "Twin Title")
    assert twins == ["Rel Tester/Twin Title (2)/Twin Title (2).m4b", "Rel Tester/Twin Title/Twin Title.m4b"]
    assert sorted(p.name for p in (d.inbox / "done").iterdir() if p.name in names) == sorted(names)
    assert not [p for p in d.inbox.iterdir() if p.name in names]
    assert seconds < MAX_FIFTY_SECONDS


def test_file_written_slowly_is_queued_once_complete(d):
    data = small_book(stage(d) / "slow-src.epub", 100, title="Written Slowly", chapters=2).read_bytes()
    target = d.inbox / "slow.epub"
    pieces = 5
    size = len(data) // pieces + 1
    with target.open("wb") as fh:  # each pause well shorter than settle_seconds (0.5 s)
        for i in range(pieces):
            fh.write(data[i * size:(i + 1) * size])
            fh.flush()
            time.sleep(0.1)
            assert "slow.epub" not in by_name(d), "queued while still being written"
    wait_until(d, lambda: settled(d, ["slow.epub"]), 30, "the slow book")
    job = by_name(d)["slow.epub"]
    assert job.status.value == "done" and job.chapters == 2
    print(f"{pieces} writes 0.1 s apart (settle 0.5 s): no job while writing, one job after")
    assert len([j for j in jobs(d) if j.name == "slow.epub"]) == 1


def test_files_renamed_into_the_inbox(d):
    # voxd add's way: a dotfile .tmp inside the inbox, renamed when complete
    tmp = d.inbox / ".renamed-inside.epub.tmp"
    shutil.copyfile(small_book(stage(d) / "inside-src.epub", 101, title="Renamed Inside"), tmp)
    time.sleep(1.5)  # three quiet periods: a temp name is never a job
    assert not [j for j in jobs(d) if "renamed-inside" in j.name]
    os.rename(tmp, d.inbox / "renamed-inside.epub")
    # mv from another folder on the same filesystem
    small_book(stage(d) / "renamed-outside.epub", 102, title="Renamed Outside").rename(
        d.inbox / "renamed-outside.epub")
    names = ["renamed-inside.epub", "renamed-outside.epub"]
    wait_until(d, lambda: settled(d, names), 30, "the renamed books")
    assert all(by_name(d)[n].status.value == "done" for n in names)
    assert not [j for j in jobs(d) if j.name.endswith(".tmp")]
    print("2 files renamed into the inbox (from a .tmp inside it, and from outside): 2 jobs, 0 for the .tmp")


def blocker(path: Path, title: str, paragraphs: int) -> Path:
    text = [f"Paragraph {i} keeps the worker busy for a little while, sentence after sentence. "
            f"It goes on a bit longer, so that there is time to act." for i in range(paragraphs)]
    return build_epub(path, title=title, authors=("Rel Tester",), chapters=[("Only", text)],
                      identifier=f"voxd-blocker-{title}")


@pytest.mark.slow
def test_deleted_and_replaced_while_queued_or_rendering(d):
    """While a long book renders: a queued file is deleted, a queued file is overwritten
    with another version, and the rendering book's own file is replaced by a new version."""
    inbox = d.inbox
    blocker(stage(d) / "blocker.epub", "Blocker One", 60).rename(inbox / "blocker.epub")  # 10-25 s of work
    # Running, and read (its title is known): replacing the file while it is being read
    # fails the job instead ("replaced by a different version while it was being read").
    wait_until(d, lambda: (j := by_name(d).get("blocker.epub")) and j.status.value == "running"
               and j.title == "Blocker One", 30, "the blocker to run", poll=0.05)
    small_book(stage(d) / "victim.epub", 200, title="Victim").rename(inbox / "victim.epub")
    small_book(stage(d) / "edition.epub", 201, title="Edition One").rename(inbox / "edition.epub")
    os.replace(small_book(stage(d) / "blocker2.epub", 203, title="Blocker Two"), inbox / "blocker.epub")
    first_blocker = min((j for j in jobs(d) if j.name == "blocker.epub"), key=lambda j: j.id)
    assert first_blocker.status.value == "running", "the blocker finished before its file was replaced"

    wait_until(d, lambda: {"victim.epub", "edition.epub"} <= set(by_name(d)), 10, "both queued", poll=0.05)
    assert by_name(d)["victim.epub"].status.value == "queued", [(j.name, j.status.value, j.error) for j in jobs(d)][-6:]
    assert by_name(d)["edition.epub"].status.value == "queued"
    (inbox / "victim.epub").unlink()
    (inbox / "edition.epub").write_bytes(  # in place, as an editor saving over it would
        small_book(stage(d) / "edition2.epub", 202, title="Edition Two").read_bytes())
    assert first_blocker.id == min(j.id for j in jobs(d) if j.name == "blocker.epub")

    def all_settled():
        js = [j for j in jobs(d) if j.name in ("blocker.epub", "victim.epub", "edition.epub")]
        return len(js) == 5 and all(j.status.value in ("done", "failed") for j in js)

    wait_until(d, all_settled, 60, "the five jobs to end")
    by = {}
    for j in jobs(d):
        by.setdefault(j.name, []).append(j)
    [victim] = by["victim.epub"]
    assert victim.status.value == "failed" and "no longer in the inbox" in victim.error
    old_ed, new_ed = sorted(by["edition.epub"], key=lambda j: j.id)
    assert old_ed.status.value == "failed" and "replaced by a different version" in old_ed.error, old_ed.error
    assert new_ed.status.value == "done" and new_ed.title == "Edition Two"
    old_bl, new_bl = sorted(by["blocker.epub"], key=lambda j: j.id)
    assert (old_bl.status.value, old_bl.title) == ("done", "Blocker One"), (old_bl, d.log()[-4000:])
    assert (new_bl.status.value, new_bl.title) == ("done", "Blocker Two"), (new_bl, d.log()[-4000:])
    assert Path(new_bl.output).is_file() and Path(old_bl.output).is_file() and new_bl.output != old_bl.output
    print(f"blocker rendered for {old_bl.finished_at - old_bl.started_at:.1f} s; "
          "1 deleted, 2 replaced: 2 failed with reasons, 3 done")
    # the daemon goes on
    small_book(stage(d) / "after.epub", 204, title="After The Storm").rename(inbox / "after.epub")
    wait_until(d, lambda: settled(d, ["after.epub"]), 30, "the next book")
    assert by_name(d)["after.epub"].status.value == "done"


ODD_NAMES = [
    "with  spaces in it.epub",
    "caf\u00e9 \u00e9t\u00e9.epub",
    "\u4e2d\u6587\u4e66\u540d.epub",
    "emoji \U0001f4da book.epub",
    "$(touch x).epub",
    "semi;colon; touch y.epub",
    "it's.epub",
    'say "hi".epub',
    "this & that & touch x.epub",
    "`touch y`.epub",
    "-rf --leading-dash.epub",
    "new\nline.epub",
    "back\\slash|pipe>gt<lt*star?.epub",
    "\u4e66" * 80 + ".epub",  # 245 bytes: the longest names leave no room for ".error.txt"
]
NASTY_TITLE = "$(touch x); `touch y` & 'q' \"d\" | z > w"


def sane(d, output: str) -> bool:
    path = Path(output)
    rel = path.relative_to(d.outbox)  # raises if outside
    assert path.resolve().is_relative_to(d.outbox.resolve())
    assert len(rel.parts) == 3 and rel.parts[2] == rel.parts[1] + ".m4b", rel
    for part in rel.parts:
        assert part not in ("", ".", "..") and not part.startswith(".")
        assert not any(unicodedata.category(ch) == "Cc" for ch in part), part
        assert "/" not in part and "\\" not in part
    return True


@pytest.mark.slow
def test_odd_names_are_sane_and_nothing_is_executed(d):
    files = {}
    for i, name in enumerate(ODD_NAMES):
        files[name] = small_book(stage(d) / f"odd-{i}.epub", 300 + i, title=f"Odd Name {i}")
    files["nasty-title.epub"] = small_book(stage(d) / "nasty.epub", 330, title=NASTY_TITLE, author="$(touch x)")
    files["escape-title.epub"] = small_book(stage(d) / "escape.epub", 331, title="../../../escape",
                                            author="../..")
    latin1 = "latin1-\udce9t\udce9.epub"  # b"latin1-\xe9t\xe9.epub" on disk: not UTF-8
    files[latin1] = small_book(stage(d) / "latin1.epub", 332, title="Not UTF-8")
    for name, src in files.items():
        os.rename(src, d.inbox / name)
    expected = {n: n for n in files}
    expected[latin1] = "latin1-\ufffdt\ufffd.epub"  # renamed so it can be stored and shown

    wait_until(d, lambda: settled(d, expected.values()), 60, "the oddly named books", poll=0.5)
    current = by_name(d)
    for name, job_name in expected.items():
        job = current[job_name]
        assert job.status.value == "done", (name, job.error)
        assert sane(d, job.output)
        moved = Path(job.source)
        assert moved.parent == d.inbox / "done" and moved.is_file(), job.source
    nasty = current["nasty-title.epub"]
    assert Path(nasty.output).parent.name == "$(touch x); `touch y` & 'q' d z w"
    assert current["escape-title.epub"].output.startswith(str(d.outbox) + "/")
    long = current["\u4e66" * 80 + ".epub"]
    assert len(os.fsencode(Path(long.source).name)) <= 255
    # nothing ran: no file named x or y anywhere the daemon could have written one
    for where in (d.root, d.inbox, d.outbox, Path.cwd(), Path("/tmp")):
        assert not (where / "x").exists() and not (where / "y").exists(), where
    assert not [p for p in d.root.rglob("*") if p.name in ("x", "y", "w")]
    print(f"{len(files)} odd names: all rendered, outputs under outbox/<Author>/<Title>/, nothing executed")


def test_output_folders_have_no_leading_or_trailing_spaces(d):
    job = by_name(d)["escape-title.epub"]
    parts = Path(job.output).relative_to(d.outbox).parts
    assert all(part == part.strip() for part in parts), parts


def test_manifest_with_its_cover_beside_it(d):
    """The cover a manifest names sits in the inbox beside it: it is never a job of its own
    (which would fail it and move it to failed/ before the manifest could read it)."""
    import json

    import mutagen.mp4
    import pymupdf

    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 32, 32), False)
    pix.clear_with(90)
    (stage(d) / "front.png").write_bytes(pix.tobytes("png"))
    (stage(d) / "with-cover.voxd.json").write_text(json.dumps({
        "voxd_manifest": 1, "title": "Manifest With Cover", "authors": ["Rel Tester"], "cover": "front.png",
        "chapters": [{"title": "One", "text": "A chapter written by hand."}],
    }))
    os.rename(stage(d) / "front.png", d.inbox / "front.png")
    os.rename(stage(d) / "with-cover.voxd.json", d.inbox / "with-cover.voxd.json")
    wait_until(d, lambda: settled(d, ["with-cover.voxd.json"]), 30, "the manifest")
    time.sleep(1.0)
    job = by_name(d)["with-cover.voxd.json"]
    assert job.status.value == "done", job.error
    assert "front.png" not in by_name(d)
    assert mutagen.mp4.MP4(job.output).tags["covr"], "no cover in the output"
    assert (d.inbox / "front.png").is_file()
    print("manifest + cover dropped together: 1 job (done, with the cover), 0 for the image")


def test_directories_and_symlinks_never_become_jobs(d):
    """Checked last, after the daemon has rescanned the inbox many times."""
    names = {j.name for j in jobs(d)}
    assert not names & d.never
    assert (d.inbox / "folder.epub").is_dir() and (d.inbox / "Some Folder" / "inside.epub").is_file()
    for link in ("linked.epub", "passwd.epub", "dangling.epub"):
        assert (d.inbox / link).is_symlink(), f"{link} was moved or replaced"
    assert (d.root / "outside" / "real.epub").read_bytes() == d.real_sha, "the symlink target was touched"
    assert (d.root / "outside" / "secret.txt").read_text() == "not a book"
    assert not list(d.outbox.rglob("Never Followed*")) and not list(d.outbox.rglob("Inside A Folder*"))
    assert d.proc.poll() is None
    assert "Traceback" not in d.log(), d.log()[-4000:]
    print(f"3 symlinks, 2 folders in the inbox for {time.monotonic() - d.started:.0f} s of 2 s rescans: 0 jobs")
