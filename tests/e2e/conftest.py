"""A real voxd daemon in a subprocess, on real folders under tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voxd.store import Store


class Daemon:
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


@pytest.fixture
def daemon_factory(tmp_path):
    started: list[Daemon] = []

    def make(name: str = "d", **env: str) -> Daemon:
        d = Daemon(tmp_path / name, env)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
