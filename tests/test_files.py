"""Atomic writes, non-overwriting moves and start-up cleanup, on real folders."""

import os
import stat

import pytest

from voxd.files import (
    atomic_path,
    atomic_write,
    move_into,
    new_file_mode,
    new_temp,
    remove_stale_temps,
    remove_temps_of,
    rename_into_place,
    temp_beside,
    unique_path,
    write_bytes_atomic,
    write_text_atomic,
)


def test_write_text_atomic_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "note.txt"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["note.txt"]


def test_move_never_overwrites(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "book.epub").write_text("old")
    src = tmp_path / "book.epub"
    src.write_text("new")
    moved = move_into(src, tmp_path / "done")
    assert moved.name == "book (2).epub" and moved.read_text() == "new"
    assert (tmp_path / "done" / "book.epub").read_text() == "old"
    assert unique_path(tmp_path / "done", "book.epub").name == "book (3).epub"


def test_stale_temps_removed_but_nothing_else(tmp_path):
    out = tmp_path / "outbox" / "Author" / "Title"
    out.mkdir(parents=True)
    (out / ".Title.m4b.x1y2.tmp").write_bytes(b"half")
    (out / "Title.m4b").write_bytes(b"whole")
    (out / ".hidden").write_bytes(b"keep")
    removed = remove_stale_temps(tmp_path / "outbox", tmp_path / "missing")
    assert [p.name for p in removed] == [".Title.m4b.x1y2.tmp"]
    assert sorted(p.name for p in out.iterdir()) == [".hidden", "Title.m4b"]


def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "book.m4b"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".book.m4b.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer died")
    assert [p.name for p in tmp_path.iterdir()] == ["book.m4b"] and target.read_bytes() == b"old"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["book.m4b"] and target.read_bytes() == b"new"


def test_atomic_write_is_private_unless_told_otherwise(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "note.txt", b"private")
        with atomic_write(tmp_path / "cover.jpg", mode=new_file_mode()) as fh:
            fh.write(b"shared")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "note.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cover.jpg").stat().st_mode) == 0o644
    assert (tmp_path / "cover.jpg").read_bytes() == b"shared"


def test_a_temp_picked_up_by_name_later_and_the_leftovers_of_a_killed_writer(tmp_path):
    target = tmp_path / "Title [Unabridged].m4b"
    with temp_beside(target) as tmp:
        tmp.write_bytes(b"whole")
        rename_into_place(tmp, tmp_path / "elsewhere.m4b")
    assert [p.name for p in tmp_path.iterdir()] == ["elsewhere.m4b"]
    left = new_temp(target)
    other = new_temp(tmp_path / "Other.m4b")
    assert remove_temps_of(target) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["elsewhere.m4b", other.name])


# -- names as file systems count them: bytes -----------------------------------------------------

NAME_MAX = 255


def test_a_name_that_fits_gets_a_temp_name_that_fits_whatever_its_script(tmp_path):
    """File systems allow 255 bytes; '.<name>.<random>.tmp' adds 14. A name of 85 Japanese
    characters (255 bytes) or 127 accented letters (254) must still be writable atomically."""
    for name in ("\u672c" * 80 + ".m4b", "\u00e9" * 125 + ".m4b", "a" * 251 + ".m4b"):
        target = tmp_path / name
        assert len(os.fsencode(name)) <= NAME_MAX
        write_bytes_atomic(target, b"whole")
        assert target.read_bytes() == b"whole"
        left = new_temp(target)
        assert len(os.fsencode(left.name)) <= NAME_MAX
        assert remove_temps_of(target) == [left]
        assert [p.name for p in tmp_path.iterdir()] == [name]
        target.unlink()


def test_fit_bytes_cuts_between_whole_characters():
    from voxd.files import fit_bytes

    assert fit_bytes("short", 200) == "short"
    cut = fit_bytes("\u672c" * 100, 200)
    assert cut == "\u672c" * 66 and len(cut.encode()) == 198
    # "é" written as e + U+0301: the letter goes with its accent, never without it
    assert fit_bytes("ab" + "e\u0301" * 3, 5) == "abe\u0301"
    assert fit_bytes("ab" + "e\u0301" * 3, 4) == "ab"
    # a family emoji (joined by U+200D) is not left ending in a joiner
    assert not fit_bytes("x" + "\U0001f468\u200d\U0001f469\u200d\U0001f467", 12).endswith("\u200d")


def test_unique_name_for_a_long_name_still_fits(tmp_path):
    name = "\u00e9" * 125 + ".epub"  # 255 bytes
    (tmp_path / name).write_bytes(b"first")
    second = unique_path(tmp_path, name)
    assert second.name.endswith(" (2).epub") and len(os.fsencode(second.name)) <= NAME_MAX
    second.write_bytes(b"second")
    assert unique_path(tmp_path, name).name.endswith(" (3).epub")
