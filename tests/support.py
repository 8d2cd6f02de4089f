"""Helpers more than one test module uses; test modules import from here, never from each other."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from tests.servers import free_port


def recording(path: Path) -> Path:
    """A real speech recording (eSpeak NG, about 10 s) to clone a voice from, written to ``path``."""
    import soundfile

    from voxd.tts.base import Utterance
    from voxd.tts.espeak import EspeakEngine

    speech = EspeakEngine().synthesize([Utterance(
        "A recording of my own voice, read slowly, for a clone that lasts a whole book long.", "en-us")])
    soundfile.write(path, np.concatenate([speech.waveforms[0]] * 2), speech.sample_rate)
    return path


class ServeProcess:
    """A real ``voxd serve`` in a subprocess on a loopback port, its log in a file.

    ``extra_config`` is appended to its config file (e.g. ``"[serve]\\nmax_queue = 1\\n"``).
    """

    def __init__(self, root: Path, *, engine: str = "espeak", key: str = "test-key", extra_config: str = "",
                 port: int | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.key = key
        self.engine = engine
        self.config = root / "serve.toml"
        self.config.write_text(f'state_dir = "state"\nlog_level = "DEBUG"\n{extra_config}')
        self.log_path = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "VOXD_SERVE__API_KEY": self.key}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voxd", "serve", "--config", str(self.config), "--engine", self.engine,
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"voxd serve exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"voxd serve did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as a crashed machine would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requested(self) -> list[str]:
        """Digests (sha256 of the text, 12 hex digits) of every text this server was asked to speak."""
        return _digests(self.log(), "speech asked")

    def answered(self) -> list[str]:
        """Digests of every text this server answered with audio."""
        return _digests(self.log(), "speech answered")


def text_digest(text: str) -> str:
    """How ``voxd serve`` names a text in its debug log."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:12]


def _digests(log: str, marker: str) -> list[str]:
    return re.findall(marker + r" ([0-9a-f]{12})", log)
