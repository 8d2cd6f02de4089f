"""Push and e-mail notifications through apprise, delivered from a durable outbox.

Messages are rendered from templates and written to the store's notification
outbox, in the same transaction as the outcome they announce (see
``Store.finish``). One background thread delivers pending messages with
back-off, and records each URL that has a message, so a crash or a restart
neither loses a notification nor sends it twice to the same place. A slow or
dead endpoint never holds up rendering.

Notification URLs carry tokens and passwords: they are kept as SecretStr and
only ever logged in apprise's privacy form.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence

from pydantic import SecretStr

from ..faults import crash_point
from .records import Notification, Outgoing
from .store import Store

log = logging.getLogger(__name__)

KINDS = {"done": "success", "failed": "failure", "started": "info", "digest": "info"}


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


def url_id(url: str) -> str:
    """A short stable id for a URL, stored instead of the URL (which holds secrets)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def _plain(urls: Sequence[SecretStr | str]) -> list[str]:
    return [u.get_secret_value() if isinstance(u, SecretStr) else u for u in urls]


class Notifier:
    def __init__(
        self,
        store: Store,
        urls: Sequence[SecretStr | str],
        *,
        templates=None,
        events: Sequence[str] = ("done", "failed"),
        attempts: int = 3,
        backoff: float = 2.0,
        poll: float = 5.0,
    ) -> None:
        from ..config import Templates

        self.store = store
        self._urls = _plain(urls)
        self.templates = templates or Templates()
        self.events = set(events) | {"digest"}
        self.attempts = attempts
        self.backoff = backoff
        self.poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reconfigure(self, urls: Sequence[SecretStr | str], *, templates, events: Sequence[str]) -> None:
        """New URLs, templates and events (a config reload); pending messages go to the new URLs."""
        self._urls = _plain(urls)
        self.templates = templates
        self.events = set(events) | {"digest"}
        self._wake.set()

    @property
    def enabled(self) -> bool:
        return bool(self._urls)

    def render(self, event: str, **fields: object) -> Outgoing | None:
        """The message for an event, or None when nobody wants it."""
        if event not in self.events or not self._urls:
            return None
        values = _Fields(fields)
        title = getattr(self.templates, f"{event}_title").format_map(values)
        body = getattr(self.templates, f"{event}_body").format_map(values)
        return Outgoing(event=event, title=title, body=body, kind=KINDS[event])

    def event(self, event: str, job_id: int | None = None, **fields: object) -> bool:
        """Queue an event that goes with no state change of its own (started, digest)."""
        message = self.render(event, **fields)
        if message is None:
            return False
        self.store.add_notification(job_id, message)
        self.wake()
        return True

    def wake(self) -> None:
        self._wake.set()

    # -- delivery ----------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="voxd-notify", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 15.0) -> None:
        """Deliver what is due now (up to timeout), then stop; the rest waits in the outbox."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None

    def deliver_pending(self) -> int:
        """Deliver every message that is due; returns how many were fully sent."""
        if not self._urls:
            return 0
        import apprise

        sent = 0
        for message in self.store.notifications(pending_only=True):
            if self._deliver(apprise, message):
                sent += 1
        return sent

    def _run(self) -> None:
        while True:
            try:
                self.deliver_pending()
            except Exception:  # the store or apprise misbehaving must not kill the thread
                log.exception("notification delivery failed")
            if self._stop.is_set():
                return
            self._wake.wait(self.poll)
            self._wake.clear()

    def _deliver(self, apprise_mod, message: Notification) -> bool:
        notify_type = {
            "success": apprise_mod.NotifyType.SUCCESS,
            "failure": apprise_mod.NotifyType.FAILURE,
        }.get(message.kind, apprise_mod.NotifyType.INFO)
        have = set(message.delivered_to.split())
        failures = []
        for url in list(self._urls):
            uid = url_id(url)
            if uid in have:
                continue
            app = apprise_mod.Apprise()
            if not app.add(url):
                failures.append(f"{redact(url)}: not a URL apprise understands")
                continue
            try:
                ok = app.notify(title=message.title, body=message.body, notify_type=notify_type)
            except Exception as exc:  # apprise plugins may raise on odd input
                ok = False
                failures.append(f"{redact(url)}: {type(exc).__name__}")
            else:
                if not ok:
                    failures.append(f"{redact(url)}: delivery failed")
            if ok:
                self.store.mark_delivered(message.id, uid)
                crash_point("notify.delivered")
        if not failures:
            self.store.mark_sent(message.id)
            return True
        error = "; ".join(failures)
        if message.attempts + 1 >= self.attempts:
            log.warning("notification %r failed after %d attempts: %s", message.title, self.attempts, error)
            self.store.mark_attempt(message.id, error, retry_in=None)
        else:
            retry_in = self.backoff * 2**message.attempts
            log.info("notification %r failed (%s); retrying in %.0fs", message.title, error, retry_in)
            self.store.mark_attempt(message.id, error, retry_in=retry_in)
            if retry_in < self.poll:
                threading.Timer(retry_in, self._wake.set).start()
        return False
