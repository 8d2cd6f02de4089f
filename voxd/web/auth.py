"""Who may use the web page and its API, and which requests may change anything.

Three ways in: no password at all (the page then listens on loopback only, the daemon
refuses anything else), ``Authorization: Bearer <password>`` for scripts, and a session
cookie from the login form for browsers. A browser's session is held in memory: a
restart asks for the password again, which costs a person one login and keeps no
secret on disk.

What a browser sends can be forged by any page it visits (a form posted to
127.0.0.1:8765), so every request that changes something and rides on the cookie
carries the session's CSRF token, and a browser's request from another site is
refused outright (``Origin``/``Sec-Fetch-Site``). Without a password there is no cookie to
ride on; a request that names a host other than the one the page listens on is
refused there too, which is what a DNS-rebinding page would send.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

COOKIE = "voxd_session"
SESSION_SECONDS = 14 * 86400
MAX_SESSIONS = 1000
#: Wrong passwords a client may send in a row before it must wait, and the longest wait.
FREE_TRIES = 5
LONGEST_WAIT = 300.0


@dataclass
class Session:
    csrf: str
    expires: float


@dataclass
class Sessions:
    """Logged-in browsers: a random token in the cookie, its CSRF token and expiry here."""

    clock: Callable[[], float] = time.time
    _items: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), expires=self.clock() + SESSION_SECONDS)
        with self._lock:
            now = self.clock()
            for stale in [t for t, s in self._items.items() if s.expires <= now]:
                del self._items[stale]
            while len(self._items) >= MAX_SESSIONS:  # the oldest go first (dicts keep their order)
                del self._items[next(iter(self._items))]
            self._items[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._items.get(token)
            if session is None or session.expires <= self.clock():
                self._items.pop(token, None)
                return None
            return session

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._items.pop(token or "", None)


@dataclass
class Throttle:
    """Wrong passwords, per client address: after :data:`FREE_TRIES` in a row each further
    try must wait twice as long as the last (up to :data:`LONGEST_WAIT`), and is refused
    before the password is even compared while it waits."""

    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # address -> (count, blocked until)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, address: str) -> float:
        """Seconds the client must still wait before its next try (0: it may try now)."""
        with self._lock:
            _count, until = self._failures.get(address, (0, 0.0))
            return max(0.0, until - self.clock())

    def failed(self, address: str) -> None:
        with self._lock:
            count, _ = self._failures.get(address, (0, 0.0))
            count += 1
            wait = 0.0 if count < FREE_TRIES else min(LONGEST_WAIT, 2.0 ** (count - FREE_TRIES + 1))
            self._failures[address] = (count, self.clock() + wait)
            if len(self._failures) > 10_000:  # a flood of addresses: forget the oldest
                del self._failures[next(iter(self._failures))]
        log.warning("web: wrong password from %s (%d in a row%s)", address, count,
                    f"; its next try must wait {wait:.0f} s" if wait else "")

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


def password_matches(given: str, password: str) -> bool:
    return bool(password) and hmac.compare_digest(given.encode("utf-8", "replace"), password.encode())


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def from_elsewhere(headers: Mapping[str, str], host: str) -> str | None:
    """Why a request that would change something looks sent by another site's page, or None.

    Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``); scripts say
    nothing, and are held to the password instead.
    """
    get = headers.get
    site = (get("sec-fetch-site") or "").lower()
    if site in ("cross-site", "same-site"):
        return f"a request from another site ({site})"
    if site == "same-origin":  # the browser's own word, which no page can forge: behind a reverse
        return None  # proxy that rewrites Host, Origin names the proxy's address and Host ours
    origin = get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower():
        return f"a request from {origin}"
    if origin == "null":
        return "a request from an opaque origin"
    return None


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
