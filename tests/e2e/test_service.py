"""The daemon under a service manager: sd_notify messages, signals, notifications, config reload."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support import NotifySocket, long_book
from voxd.samples import build_sample

from ..servers import HttpSink

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_sd_notify_ready_status_watchdog_stopping(daemon_factory, tmp_path):
    sock = NotifySocket(tmp_path / "notify.sock")
    d = daemon_factory(NOTIFY_SOCKET=str(sock.path), WATCHDOG_USEC="1000000")
    d.start()
    d.wait_for(lambda: "READY=1" in sock.drain(), 10, "READY=1")
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    # read as it comes: a datagram socket nobody reads fills after a few messages
    d.wait_for(lambda: (sock.drain(), d.outputs())[1], 120, "output")
    d.wait_for(lambda: sock.drain().count("WATCHDOG=1") >= 2, 10, "watchdog pings")
    assert d.stop() == 0
    messages = sock.drain()
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert "STATUS=idle: waiting for books in the inbox" in statuses
    assert any(m.startswith("STATUS=job 1: 100%") for m in statuses), statuses
    assert any(re.fullmatch(r"STATUS=job 1: writing the \.m4b: \d+ of \d+ chapters", m) for m in statuses), statuses


@pytest.mark.slow
def test_sigterm_mid_render_requeues_and_resumes(daemon_factory, tmp_path):
    d = daemon_factory(VOXD_ESPEAK__BATCH_SIZE="1", VOXD_CHUNK_TARGET_CHARS="60", VOXD_CHUNK_MAX_CHARS="120")
    d.start()
    shutil.copy(long_book(tmp_path / "long.epub"), d.inbox / "long.epub")
    d.wait_for(lambda: (j := d.store().jobs()) and j[0].chunks_done >= 3, 120, "render under way")
    assert d.stop(timeout=30) == 0
    [job] = d.store().jobs()
    assert job.status.value == "queued" and job.attempts == 0
    assert "stopping" in d.store().events(job.id)[-1].message
    assert not d.outputs()
    d.start()
    d.wait_for(d.outputs, 180, "output after restart")
    assert d.store().jobs()[0].attempts == 1
    assert d.stop() == 0


@pytest.mark.slow
def test_notifications_reach_a_webhook_and_reload_on_sighup(daemon_factory, tmp_path):
    with HttpSink() as first, HttpSink() as second:
        d = daemon_factory()
        d.append_config(f'notify_urls = ["{first.secret_url}"]\nnotify_events = ["started", "done", "failed"]\n')
        d.start()
        shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
        d.wait_for(lambda: len(first.received) >= 2, 120, "started + done notifications")
        assert [m["title"] for m in first.received] == ["Rendering Down the Rabbit-Hole",
                                                        "Audiobook ready: Down the Rabbit-Hole"]
        assert "Lewis Carroll" in first.received[1]["message"]

        d.config.write_text(d.config.read_text().replace(first.secret_url, second.url))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: "configuration reloaded" in d.log(), 10, "reload")
        (d.inbox / "junk.epub").write_bytes(b"\x00" * 100)
        d.wait_for(lambda: second.received, 60, "failure notification at the new URL")
        assert second.received[0]["title"] == "voxd could not convert junk.epub"
        assert len(first.received) == 2
        assert "s3cret-pa55" not in d.log()  # credentials never logged
        assert d.stop() == 0


def test_bad_reload_keeps_running_settings(daemon_factory, tmp_path):
    import tomllib

    d = daemon_factory().start()
    good = d.config.read_text()
    # A file that is not TOML (a key given twice), then a TOML file with a value out of range:
    # each reload fails, naming the problem, and the running settings stay.
    d.config.write_text(good + "engine = 'nonsense'\n")
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(d.config.read_text())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: d.log().count("reload failed") == 1, 10, "reload error")
    d.config.write_text(good.replace('log_level = "DEBUG"', 'log_level = "LOUD"').replace(
        "rescan_seconds = 2.0", "rescan_seconds = 0.0"))
    assert tomllib.loads(d.config.read_text())["rescan_seconds"] == 0.0  # valid TOML, invalid values
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: d.log().count("reload failed") == 2, 10, "reload error for invalid values")
    [second] = [line for line in d.log().splitlines() if "reload failed" in line][1:]
    failure = d.log()[d.log().index(second):]
    assert "rescan_seconds" in failure and "log_level" in failure
    assert "configuration reloaded" not in d.log()
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    d.wait_for(d.outputs, 120, "still renders")
    assert " DEBUG " in d.log()[d.log().index(second):]  # the running log level stayed
    assert d.stop() == 0


@pytest.mark.slow
def test_render_window_holds_jobs_until_it_opens(daemon_factory, tmp_path):
    now = datetime.now()
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    d = daemon_factory()
    d.append_config(f'render_window = "{start:%H:%M}-{end:%H:%M}"\n')
    d.start()
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    d.wait_for(lambda: d.store().jobs(), 30, "queued")
    import time

    time.sleep(3)  # a worker that ignored the window would have claimed the job by now
    assert [j.status.value for j in d.store().jobs()] == ["queued"]
    # Open the window now (reload), and the job runs.
    d.config.write_text(d.config.read_text().replace(f"{start:%H:%M}-{end:%H:%M}", ""))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(d.outputs, 120, "render after the window opened")
    assert d.stop() == 0


def test_second_daemon_on_same_state_is_refused(daemon_factory):
    d = daemon_factory().start()
    out = subprocess.run(
        [*d.proc.args[:3], "run", "--config", str(d.config)], capture_output=True, text=True, env=d.env, timeout=60
    )
    assert out.returncode == 2
    assert "already running" in out.stderr
    assert d.stop() == 0


def test_invalid_config_fails_at_start_naming_the_key(tmp_path):
    import sys

    cfg = tmp_path / "voxd.toml"
    cfg.write_text("settle_seconds = -1\n")
    out = subprocess.run([sys.executable, "-m", "voxd", "run", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "settle_seconds" in out.stderr and str(cfg) in out.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["voxd.service", "voxd.user.service", "voxd-serve.service"])
def test_unit_files_verify(unit, tmp_path):
    # systemd-analyze checks that ExecStart exists: point it at a real executable in a copy.
    text = (REPO / "systemd" / unit).read_text()
    exe = shutil.which("true")
    text = text.replace("/opt/voxd/.venv/bin/voxd", exe).replace("%h/.local/share/voxd/.venv/bin/voxd", exe)
    copy = tmp_path / unit.replace(".user", "")
    copy.write_text(text)
    args = ["systemd-analyze", "verify"] + (["--user"] if ".user" in unit else []) + [str(copy)]
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**__import__("os").environ, "XDG_RUNTIME_DIR": str(runtime)}
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    problems = [line for line in out.stderr.splitlines() if str(copy.name) in line or "Unknown" in line]
    assert out.returncode == 0 and not problems, out.stderr
