"""A real voxd daemon in a subprocess, on real folders under tmp_path."""

from __future__ import annotations

import pytest

from tests.support import Daemon


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
