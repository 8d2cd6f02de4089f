"""The web page as a thread of the daemon: uvicorn on its own event loop, beside the worker.

The socket is bound before the thread starts, so a port in use is said at start-up
in the log (the daemon goes on without its page: the inbox matters more); an
address reachable from other machines without a password stops the daemon before
anything else, as ``voxd serve`` does without a key.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError, VoxdError
from ..service.store import Store

log = logging.getLogger(__name__)

#: Connections the page keeps open at once (a browser holds one for its live progress and a few
#: for the page), and how long a request's headers may take to arrive.
MAX_CONNECTIONS = 64
HEADER_SECONDS = 30.0
#: An upload must bring this much in every HEADER_SECONDS (about 2 kB/s): a slow link uploads, a
#: trickle that only holds a connection is closed.
BODY_PROGRESS = 64 * 1024


def check_exposure(settings: Settings) -> None:
    """The page on an address other machines can reach must ask for a password."""
    from ..serve_connections import is_loopback

    address = settings.web.address
    if address and not is_loopback(address[0]) and not settings.web.password.get_secret_value():
        raise ConfigError(
            f"[web] listen = {settings.web.listen!r} is reachable from other machines, and no password is set: "
            "set [web] password (or VOXD_WEB__PASSWORD), listen on 127.0.0.1, or turn the page off with listen = \"\""
        )


class WebServer:
    """The page, served until :meth:`stop`."""

    def __init__(self, settings: Settings, store: Store, *, wake: Callable[[], None],
                 config_path: Path | str | None = None) -> None:
        from .app import Web

        self.web = Web(settings=settings, store=store, wake=wake, config_path=config_path)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str | None:
        address = self.web.settings.web.address
        if not address or not self._sockets:
            return None
        host, _ = address
        port = self._sockets[0].getsockname()[1]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self) -> bool:
        """Bind and serve in a thread; False (logged) where the address cannot be had."""
        import uvicorn

        from ..serve_connections import RefusalLog, backlog_for, guarded_protocol, listen, server_class
        from .app import create_app

        address = self.web.settings.web.address
        if address is None:
            return False
        try:
            self._sockets = listen(*address, what="the web page", setting="[web] listen")
        except VoxdError as exc:
            log.error("%s; the daemon goes on without it", exc)
            return False

        refusals = RefusalLog(who="web page", setting="the web page's cap")
        Server = server_class(refusals)
        # The daemon's files are the render's too: connections are capped and a request must keep
        # coming, so a flood of idle or trickling connections cannot take the files a render needs.
        self._server = Server(uvicorn.Config(
            create_app(self.web), log_level="warning", access_log=False, lifespan="off", server_header=False,
            timeout_graceful_shutdown=3, timeout_keep_alive=5, backlog=backlog_for(MAX_CONNECTIONS),
            http=guarded_protocol(MAX_CONNECTIONS, HEADER_SECONDS, refusals, body_progress=BODY_PROGRESS),
            proxy_headers=False,  # the client's address is the socket's: X-Forwarded-For would let a
            # client on this machine pick its own, and escape the wrong-password throttle
        ))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": self._sockets},
                                        name="voxd-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # listening, not just bound: the log line below is then true
        log.info("web page on %s%s", self.url, " (password required)" if self.web.password else "")
        return True

    def stop(self) -> None:
        self.web.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        for sock in self._sockets:
            sock.close()
