"""The first download of a model under the daemon, from a hub on 127.0.0.1 (tests/fakehub.py) serving
the tiny random-weight checkpoint at a throttled rate: the fetch is a phase of its own that pings the
watchdog and says its progress (STATUS=, voxd jobs) all through, and a daemon killed in the middle of
it takes up the download where it stopped when it starts again, then renders the book."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from tests.fakehub import FakeHub, partial_bytes
from tests.support import NotifySocket
from voxd.samples import build_sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = "test-org/Qwen3-TTS-tiny-CustomVoice"
WEIGHTS = "model.safetensors"
PIECE = 10 << 20  # huggingface_hub writes a file to disk in pieces of this size


def watch(d, sock: NotifySocket, hub: FakeHub, until, what: str, timeout: float = 180.0) -> list[tuple[str, int]]:
    """Every sd_notify message the daemon sends until ``until()``, each with the bytes the hub had
    sent by the time it arrived."""
    seen: list[tuple[str, int]] = []
    start = len(sock.drain())
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{d.log()[-5000:]}")
        if d.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({d.proc.returncode}) waiting for {what}:\n{d.log()[-5000:]}")
        messages = sock.drain()
        sent = hub.body_bytes(REPO)
        seen.extend((m, sent) for m in messages[start:])
        start = len(messages)
        time.sleep(0.02)
    seen.extend((m, hub.body_bytes(REPO)) for m in sock.drain()[start:])
    return seen


def during_download(seen: list[tuple[str, int]], size: int, kind: str) -> list[tuple[str, int]]:
    return [(m, sent) for m, sent in seen if m.startswith(kind) and 0 < sent < size]


def test_first_download_pings_reports_progress_and_resumes_after_a_kill(daemon_factory, tmp_path, tiny_qwen_dir):
    with FakeHub.from_folder(REPO, tiny_qwen_dir, bytes_per_second=2e6) as hub:
        size = hub.size(REPO)
        weights = len(hub.repos[REPO][WEIGHTS])
        assert weights > PIECE + (1 << 20)  # so that a kill can fall after a piece of it is on disk
        sock = NotifySocket(tmp_path / "notify.sock")
        d = daemon_factory(
            NOTIFY_SOCKET=str(sock.path), WATCHDOG_USEC="1000000", HF_ENDPOINT=hub.url,
            HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", VOXD_ENGINE="qwen",
            VOXD_QWEN__CUSTOM_VOICE_MODEL=REPO, VOXD_QWEN__CHECK_DURATIONS="false", OMP_NUM_THREADS="1",
        )
        d.start()
        shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")

        # The first run: watched until a piece of the weights is on disk, then killed.
        phases: list[str] = []

        def half_way() -> bool:
            if not any(p.startswith("downloading") for p in phases) and hub.file_bytes(REPO, WEIGHTS) >= 1 << 20:
                phases.extend(str(j.get("phase")) for j in d.jobs())  # voxd jobs, as a person runs it
            return partial_bytes(tmp_path / "hf") >= PIECE  # a piece is on disk, not only sent

        first = watch(d, sock, hub, half_way, "the download under way")
        d.kill()
        assert partial_bytes(tmp_path / "hf"), "the kill came after the download ended: nothing left to resume"

        # The second run: the download resumes, then the book is rendered with the fetched model.
        d.start()
        second = watch(d, sock, hub, d.outputs, "the audiobook", timeout=300)
        assert d.stop() == 0

    # Pings and progress all through the download, in both runs.
    pings = during_download(first, size, "WATCHDOG=1")
    assert len(pings) >= 3, first
    statuses = [m for m, _ in during_download(first + second, size, "STATUS=")]
    pattern = rf"STATUS=job 1: downloading {REPO}: [\d.]+ of [\d.]+ MB \(\d+%\).*"
    shown = [m for m in statuses if re.fullmatch(pattern, m)]
    assert len(shown) >= 2, statuses
    assert any(p.startswith(f"downloading {REPO}: ") and "%)" in p for p in phases), phases
    assert during_download(second, size, "WATCHDOG=1"), second

    # It resumed: the weights were asked for once whole, then once from where the first run's file
    # ended, and that answer was the rest of the file, not the file again.
    (whole, _), (asked, resumed) = hub.bodies(REPO, WEIGHTS)
    assert whole is None and asked is not None
    start = int(asked.removeprefix("bytes=").rstrip("-"))
    assert start >= PIECE
    assert resumed == weights - start
    log = d.log()
    assert "already here from an earlier try" in log and f"downloaded {REPO}" in log
    assert "loading Qwen3-TTS from" in log
    assert len(d.outputs()) == 1
