"""The connections of voxd's servers (``voxd serve`` and the daemon's web page): the sockets bound
(``listen``) and whether their address is loopback, how many may be open, how long a request may
take to arrive, and one log line for many refused.

uvicorn takes every connection it can accept and waits for a request's headers and body as
long as the client likes: a thousand half-open connections (slowloris) took every file the
process may open, locked real clients out, and asyncio logged a traceback per failed
``accept()``. So each connection past ``max_connections`` is closed as soon as it is accepted
(the cap sits below the open-file limit, which is raised to fit where the hard limit allows), a
request whose headers or body have not all arrived ``request_timeout`` seconds after it began
is dropped, and refusals are counted and logged once per interval.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

from .errors import VoxdError

log = logging.getLogger(__name__)

#: Files the process needs besides its connections: the model's files, the log, the engine's
#: libraries and threads, the listening sockets.
RESERVED_FILES = 128
#: Refused connections (and accept() failures) are logged at most once in this many seconds.
REFUSAL_LOG_SECONDS = 10.0


class RefusalLog:
    """Refused connections, counted and logged once per interval with their number."""

    def __init__(self, interval: float = REFUSAL_LOG_SECONDS, clock: Callable[[], float] = time.monotonic, *,
                 who: str = "voxd serve", setting: str = "[serve] max_connections") -> None:
        self.interval = interval
        self.who = who  # the server's name in the log, and the setting that caps it
        self.setting = setting
        self._clock = clock
        self._count = 0
        self._last = float("-inf")
        self.total = 0

    def refused(self, why: str) -> None:
        self._count += 1
        self.total += 1
        now = self._clock()
        if self._last == float("-inf"):
            log.warning("%s: refused a connection: %s (more are counted, and logged every %.0f s)", self.who, why,
                        self.interval)
            self._count, self._last = 0, now
        elif now - self._last >= self.interval:
            log.warning("%s: refused %d connection%s in the last %.0f s: %s", self.who, self._count,
                        "" if self._count == 1 else "s", now - self._last, why)
            self._count, self._last = 0, now


def fit_file_limit(max_connections: int) -> int:
    """The connection cap this process can keep: its open-file limit is raised (up to the hard
    limit) to hold ``max_connections`` plus :data:`RESERVED_FILES`; where it cannot be, the cap is
    lowered to fit, with a warning naming the setting."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitting = max(1, soft - RESERVED_FILES)
        log.warning("voxd serve: this process may open %d files, too few for [serve] max_connections = %d: "
                    "taking %d connections at a time (raise LimitNOFILE or `ulimit -n`)", soft, max_connections,
                    fitting)
        return fitting
    return max_connections


def backlog_for(max_connections: int) -> int:
    """The listening socket's backlog, which is also how many connections asyncio accepts in one
    go before any of them is looked at: a quarter of the cap, so a burst past the cap is closed
    before it can take the files the cap keeps free (uvicorn's 2048 would take them all)."""
    return min(2048, max(16, max_connections // 4))


def guarded_protocol(max_connections: int, request_timeout: float, refusals: RefusalLog, *,
                     body_progress: int = 0) -> type[Any]:
    """uvicorn's h11 protocol with the cap and the request deadline (uvicorn's ``http`` option).
    ``body_progress``: a body that brings this many bytes within the deadline earns another
    (the web page's uploads may take minutes on a slow link, a trickle still ends)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                refusals.refused(f"{max_connections} connections are open ({refusals.setting})")
                transport.abort()
                return
            self._arm()

        _arrived = 0

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:  # the next request on the connection
                self._arm()
            elif body_progress and self._deadline is not None and self.conn.their_state is h11.SEND_BODY:
                self._arrived += len(data)
                if self._arrived >= body_progress:  # the body is coming: it has another deadline's time
                    self._deadline.cancel()
                    self._arrived = 0
                    self._arm()
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(request_timeout, self._expired)

        def _expired(self) -> None:
            self._deadline = None
            # IDLE: the request's headers have not all come; SEND_BODY: its body has not
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
                log.debug("%s: %s sent no whole request in %.0f s; closed", refusals.who, client, request_timeout)
                self.transport.abort()

    return GuardedH11


def throttled_exception_handler(refusals: RefusalLog) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """The event loop's handler: an ``accept()`` out of files (which asyncio logs with a traceback
    each time) counted with the refusals; anything else as asyncio logs it."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "out of system resource" in str(context.get("message", "")):
            error = context.get("exception")
            refusals.refused(f"accept() failed: {error}")
            return
        loop.default_exception_handler(context)

    return handle


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int, *, what: str = "voxd serve", setting: str = "") -> list[socket.socket]:
    """The server's sockets, bound: one for each address ``host`` names (``localhost`` is
    often both ::1 and 127.0.0.1, and a client may use either), as uvicorn binds them; a
    clear error naming the address when one cannot be bound."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise VoxdError(f"{what} cannot listen on {host}:{port}: {exc.strerror or exc} "
                        f"(check {setting or '[serve] host, or --host'})") from None
    addresses = list(dict.fromkeys((family, kind, proto, address) for family, kind, proto, _, address in found))
    both = len({family for family, *_ in addresses}) > 1
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, address in addresses:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and both:  # the IPv4 address gets a socket of its own
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            hint = "another server is on that port: stop it, or choose another with " \
                + (setting or "[serve] port or --port")
        else:
            hint = f"check {setting or '[serve] host and port, or --host and --port'}"
        raise VoxdError(f"{what} cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    return sockets


def server_class(refusals: RefusalLog) -> type[Any]:
    """uvicorn's Server as voxd's servers run it: an ``accept()`` out of files counted with the
    refusals (asyncio would log a traceback each time), and the signals left to voxd, which
    stops the server itself (uvicorn would raise them again once it stopped, killing the
    process before the engine is closed)."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            asyncio.get_running_loop().set_exception_handler(throttled_exception_handler(refusals))
            await super().startup(sockets=sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server
