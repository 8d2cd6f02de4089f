"""Push and e-mail notifications through apprise, off the worker's thread.

A slow or dead endpoint must never hold up rendering, so messages go to a queue
that one background thread delivers, retrying a few times with back-off.
Notification URLs carry tokens and passwords: they are kept as SecretStr and
only ever logged in apprise's privacy form.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from pydantic import SecretStr

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    kind: str = "info"  # info | success | failure


class _Fields(dict):
    """Template values; a field the event does not have reads as '?' rather than failing."""

    def __missing__(self, key: str) -> str:
        return "?"


def redact(url: str) -> str:
    """The URL as apprise prints it with privacy on; never the secret parts."""
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url)
        if plugin:
            return plugin.url(privacy=True)
    except Exception:
        pass
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://***"


_KINDS = {"done": "success", "failed": "failure", "started": "info", "digest": "info"}


class Notifier:
    def __init__(
        self,
        urls: Sequence[SecretStr | str],
        *,
        templates=None,
        events: Sequence[str] = ("done", "failed"),
        attempts: int = 3,
        backoff: float = 2.0,
    ) -> None:
        from .config import Templates

        self._urls = [u.get_secret_value() if isinstance(u, SecretStr) else u for u in urls]
        self.templates = templates or Templates()
        self.events = set(events) | {"digest"}
        self.attempts = attempts
        self.backoff = backoff
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def reconfigure(self, urls: Sequence[SecretStr | str], *, templates, events: Sequence[str]) -> None:
        """New URLs, templates and events (a config reload); queued messages go to the new URLs."""
        self._urls = [u.get_secret_value() if isinstance(u, SecretStr) else u for u in urls]
        self.templates = templates
        self.events = set(events) | {"digest"}

    @property
    def enabled(self) -> bool:
        return bool(self._urls)

    def event(self, name: str, **fields: object) -> bool:
        """Fill the event's templates and queue the message, if that event is wanted."""
        if name not in self.events or not self._urls:
            return False
        values = _Fields(fields)
        title = getattr(self.templates, f"{name}_title").format_map(values)
        body = getattr(self.templates, f"{name}_body").format_map(values)
        self.send(title, body, _KINDS[name])
        return True

    def send(self, title: str, body: str, kind: str = "info") -> None:
        """Queue a message; returns at once."""
        if not self._urls:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="voxd-notify", daemon=True)
            self._thread.start()
        self._queue.put(Message(title, body, kind))

    def close(self, timeout: float = 15.0) -> None:
        """Deliver what is queued (up to timeout), then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        import apprise

        while (message := self._queue.get()) is not None:
            for url in list(self._urls):
                self._deliver(apprise, url, message)

    def _deliver(self, apprise_mod, url: str, message: Message) -> None:
        notify_type = {
            "success": apprise_mod.NotifyType.SUCCESS,
            "failure": apprise_mod.NotifyType.FAILURE,
        }.get(message.kind, apprise_mod.NotifyType.INFO)
        for attempt in range(1, self.attempts + 1):
            app = apprise_mod.Apprise()
            if not app.add(url):
                log.warning("notification URL %s is not one apprise understands; skipped", redact(url))
                self.failed += 1
                return
            try:
                ok = app.notify(title=message.title, body=message.body, notify_type=notify_type)
            except Exception as exc:  # apprise plugins may raise on odd input
                log.warning("notification to %s raised %s", redact(url), type(exc).__name__)
                ok = False
            if ok:
                self.delivered += 1
                return
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        self.failed += 1
        log.warning("notification to %s failed after %d attempts", redact(url), self.attempts)
