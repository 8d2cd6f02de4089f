"""Every error voxd raises on purpose.

The split that matters is whether trying again can help::

    VoxdError
    ├── ConfigError           bad settings: refuse to start, name the key
    ├── PermanentError        the input is wrong: fail the job, never retry
    │   ├── UnsupportedFormat     not an EPUB, PDF or voxd manifest
    │   ├── BookError             the file is corrupt, hostile, encrypted or empty
    │   │   └── TooLong               its text would play longer than max_book_hours
    │   ├── VoiceError            the voice, speaker or language cannot be used
    │   ├── SourceChanged         the inbox file now holds another version: fail this job, keep the file
    │   └── RequestRejected       a speech server refused the request (400, 401, 404, 422)
    ├── RetryableError        the machine had a bad moment: retry with back-off
    │   ├── EngineError           the speech engine failed (OOM, driver, crash)
    │   │   └── OutOfMemory           the batch did not fit in GPU memory: retry it smaller
    │   ├── AssemblyFailed        a chunk's audio left the cache or the assembler died: render again
    │   └── Unavailable           something the job needs is away: wait, using up no attempt
    │       ├── StorageFull           no space left for cache or output
    │       ├── ServersUnavailable    no speech server answers
    │       └── GpuUnusable           an NVIDIA GPU is here but torch cannot use it (driver, card, build)
    ├── Stopping              the daemon is shutting down; the job goes back to the queue
    │   └── OutsideWindow         the render window closed; the job waits in the queue for it to open
    └── Cancelled             someone cancelled the job while it ran; it stays cancelled

Messages are written for the person reading the log: they name the file or key
and say what is wrong in words, not in tracebacks.

Low-level errors that mean one of these (a full disk, an exhausted GPU) are
recognised in one place, :func:`translate`, wherever they are caught.
"""

from __future__ import annotations

import errno
import re
import sys


class VoxdError(Exception):
    """Base of every error voxd raises on purpose."""


class ConfigError(VoxdError):
    """The configuration is invalid; the message names the key and the problem."""


class PermanentError(VoxdError):
    """The job cannot succeed as it is: retrying the same input gives the same failure."""


class UnsupportedFormat(PermanentError):
    """The file is not a format voxd reads."""


class BookError(PermanentError):
    """The book file is corrupt, hostile, encrypted or has nothing to read aloud."""


class TooLong(BookError):
    """The book's text would play longer than ``max_book_hours``: refused before any of it is rendered."""

    def __init__(self, message: str, *, seconds: float, limit_hours: float) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.limit_hours = limit_hours

    def __reduce__(self):  # it crosses process boundaries pickled, keyword fields and all
        return _too_long, (str(self), self.seconds, self.limit_hours)


def _too_long(message: str, seconds: float, limit_hours: float) -> TooLong:
    return TooLong(message, seconds=seconds, limit_hours=limit_hours)


class VoiceError(PermanentError):
    """The requested voice, speaker or language does not exist for the engine."""


class SourceChanged(PermanentError):
    """The file under the job's name now holds other content (a new version is its own job)."""


class RetryableError(VoxdError):
    """A transient failure: the same job may succeed later."""


class EngineError(RetryableError):
    """The speech engine failed for a reason that is not the book's fault."""


class OutOfMemory(EngineError):
    """The batch did not fit in the accelerator's memory; a smaller batch may."""


class RequestRejected(PermanentError):
    """A speech server refused the request itself; the message carries the server's own words."""

    #: The server's words alone, without voxd's framing.
    server_message: str | None = None


class Unavailable(RetryableError):
    """Something the job needs is away for now (disk space, the speech servers): the job
    pauses and tries again later without using up an attempt, since waiting is the cure."""


class StorageFull(Unavailable):
    """The disk holding the cache or the outbox is full."""


class AssemblyFailed(RetryableError):
    """Assembly failed through no fault of the book (audio left the cache, the assembler died): retrying can work."""


class ServersUnavailable(Unavailable):
    """No speech server of a remote engine answers; the job resumes when one does."""


