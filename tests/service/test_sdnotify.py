"""The sd_notify protocol against a real unix datagram socket."""

import os
import socket
import threading
from pathlib import Path

from voxd.service import sdnotify
from voxd.service.sdnotify import notify, watchdog_interval


def test_sends_datagram(tmp_path, monkeypatch):
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1")
        assert notify("STATUS=rendering 5%")
        assert sock.recv(100) == b"READY=1"
        assert sock.recv(100) == b"STATUS=rendering 5%"


def test_abstract_socket(monkeypatch):
    name = f"voxd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"


def test_a_socket_nobody_reads_drops_messages_instead_of_blocking(tmp_path, monkeypatch):
    # A unix datagram socket queues a few messages (net.unix.max_dgram_qlen, 10 by default);
    # past that a blocking send waits for the reader, here forever.
    monkeypatch.setattr(sdnotify, "SEND_TIMEOUT", 30.0)  # STATUS= does not wait at all
    qlen = Path("/proc/sys/net/unix/max_dgram_qlen")
    count = (int(qlen.read_text()) if qlen.exists() else 10) + 5
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        sent: list[bool] = []
        sender = threading.Thread(target=lambda: sent.extend(notify(f"STATUS={i}") for i in range(count)), daemon=True)
        sender.start()
        sender.join(10)
        assert not sender.is_alive(), "notify blocked on a full socket"
        assert sent[0] and not sent[-1]  # the first went through, the ones past the full queue were dropped
        monkeypatch.setattr(sdnotify, "SEND_TIMEOUT", 0.05)
        assert notify("READY=1") is False  # READY waits a little for room, then is dropped too
        assert sock.recv(100) == b"STATUS=0"
        assert notify("READY=1") is True  # room again: nothing stays broken


def test_without_systemd_is_quiet(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify("READY=1") is False


def test_watchdog_interval_is_half_the_timeout(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None
