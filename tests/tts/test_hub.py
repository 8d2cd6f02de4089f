"""Fetching a model from a hub (a real HTTP server on 127.0.0.1 speaking the hub's protocol, throttled
so a fetch takes seconds): progress with a total, reported all through the download, resumption,
a stalled download given up, a model the hub does not have, and no network once a model is here."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.fakehub import FakeHub
from voxd.errors import ConfigError, Unavailable
from voxd.tts import hub
from voxd.tts.hub import FetchProgress, fetch, on_disk
from voxd.tts.qwen_checkpoint import complete_checkpoint

REPO = "test-org/Qwen3-TTS-tiny-CustomVoice"


def checkpoint_files(weights_mb: int = 6) -> dict[str, bytes]:
    """A checkpoint in the Qwen3-TTS layout (what complete_checkpoint looks for), with weights of
    random bytes: enough to download, never loaded."""
    rng = os.urandom
    return {
        "config.json": b'{"tts_model_type": "custom_voice"}',
        "generation_config.json": b"{}",
        "model.safetensors": rng(weights_mb << 20),
        "speech_tokenizer/config.json": b'{"model_type": "qwen3_tts_tokenizer_12hz"}',
        "speech_tokenizer/model.safetensors": rng(2 << 20),
    }


@pytest.fixture
def hub_at(monkeypatch, tmp_path):
    """Point huggingface_hub, in this process, at a given hub URL and a fresh cache (its HTTP
    sessions are made anew, before and after: one made while offline stays offline)."""
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import reset_sessions

    def point(url: str) -> Path:
        cache = tmp_path / "hf" / "hub"
        monkeypatch.setattr(constants, "ENDPOINT", url)
        template = url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", constants.HF_HUB_DISABLE_XET)  # restored after
        reset_sessions()
        return cache

    yield point
    reset_sessions()


@pytest.mark.slow
def test_fetch_reports_a_total_and_progress_all_through_the_download(hub_at):
    files = checkpoint_files()
    with FakeHub({REPO: files}, bytes_per_second=3e6) as server:
        hub_at(server.url)
        seen: list[tuple[FetchProgress, int]] = []  # each report, and what the server had sent by then
        path = fetch(REPO, complete=complete_checkpoint, every=0.2,
                     report=lambda p: seen.append((p, server.body_bytes(REPO))))
    size = server.size(REPO)
    assert complete_checkpoint(Path(path))
    for name, data in files.items():
        assert hashlib.sha256((Path(path) / name).read_bytes()).digest() == hashlib.sha256(data).digest()
    *during, last = seen
    assert last[0].finished and last[0].done == size
    assert all(p.total == size for p, _ in during)
    percents = [p.percent for p, _ in during]
    assert percents == sorted(percents) and all(0 <= pct <= 100 for pct in percents)
    # Reports kept coming while the body was on its way: in its first half and in its second.
    sent = [n / size for _, n in during]
    assert any(0 < f < 0.5 for f in sent) and any(0.5 <= f < 1 for f in sent), sent
    assert "% of" not in during[-1][0].describe() and "MB (" in during[-1][0].describe()


def test_once_a_model_is_here_no_network_is_asked(hub_at):
    with FakeHub({REPO: checkpoint_files(1)}) as server:
        hub_at(server.url)
        first = fetch(REPO, complete=complete_checkpoint)
        asked = len(server.requests)
    # The server is gone now: the model is found on disk.
    assert fetch(REPO, complete=complete_checkpoint) == first
    assert asked > 0
    state = on_disk(REPO, complete_checkpoint)
    assert state.complete and state.size == server.size(REPO)


def test_a_model_the_hub_does_not_have_is_a_configuration_error(hub_at):
    with FakeHub({REPO: checkpoint_files(1)}) as server:
        hub_at(server.url)
        with pytest.raises(ConfigError, match=r"qwen.base_model: the Hugging Face hub has no model 'nobody/nothing'"):
            fetch("nobody/nothing", complete=complete_checkpoint, setting="qwen.base_model")


def wait_for_fetch_threads(seconds: float = 60.0) -> None:
    """Until a download the fetch gave up waiting for, still running in its thread, has ended."""
    import threading
    import time

    deadline = time.monotonic() + seconds
    while any(t.name == "voxd-fetch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_a_stalled_download_is_given_up_and_the_next_fetch_resumes_it(hub_at):
    # huggingface_hub writes a file in 10 MB pieces: stall past the first one.
    files = checkpoint_files(12)
    size = len(files["model.safetensors"])
    with FakeHub({REPO: files}, stall_after=11 << 20) as server:
        hub_at(server.url)
        with pytest.raises(Unavailable, match="has received nothing for 3 s"):
            fetch(REPO, complete=complete_checkpoint, every=0.1, stall_seconds=3.0)
        state = on_disk(REPO, complete_checkpoint)
        assert not state.complete and state.size >= 10 << 20  # what came is kept for the next try
        server.release.set()  # the stalled connection ends short
        wait_for_fetch_threads()
        first = server.body_bytes(REPO)
        path = fetch(REPO, complete=complete_checkpoint)
        [(_, asked)] = [(name, rng) for name, rng in server.ranges() if name.endswith("/model.safetensors")]
    start = int(asked.removeprefix("bytes=").rstrip("-"))
    assert start >= 10 << 20  # asked for the rest only
    assert server.body_bytes(REPO) - first < size  # and the weights did not come again whole
    assert (Path(path) / "model.safetensors").read_bytes() == files["model.safetensors"]


@pytest.mark.slow
def test_a_report_that_raises_ends_the_wait(hub_at):
    class Stop(Exception):
        pass

    def stop(progress: FetchProgress) -> None:
        raise Stop

    with FakeHub({REPO: checkpoint_files(2)}, bytes_per_second=2e6) as server:
        hub_at(server.url)
        with pytest.raises(Stop):
            fetch(REPO, complete=complete_checkpoint, every=0.1, report=stop)
        assert server.body_bytes(REPO) < server.size(REPO)
        wait_for_fetch_threads()  # the download goes on in its thread, and ends
    assert on_disk(REPO, complete_checkpoint).complete


def test_describe_speaks_in_the_totals_unit():
    assert FetchProgress("Qwen/X", 1_230_000_000, 4_520_000_000, 7.5e6).describe() == \
        "downloading Qwen/X: 1.23 of 4.52 GB (27%), 7.5 MB/s"
    assert FetchProgress("t/x", 12_300_000, 23_500_000).describe() == "downloading t/x: 12.3 of 23.5 MB (52%)"
    assert FetchProgress("t/x", 23_500_000, 23_500_000, finished=True).describe() == "downloaded t/x (23.5 MB)"
    assert hub.size_text(None) == "0.0 MB"


def test_the_qwen_engine_fetches_only_the_checkpoints_its_voices_need(hub_at, tmp_path):
    from voxd.tts.qwen import QwenEngine
    from voxd.tts.qwen_voices import QwenVoices
    from voxd.voices import VoiceLibrary

    custom, design = "test-org/tiny-CustomVoice", "test-org/tiny-VoiceDesign"
    with FakeHub({custom: checkpoint_files(1), design: checkpoint_files(1)}) as server:
        hub_at(server.url)
        library = VoiceLibrary(tmp_path / "voices")
        library.add_design("Warm", "a warm, low, unhurried voice")
        engine = QwenVoices(QwenEngine(custom), library, base_model="test-org/not-needed-Base",
                            design_model=design, options={"device": "cpu"})
        reports: list[FetchProgress] = []
        engine.prepare(["Warm"], reports.append)
        assert on_disk(design, complete_checkpoint).complete
        assert not on_disk(custom, complete_checkpoint).size  # no preset voice: not fetched
        assert reports[-1].finished and reports[-1].model == design
        engine.prepare(["Ryan", "Warm"], reports.append)
        assert on_disk(custom, complete_checkpoint).complete
        assert not [path for _, path, _ in server.requests if "not-needed" in path]


def test_a_hub_that_cannot_be_reached_is_said_in_a_sentence(hub_at):
    """No ``ConnectionError(MaxRetryError('HTTPConnectionPool(...`` in the reason `voxd jobs`
    shows: where it could not connect, and why, in words."""
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hub_at(f"http://127.0.0.1:{port}")
    with pytest.raises(Unavailable) as caught:
        fetch(REPO, complete=complete_checkpoint, setting="qwen.custom_voice_model")
    reason = str(caught.value)
    assert f"could not connect to 127.0.0.1:{port} (the connection was refused)" in reason, reason
    assert "MaxRetryError" not in reason and "ConnectionPool" not in reason and "object at 0x" not in reason
