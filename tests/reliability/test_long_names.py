"""Titles and file names in any script, as long as voxd allows, through a running daemon.

File systems count a name's bytes (255), not its characters: a title of 120 Japanese or
Chinese characters is 360 bytes, one of 120 Cyrillic letters 240, before ".m4b" and the
temporary name's dressing. Every such book must become an audiobook, every moved source
and error note must fit, and nothing may be left behind: no empty outbox folder, no
temp file.
"""

from __future__ import annotations

import os
from pathlib import Path

import mutagen.mp4
import pytest

from voxd.samples import build_epub

from .support import by_name, drop, start_daemon, stop_daemon, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOKS = {
    # file name: (title, author, language, chapter title, paragraph)
    "ja.epub": ("吾輩は猫である。名前はまだ無い" * 8, "夏目漱石" * 10, "ja", "第一章",
                "吾輩は猫である。名前はまだ無い。"),
    "zh.epub": ("红楼梦是一部小说" * 15, "曹雪芹", "zh", "第一回", "红楼梦是一部小说。"),
    "ko.epub": ("한국어로된책의제목" * 15, "김소월", "ko", "제1장", "한국어 책입니다."),
    "ru.epub": ("ПреступлениеНаказание" * 6, "Достоевский", "ru", "Часть", "Преступление и наказание."),
}
#: Inbox names as long as a file system allows (with room for voxd's own temp dressing elsewhere).
LONG_GOOD = "\u672c" * 80 + ".epub"  # 245 bytes
LONG_BAD = "\u00e9" * 120 + ".epub"  # 245 bytes, and not a zip: it fails, with a note beside it


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("names")
    stage = root / "stage"
    stage.mkdir()
    d = start_daemon(root / "d")
    try:
        for name, (title, author, language, chapter, paragraph) in BOOKS.items():
            build_epub(stage / name, title=title, authors=(author,), chapters=[(chapter, [paragraph])],
                       language=language, identifier=f"voxd-names-{name}")
            drop(stage / name, d.inbox)
        build_epub(stage / "long.epub", title="A Long File Name", authors=("Rel Tester",),
                   chapters=[("One", ["A book whose file name is long."])], identifier="voxd-names-long")
        drop(stage / "long.epub", d.inbox, LONG_GOOD)
        (stage / "bad.epub").write_bytes(b"not a zip at all")
        drop(stage / "bad.epub", d.inbox, LONG_BAD)
        names = [*BOOKS, LONG_GOOD, LONG_BAD]
        wait_until(d, lambda: all(by_name(d).get(n) and by_name(d)[n].status.value in ("done", "failed")
                                  for n in names), 240, "every book to finish")
        yield d
    finally:
        stop_daemon(d)


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_a_title_in_any_script_becomes_an_audiobook(run, name: str) -> None:
    job = by_name(run)[name]
    assert job.status.value == "done", job.error
    assert job.output is not None
    output = Path(job.output)
    assert output.is_file() and output.parent.parent.parent == run.outbox
    title = BOOKS[name][0]
    assert mutagen.mp4.MP4(output).tags["\xa9nam"] == [title]  # the tag keeps the whole title
    assert title.startswith(output.parent.name)  # the folder holds as much of it as fits
    assert len(os.fsencode(output.name)) <= 255


def test_a_long_file_name_moves_to_done_and_a_bad_one_to_failed_with_its_note(run) -> None:
    assert by_name(run)[LONG_GOOD].status.value == "done"
    bad = by_name(run)[LONG_BAD]
    assert bad.status.value == "failed" and "not a valid EPUB" in (bad.error or "")
    done = [p.name for p in (run.inbox / "done").iterdir()]
    failed = sorted(p.name for p in (run.inbox / "failed").iterdir())
    assert len(done) == len(BOOKS) + 1 and any(n.endswith("\u2026.epub") for n in done)
    [moved, note] = failed
    assert note == moved + ".error.txt" and moved.endswith("\u2026.epub")
    assert "not a valid EPUB" in (run.inbox / "failed" / note).read_text(encoding="utf-8")


def test_nothing_is_left_behind(run) -> None:
    leftovers = [p for p in run.outbox.rglob(".*.tmp")] + [p for p in run.inbox.rglob(".*.tmp")]
    empty = [p for p in run.outbox.rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert not leftovers and not empty
    assert "File name too long" not in run.log()
