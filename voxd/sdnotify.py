"""The sd_notify protocol: one datagram per message to $NOTIFY_SOCKET, if systemd gave one.

Written out rather than imported: it is a dozen lines, and it must never fail the daemon.
"""

from __future__ import annotations

import os
import socket

#: How long one message may wait for room in systemd's queue before it is dropped. systemd
#: reads its socket at once; a manager too busy to read must not stall a render in a ping.
SEND_TIMEOUT = 2.0


def notify(message: str) -> bool:
    """Send e.g. 'READY=1' or 'STATUS=...'; False when not under systemd, on any error, or when
    the socket's queue stayed full for :data:`SEND_TIMEOUT` (the message is dropped)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT)
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
