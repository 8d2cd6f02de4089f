"""The sd_notify protocol: one datagram per message to $NOTIFY_SOCKET, if systemd gave one.

Written out rather than imported: it is a dozen lines, and it must never fail the daemon.
"""

from __future__ import annotations

import os
import socket

#: How long READY=1 and STOPPING=1 may wait for room in systemd's queue before they are
#: dropped. systemd reads its socket at once; a manager too busy to read must not stall the
#: daemon. STATUS= and WATCHDOG=1, sent all the time, wait not at all: the next one follows.
SEND_TIMEOUT = 2.0


def notify(message: str) -> bool:
    """Send e.g. 'READY=1' or 'STATUS=...'; False when not under systemd, on any error, or when
    the socket's queue was full (for :data:`SEND_TIMEOUT`, for the messages that wait at all):
    the message is dropped."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(0.0 if message.startswith(("STATUS=", "WATCHDOG=")) else SEND_TIMEOUT)
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd expects pings within, or None when there is none."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
