"""Disk full while writing the cache or the audiobook, on real small tmpfs mounts.

The job is warned about before its render (its history says the disk may fill), pauses
with "no space left" (its attempts untouched), nothing half-written reaches the outbox,
and it finishes by itself once space returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import Daemon
from voxd.samples import build_sample


def _mount(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return out.returncode == 0


@pytest.fixture
def small_fs(tmp_path):
    mounts: list[Path] = []

    def make(name: str, size: str) -> Path:
        path = tmp_path / name
        if not _mount(path, size):
            pytest.skip("needs root and tmpfs mounts to fill a real filesystem")
        mounts.append(path)
        return path

    yield make
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path) -> Path:
    """Take every free byte of the filesystem holding folder."""
    filler = folder / "filler.bin"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


@pytest.mark.slow
@pytest.mark.parametrize("where", ["cache", "outbox"])
def test_full_disk_pauses_then_resumes_when_space_returns(where, small_fs, tmp_path):
    root = tmp_path / "d"
    disk = small_fs("disk", "8m")
    env = {"VOXD_RETRY_DELAY_SECONDS": "0.5", "VOXD_MAX_ATTEMPTS": "1"}
    if where == "cache":
        env["VOXD_CACHE_DIR"] = str(disk / "cache")
    else:
        env["VOXD_OUTBOX"] = str(disk / "outbox")
    d = Daemon(root, env)
    if where == "outbox":
        d.outbox = disk / "outbox"
    (disk / where).mkdir()
    filler = fill(disk)
    d.start()
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")

    def paused():
        events = [e for e in d.store().events() if e.kind == "requeued"]
        return len(events) >= 2 and events

    events = d.wait_for(paused, 60, "the job to pause on the full disk")
    assert "no space left" in events[0].message.lower()
    [job] = d.store().jobs()
    assert job.status.value in ("queued", "running") and job.attempts <= 1  # max_attempts=1, never failed
    assert d.outputs() == []  # nothing half-written was published
    warned = [e.message for e in d.store().events(job.id) if e.kind == "disk"]
    assert warned and "the render may fill the disk" in warned[0]  # said before the render began

    filler.unlink()  # space returns
    [out] = d.wait_for(d.outputs, 60, "the book after space returned")
    d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 30, "the job marked done")
    assert out.stat().st_size > 10_000
    assert [p for p in (disk / where).rglob("*") if p.is_file() and p.name.startswith(".")] == []
    assert d.stop() == 0
