"""Kill -9 at 21 seeded crash points across ingest, render, assembly, publish and notify.

After each kill the daemon is started again and must finish the book exactly once:
one job done, one .m4b with the same chapters and duration as an uninterrupted
render, no chunk rendered before the kill rendered again, no temp file in the
outbox, and exactly one "done" notification.
"""

from __future__ import annotations

import random
import shutil
import signal
from pathlib import Path

import av
import pytest

from tests.support import Daemon
from voxd.samples import build_epub

from ..servers import HttpSink

SEED = 20261123
BATCHES = 12  # unique chunks (batch size 1) in the book below: 3 titles + 9 paragraphs
SINGLE = ["ingest", "assemble.closed", "publish.finished", "publish.moved", "notify.delivered"]


def crash_cases() -> list[str]:
    rng = random.Random(SEED)
    render = sorted(rng.sample(range(1, BATCHES), 8))
    assemble = sorted(rng.sample(range(1, BATCHES + 1), 8))
    return (
        ["ingest:1"]
        + [f"render.batch:{n}" for n in render]
        + [f"assemble.chunk:{n}" for n in assemble]
        + [f"{p}:1" for p in SINGLE[1:]]
    )


CASES = crash_cases()


def book(path: Path) -> Path:
    chapters = [
        (f"Chapter {c}", [f"Paragraph {p} of chapter {c} is short but real." for p in range(1, 4)])
        for c in range(1, 4)
    ]
    return build_epub(path, title="Crash Course", authors=("Ada Tester",), chapters=chapters,
                      identifier="voxd-crash-course")


def describe(path: Path) -> tuple[list[tuple[str, float]], float]:
    with av.open(str(path)) as container:
        chapters = [(c["metadata"].get("title"), round(float(c["start"] * c["time_base"]), 2))
                    for c in container.chapters()]
        return chapters, round(container.duration / 1e6, 2)


def make(root: Path, sink: HttpSink, **env: str) -> Daemon:
    d = Daemon(root, {"VOXD_ESPEAK__BATCH_SIZE": "1", "VOXD_SETTLE_SECONDS": "0.3", **env})
    d.append_config(f'notify_urls = ["{sink.url}"]\n')
    return d


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return book(tmp_path_factory.mktemp("book") / "crash.epub")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, source):
    with HttpSink() as sink:
        d = make(tmp_path_factory.mktemp("reference"), sink).start()
        try:
            shutil.copy(source, d.inbox / "crash.epub")
            [out] = d.wait_for(d.outputs, 120, "reference render")
            d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 30, "done")
            assert d.store().jobs()[0].chunks_total == BATCHES
            return describe(out)
        finally:
            d.stop()


def test_crash_cases_cover_every_phase():
    assert len(CASES) >= 20
    from voxd.faults import POINTS

    assert {c.split(":")[0] for c in CASES} == set(POINTS)


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", CASES)
def test_kill_at_crash_point_then_finish_exactly_once(crash_at, tmp_path, source, reference):
    with HttpSink() as sink:
        d = make(tmp_path, sink, VOXD_CRASH_AT=crash_at)
        d.start()
        shutil.copy(source, d.inbox / "crash.epub")
        _wait_exit(d, 120)
        assert d.proc.returncode == -signal.SIGKILL, d.log()[-3000:]

        cache = d.state / "cache"
        before = {p: p.stat().st_ino for p in cache.rglob("*.vxa")}

        d.env.pop("VOXD_CRASH_AT")
        d.start()
        d.wait_for(lambda: [j for j in d.store().jobs() if j.status.value == "done"], 120, "done after restart")
        d.wait_for(lambda: sink.received, 30, "the done notification")
        d.wait_for(lambda: not (d.inbox / "crash.epub").exists(), 30, "source tidied")
        d.wait_for(lambda: all(n.sent_at for n in d.store().notifications()), 30, "notification marked sent")
        assert d.stop() == 0

    jobs = d.store().jobs()
    assert [j.status.value for j in jobs] == ["done"]
    [out] = d.outputs()
    # eSpeak NG is not sample-exact from call to call (a few milliseconds per utterance),
    # so chunks rendered after the restart may differ by that much from the reference.
    chapters, duration = describe(out)
    ref_chapters, ref_duration = reference
    assert [t for t, _ in chapters] == [t for t, _ in ref_chapters]
    assert [s for _, s in chapters] == pytest.approx([s for _, s in ref_chapters], abs=0.15)
    assert duration == pytest.approx(ref_duration, abs=0.15)
    after = {p: p.stat().st_ino for p in cache.rglob("*.vxa")}
    rerendered = [p.name for p, ino in before.items() if after.get(p) != ino]
    assert rerendered == [], f"{len(rerendered)} chunks rendered again after the kill at {crash_at}"
    assert len(after) == BATCHES
    assert [p for p in d.outbox.rglob("*") if p.name.startswith(".")] == []
    assert (d.inbox / "done" / "crash.epub").is_file()
    assert [m["title"] for m in sink.received] == ["Audiobook ready: Crash Course"]
    assert [n.sent_at is not None for n in d.store().notifications()] == [True]


def _wait_exit(d: Daemon, timeout: float) -> None:
    try:
        d.proc.wait(timeout)
    except Exception:
        raise AssertionError(f"voxd did not die at its crash point:\n{d.log()[-3000:]}") from None