class ServersRefuse(Unavailable):
    """The speech servers refuse voxd itself, not the book: its key (401/403), its URLs or
    model name (``GET /models``), an exhausted quota. Failing the job would fail every book
    in the queue, one after another, for a setting; so the job waits, using up no attempt,
    until the setting is fixed (``systemctl reload voxd`` reads it again) or the servers
    change, and the message says which setting.

    The message leads with the setting (``voxd jobs`` shows only a note's start); ``detail``
    is what the servers said."""

    def __init__(self, detail: str, setting: str) -> None:
        super().__init__(f"the speech servers refuse voxd (check {setting}): {detail}")
        self.detail, self.setting = detail, setting


class GpuUnusable(Unavailable):
    """An NVIDIA GPU is on this machine but torch cannot use it (a driver older than torch's
    CUDA build, a card this build has no kernels for), and the settings do not ask for the
    CPU: the job waits, using up no attempt, rather than running for days on the CPU. The
    message says why and what to install, or to set ``[qwen] device = "cpu"``."""


class Stopping(VoxdError):
    """Raised inside a job when the daemon was asked to stop; the job is requeued, not failed."""


class OutsideWindow(Stopping):
    """The render window closed; the job waits in the queue for it to open again."""


class Interrupted(Stopping):
    """``voxd render`` got SIGINT or SIGTERM: it stops at its next checkpoint and exits 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class Cancelled(VoxdError):
    """The job was cancelled while it ran: neither a failure nor something to retry."""


def translate(exc: BaseException) -> StorageFull | OutOfMemory | None:
    """What a low-level exception means to voxd: :class:`StorageFull`, :class:`OutOfMemory`, or None.

    The whole chain is searched (``raise ... from``, and the exception being handled
    when another was raised), because libraries wrap what the system said: PyAV and
    mutagen re-raise a full disk as errors of their own, some keeping only its words.
    The caller decides what to do with the answer, and may raise its own message.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if _disk_full(link):
            return StorageFull(f"no space left on device: {link}")
        if _out_of_memory(link):
            return OutOfMemory(f"out of GPU memory: {link}")
        link = link.__cause__ or link.__context__
    return None


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC, as an OSError or only in the words of a library's own error."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "No space left on device" in str(exc)


def _out_of_memory(exc: BaseException) -> bool:
    """torch's CUDA out-of-memory error, or a RuntimeError that says so (older torch, other kernels).

    torch is looked up, never imported: where it is not loaded, none of its errors exist.
    """
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if isinstance(oom, type) and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


# What a failed connection means, in words. The libraries (requests over urllib3,
# httpx, the socket module) word it differently and nest it: the whole chain's text is read.
_NETWORK_WHY = (
    (("connection refused", "errno 111", "errno 61"), "the connection was refused"),
    (("name or service not known", "temporary failure in name resolution", "nodename nor servname",
      "getaddrinfo failed", "nameresolutionerror", "no address associated"),
     "its name could not be looked up: no network, or no DNS"),
    (("network is unreachable", "no route to host"), "the network is unreachable"),
    (("timed out", "timeout"), "it did not answer in time"),
    (("certificate", "ssl", "tls"), "the secure connection failed: a certificate or a proxy in the way"),
    (("connection reset", "remotedisconnected", "connection aborted", "remote end closed"),
     "the connection was cut"),
    (("proxyerror", "proxy"), "the proxy refused or failed"),
)
_HOST_PORT = re.compile(r"host='([^']+)', port=(\d+)")
_URL_HOST = re.compile(r"https?://([^/\s'\"]+)")


def network_reason(exc: BaseException) -> str | None:
    """A connection failure said as a sentence ("could not connect to huggingface.co:443 (the
    connection was refused)"), or None when ``exc`` is no network failure: for the reason
    `voxd jobs` shows, instead of ``ConnectionError(MaxRetryError('HTTPSConnectionPool(...``."""
    texts, names = [], []
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        texts.append(str(link))
        names.append(type(link).__name__)
        link = link.__cause__ or link.__context__
    text = " ".join(texts)
    lowered = (text + " " + " ".join(names)).lower()
    networky = isinstance(exc, ConnectionError | TimeoutError) or any(
        word in lowered for word in ("connectionerror", "maxretryerror", "connecterror", "timeout", "connectionpool")
    )
    if not networky:
        return None
    why = next((why for words, why in _NETWORK_WHY if any(w in lowered for w in words)), "the connection failed")
    found = _HOST_PORT.search(text)
    if found:
        where = f"{found.group(1)}:{found.group(2)}"
    else:
        url = _URL_HOST.search(text)
        where = url.group(1) if url else "the server"
    return f"could not connect to {where} ({why})"
