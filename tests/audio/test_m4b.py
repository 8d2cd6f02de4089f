"""The M4B writer against the real AAC encoder, mp4 muxer and mutagen; no mocks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from mutagen.mp4 import MP4, MP4Cover

from voxd.audio.m4b import ChapterMark, M4bWriter
from voxd.book import Cover, Metadata
from voxd.errors import BookError

from ..support import tiny_png

RATE = 24000
CHAPTERS = (("Opening", 1.0, 440.0), ("Middle", 1.5, 880.0), ("Ending", 0.75, 220.0))
TOTAL = sum(seconds for _, seconds, _ in CHAPTERS)
META = Metadata(
    title="The Test Book",
    authors=("Ada Author", "Bo Writer"),
    language="en-US",
    description="A book made of sine tones.",
    date="2021-05-04",
)


def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_book(path: Path, cover: Cover | None = None) -> list[ChapterMark]:
    with M4bWriter(path, sample_rate=RATE, metadata=META, narrator="Nora Narrator", cover=cover) as w:
        for title, seconds, freq in CHAPTERS:
            w.start_chapter(title)
            w.write(tone(seconds, freq))
    return w.close()  # already closed by the with; returns the same list


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ChapterMark]]:
    path = tmp_path_factory.mktemp("book") / "book.m4b"
    marks = write_book(path, Cover(tiny_png(), "image/png"))
    return path, marks


def expected_starts() -> list[float]:
    starts, at = [], 0.0
    for _, seconds, _ in CHAPTERS:
        starts.append(at)
        at += seconds
    return starts


def test_close_returns_chapter_marks(book: tuple[Path, list[ChapterMark]]) -> None:
    _, marks = book
    assert [m.title for m in marks] == [title for title, _, _ in CHAPTERS]
    assert [m.start for m in marks] == pytest.approx(expected_starts())
    assert [m.end for m in marks] == pytest.approx(expected_starts()[1:] + [TOTAL])


def test_pyav_sees_one_aac_stream_and_the_chapters(book: tuple[Path, list[ChapterMark]]) -> None:
    path, _ = book
    with av.open(str(path)) as container:
        audio = [s for s in container.streams if s.type == "audio"]
        assert len(audio) == 1
        assert audio[0].codec_context.name == "aac"
        assert audio[0].codec_context.sample_rate == RATE
        assert audio[0].codec_context.channels == 1
        assert audio[0].metadata.get("language") == "eng"
        assert container.duration / av.time_base == pytest.approx(TOTAL, abs=0.05)
        assert container.metadata["major_brand"] == "M4B "
        chapters = container.chapters()
    assert [c["metadata"]["title"] for c in chapters] == [title for title, _, _ in CHAPTERS]
    starts = [float(c["start"] * c["time_base"]) for c in chapters]
    assert starts == pytest.approx(expected_starts(), abs=0.002)


def test_index_is_at_the_front(book: tuple[Path, list[ChapterMark]]) -> None:
    path, _ = book
    head = path.read_bytes()[:64]
    assert head[4:12] == b"ftypM4B "
    assert head.index(b"moov") < path.read_bytes().index(b"mdat")


def test_mutagen_sees_tags_cover_and_chapters(book: tuple[Path, list[ChapterMark]]) -> None:
    path, _ = book
    mp4 = MP4(path)
    tags = mp4.tags
    assert tags is not None
    assert tags["©nam"] == ["The Test Book"]
    assert tags["©alb"] == ["The Test Book"]
    assert tags["©ART"] == ["Ada Author, Bo Writer"]
    assert tags["aART"] == ["Ada Author, Bo Writer"]
    assert tags["©wrt"] == ["Nora Narrator"]
    assert tags["©gen"] == ["Audiobook"]
    assert tags["©day"] == ["2021-05-04"]
    assert tags["desc"] == ["A book made of sine tones."]
    assert tags["stik"] == [2]
    (cover,) = tags["covr"]
    assert cover.imageformat == MP4Cover.FORMAT_PNG
    assert bytes(cover) == tiny_png()
    assert mp4.chapters is not None
    assert [c.title for c in mp4.chapters] == [title for title, _, _ in CHAPTERS]
    assert [c.start for c in mp4.chapters] == pytest.approx(expected_starts(), abs=0.002)


def test_ffprobe_shows_chapters(book: tuple[Path, list[ChapterMark]]) -> None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not on PATH")
    path, _ = book
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_chapters", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    chapters = json.loads(out)["chapters"]
    assert [c["tags"]["title"] for c in chapters] == [title for title, _, _ in CHAPTERS]
    assert [float(c["start_time"]) for c in chapters] == pytest.approx(expected_starts(), abs=0.002)


def test_every_frame_decodes_to_the_tones_written(book: tuple[Path, list[ChapterMark]]) -> None:
    path, _ = book
    with av.open(str(path)) as container:
        blocks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    pcm = np.concatenate(blocks)
    assert abs(pcm.size - TOTAL * RATE) <= 2 * 1024  # encoder padding only
    assert np.all(np.isfinite(pcm))
    at = 0.0
    for _, seconds, freq in CHAPTERS:  # the loudest frequency mid-chapter is the tone
        middle = pcm[int((at + seconds / 2) * RATE) - 2048 :][:4096]
        spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
        assert np.fft.rfftfreq(middle.size, 1 / RATE)[spectrum.argmax()] == pytest.approx(freq, abs=10)
        at += seconds
    assert np.sqrt(np.mean(pcm[RATE // 10 : -RATE // 10] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_small_blocks_stream_and_duration_counts(tmp_path: Path) -> None:
    path = tmp_path / "blocks.m4b"
    rng = np.random.default_rng(7)
    pcm = (0.1 * rng.standard_normal(2 * RATE + 123)).astype(np.float32)
    with M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        w.start_chapter("Only")
        at = 0
        while at < pcm.size:
            size = int(rng.integers(0, 700))  # zero-length blocks included
            w.write(pcm[at : at + size])
            at = min(at + size, pcm.size)
            assert w.duration == at / RATE
    assert w.close() == [ChapterMark("Only", 0.0, pcm.size / RATE)]
    with av.open(str(path)) as container:
        assert container.duration / av.time_base == pytest.approx(pcm.size / RATE, abs=0.05)
        decoded = sum(f.samples for f in container.decode(audio=0))
    assert abs(decoded - pcm.size) <= 2 * 1024


def test_exception_inside_with_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "broken.m4b"
    with pytest.raises(RuntimeError, match="renderer died"), M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        w.start_chapter("One")
        w.write(tone(1.0, 440.0))  # packets are muxed: the header is on disk
        raise RuntimeError("renderer died")
    assert list(tmp_path.iterdir()) == []


def test_temp_file_sits_beside_the_target_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "book.m4b"
    with M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        w.write(tone(0.1, 440.0))
        (temp,) = tmp_path.iterdir()
        assert temp.name.startswith(".book.m4b.") and temp.name.endswith(".tmp")
        assert not path.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_empty_book_is_a_book_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.m4b"
    with pytest.raises(BookError, match="nothing to encode"), M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        w.start_chapter("Silent")
        w.write(np.zeros(0, dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


def test_three_hundred_chapters_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "many.m4b"
    block = tone(0.05, 440.0)
    with M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        for n in range(300):
            w.start_chapter(f"Chapter {n + 1}")
            w.write(block)
    marks = w.close()
    assert len(marks) == 300
    with av.open(str(path)) as container:
        chapters = container.chapters()
    assert [c["metadata"]["title"] for c in chapters] == [f"Chapter {n + 1}" for n in range(300)]
    assert float(chapters[-1]["start"] * chapters[-1]["time_base"]) == pytest.approx(299 * 0.05, abs=0.002)
    # the 255-entry chpl atom would list a cut-short book: it is hidden, tags still load
    mp4 = MP4(path)
    assert not mp4.chapters
    assert mp4.tags is not None and mp4.tags["stik"] == [2]


def test_chapter_edges(tmp_path: Path) -> None:
    path = tmp_path / "edges.m4b"
    long_title = "Ünïcode " * 60  # ~540 bytes, longer than chpl allows
    with M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        w.write(tone(0.2, 440.0))  # before any chapter: belongs to the first
        w.start_chapter("Replaced, never had audio")
        w.start_chapter("First")
        w.write(tone(0.3, 440.0))
        w.start_chapter(long_title)
        w.write(tone(0.3, 440.0))
        w.start_chapter("   ")
        w.write(tone(0.2, 440.0))
    marks = w.close()
    assert [m.title for m in marks][:1] == ["First"]
    assert marks[0].start == 0.0 and marks[1].start == pytest.approx(0.5)
    assert len(marks[1].title.encode()) <= 255 and long_title.startswith(marks[1].title)
    assert marks[2].title == "Chapter 3"
    mp4 = MP4(path)  # a title cut mid-character would make mutagen refuse the file
    assert mp4.chapters is not None and [c.title for c in mp4.chapters] == [m.title for m in marks]


def test_closed_writer_refuses_more_audio(tmp_path: Path) -> None:
    with M4bWriter(tmp_path / "done.m4b", sample_rate=RATE, metadata=META) as w:
        w.write(tone(0.1, 440.0))
    with pytest.raises(ValueError, match="closed"):
        w.write(tone(0.1, 440.0))


# -- file mode, part titles, sidecars -------------------------------------------------------

from voxd.audio.m4b import audiobookshelf_metadata, part_title, write_sidecars  # noqa: E402

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9"  # enough to be recognised as JPEG


@pytest.fixture
def umask_027():
    import os

    old = os.umask(0o027)
    yield
    os.umask(old)


def test_book_and_sidecars_get_the_umask_mode_not_mkstemps_0600(tmp_path: Path, umask_027) -> None:
    path = tmp_path / "book.m4b"
    with M4bWriter(path, sample_rate=RATE, metadata=META) as w:
        w.start_chapter("One")
        w.write(tone(0.2, 440.0))
    written = write_sidecars(tmp_path, META, narrator=None, cover=Cover(JPEG, "image/jpeg"), chapters=w.close())
    for file in [path, *written]:
        assert file.stat().st_mode & 0o777 == 0o640, file.name  # readable by a media server's group


def test_part_titles_keep_their_number() -> None:
    assert part_title("Chapter Five", 2, 5) == "Chapter Five (2)"
    assert part_title("  ", 3, 7) == "Chapter 7 (3)"
    long = part_title("Ünïcode " * 60, 12, 1)
    assert long.endswith(" (12)") and len(long.encode("utf-8")) <= 255
    long.encode("utf-8").decode("utf-8")  # cut on a character boundary


def test_sidecars_for_audiobookshelf(tmp_path: Path) -> None:
    meta = Metadata(
        title="The Test Book",
        authors=("Ada Author", "Bo Writer"),
        language="en-US",
        description="A book made of sine tones.",
        publisher="Tone Press",
        date="2021-05-04",
        series="Tones",
        series_index="2",
    )
    marks = [ChapterMark("Opening", 0.0, 1.0), ChapterMark("Middle", 1.0, 2.5004)]
    written = write_sidecars(tmp_path, meta, narrator="Nora Narrator", cover=Cover(tiny_png(), "image/png"),
                             chapters=marks)
    assert [p.name for p in written] == ["cover.png", "metadata.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cover.png", "metadata.json"]  # no temp files left
    assert (tmp_path / "cover.png").read_bytes() == tiny_png()
    doc = json.loads((tmp_path / "metadata.json").read_text(encoding="utf-8"))
    assert doc == {
        "tags": [],
        "chapters": [
            {"id": 0, "start": 0.0, "end": 1.0, "title": "Opening"},
            {"id": 1, "start": 1.0, "end": 2.5, "title": "Middle"},
        ],
        "title": "The Test Book",
        "subtitle": None,
        "authors": ["Ada Author", "Bo Writer"],
        "narrators": ["Nora Narrator"],
        "series": ["Tones #2"],
        "genres": ["Audiobook"],
        "publishedYear": "2021",
        "publishedDate": None,
        "publisher": "Tone Press",
        "description": "A book made of sine tones.",
        "isbn": None,
        "asin": None,
        "language": "en-US",
        "explicit": False,
        "abridged": False,
    }


def test_jpeg_cover_is_cover_jpg_and_files_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text("stale")
    write_sidecars(tmp_path, META, narrator=None, cover=Cover(JPEG, "image/jpeg"), chapters=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cover.jpg", "metadata.json"]
    assert (tmp_path / "cover.jpg").read_bytes() == JPEG
    assert json.loads((tmp_path / "metadata.json").read_text())["chapters"] == []


def test_unknown_cover_formats_and_missing_fields(tmp_path: Path) -> None:
    bare = Metadata(title="Bare")
    write_sidecars(tmp_path, bare, narrator=None, cover=Cover(b"GIF89a...", "image/gif"), chapters=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json"]
    doc = json.loads((tmp_path / "metadata.json").read_text())
    assert doc["authors"] == [] and doc["narrators"] == [] and doc["series"] == []
    assert doc["publishedYear"] is None and doc["language"] is None


@pytest.mark.parametrize(
    ("series", "index", "expected"),
    [("Saga", "3.0", ["Saga #3"]), ("Saga", "1.5", ["Saga #1.5"]), ("Saga", None, ["Saga"]),
     (None, "2", []), ("  ", "2", [])],
)
def test_series_as_audiobookshelf_writes_it(series, index, expected) -> None:
    meta = Metadata(title="T", series=series, series_index=index)
    assert audiobookshelf_metadata(meta, narrator=None, chapters=[])["series"] == expected


def test_a_failed_sidecar_write_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    import os

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_sidecars(tmp_path, META, narrator=None, cover=None, chapters=[])
    assert list(tmp_path.iterdir()) == []


def voiced(seconds: float) -> np.ndarray:
    """A gliding voice with harmonics and a syllable rhythm: speech-like enough to load the coder."""
    t = np.arange(round(seconds * RATE)) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    return (0.25 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("bitrate", [32000, 64000, 128000])
def test_each_bitrate_and_its_coder_keep_the_voice(tmp_path: Path, bitrate: int) -> None:
    """Below 64 kbps the twoloop coder, from there the fast one: both stay within the
    asked-for bitrate and give audio that decodes back to what was written."""
    path = tmp_path / "voice.m4b"
    pcm = voiced(6.0)
    with M4bWriter(path, sample_rate=RATE, metadata=META, bitrate=bitrate) as w:
        w.start_chapter("Only")
        w.write(pcm)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    audio_bytes = path.stat().st_size - 4096  # less the moov and tags, roughly
    assert audio_bytes * 8 / 6.0 < bitrate * 1.2
    n = min(pcm.size, decoded.size) - RATE // 10
    error = decoded[:n] - pcm[:n]
    snr = 10 * np.log10(np.sum(pcm[:n] ** 2) / np.sum(error**2))
    assert snr > {32000: 8, 64000: 25, 128000: 25}[bitrate]


def test_coder_follows_the_bitrate() -> None:
    from voxd.audio.m4b import aac_coder

    assert [aac_coder(b) for b in (16000, 48000, 63999, 64000, 96000)] == [
        "twoloop", "twoloop", "twoloop", "fast", "fast"
    ]
