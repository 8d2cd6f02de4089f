"""Every error voxd raises on purpose.

The split that matters is whether trying again can help::

    VoxdError
    ├── ConfigError           bad settings: refuse to start, name the key
    ├── PermanentError        the input is wrong: fail the job, never retry
    │   ├── UnsupportedFormat     not an EPUB, PDF or voxd manifest
    │   ├── BookError             the file is corrupt, hostile, encrypted or empty
    │   └── VoiceError            the voice, speaker or language cannot be used
    ├── RetryableError        the machine had a bad moment: retry with back-off
    │   ├── EngineError           the speech engine failed (OOM, driver, crash)
    │   │   └── OutOfMemory           the batch did not fit in GPU memory: retry it smaller
    │   └── StorageFull           no space left for cache or output
    └── Stopping              the daemon is shutting down; the job goes back to the queue

Messages are written for the person reading the log: they name the file or key
and say what is wrong in words, not in tracebacks.
"""

from __future__ import annotations


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


class VoiceError(PermanentError):
    """The requested voice, speaker or language does not exist for the engine."""


class RetryableError(VoxdError):
    """A transient failure: the same job may succeed later."""


class EngineError(RetryableError):
    """The speech engine failed for a reason that is not the book's fault."""


class OutOfMemory(EngineError):
    """The batch did not fit in the accelerator's memory; a smaller batch may."""


class StorageFull(RetryableError):
    """The disk holding the cache or the outbox is full."""


class Stopping(VoxdError):
    """Raised inside a job when the daemon was asked to stop; the job is requeued, not failed."""
