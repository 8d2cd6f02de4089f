"""Atomic writes, non-overwriting moves and start-up cleanup, on real folders."""

from voxd.files import move_into, remove_stale_temps, unique_path, write_text_atomic


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
