"""A speech server's reply, read within a deadline and a size cap.

httpx's timeouts are per read: a server that trickles its reply a byte at a time (headers or
body) kept a request alive for minutes, past ``pause_after_seconds``. And a reply is read
whole: a server claiming 2 GB took ``voxd render`` to gigabytes of memory. So a request has
one deadline, from the audio its text is expected to take, kept by a watchdog that shuts the
connection's socket; and its reply may hold what its text can plausibly need, no more.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

from .base import speech_seconds
from .speech_api import transport_error

if TYPE_CHECKING:
    import httpx

#: A request may take ``timeout_seconds`` plus this many seconds per second of expected audio,
#: from the moment it is sent to its reply's last byte...
SECONDS_PER_AUDIO_SECOND = 4.0
#: ...but never longer than this.
MAX_READ_SECONDS = 900.0
#: The most bytes a second of audio takes in a reply, its rate unknown: 48 kHz, 32-bit float, two
#: channels. Once the fleet's rate is known, that rate's worth.
MAX_BYTES_PER_SAMPLE = 4 * 2
MAX_REPLY_RATE = 48000
#: A reply may hold this many times the audio its text is expected to take, and at least
#: MIN_REPLY_SECONDS of it, plus a header's room: a server sending more is not sending that
#: text's speech (a 2 GB reply is refused after a few MB, not held in memory).
REPLY_LENGTH_RATIO = 4.0
MIN_REPLY_SECONDS = 10.0
REPLY_HEADER_BYTES = 64 * 1024
#: The most of an error reply that is read (its message is quoted by its first 300 characters).
ERROR_BODY_BYTES = 64 * 1024
#: Each speech request on a connection of its own, its reply not compressed: the deadline's
#: watchdog knows the connection's socket, and a reply's size is counted in what it decodes to.
_ONE_SHOT = {"Connection": "close", "Accept-Encoding": "identity"}


def reply_cap(text: str, rate: int | None) -> int:
    """The most bytes a reply to ``text`` may hold: its expected audio, REPLY_LENGTH_RATIO times
    over (at least MIN_REPLY_SECONDS), at the fleet's rate (the highest a server sends while it
    is unknown) in the widest samples a WAV carries."""
    seconds = max(MIN_REPLY_SECONDS, REPLY_LENGTH_RATIO * speech_seconds(text.strip()))
    per_second = (rate or MAX_REPLY_RATE) * MAX_BYTES_PER_SAMPLE
    return REPLY_HEADER_BYTES + int(seconds * per_second)


def request_deadline(text: str, timeout_seconds: float) -> float:
    """Seconds a request for ``text`` may take in all, sent to last byte: a server that trickles
    its reply is given up on then, like one that says nothing."""
    return min(MAX_READ_SECONDS, timeout_seconds + SECONDS_PER_AUDIO_SECOND * speech_seconds(text.strip()))


def post_speech(client: httpx.Client, url: str, body: dict[str, Any], *, deadline: float, cap: int,
                connect_seconds: float) -> httpx.Response:
    """The reply to a speech request, read whole within ``deadline`` seconds and ``cap`` bytes
    (:class:`Oversized` past it). httpx's timeouts are per read, so a watchdog shuts the
    connection's socket at the deadline: a server that trickles a byte at a time, headers or
    body, is given up on then."""
    import httpx

    streams: list[Any] = []  # the connection's network stream, as httpcore reports it

    def trace(event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            streams.append(info.get("return_value"))

    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for stream in streams:
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(deadline, expire)
    watchdog.daemon = True
    watchdog.start()
    timeout = httpx.Timeout(deadline, connect=connect_seconds)
    try:
        with client.stream("POST", f"{url}/audio/speech", json=body, timeout=timeout, headers=_ONE_SHOT,
                           extensions={"trace": trace}) as response:
            ok = response.status_code == 200
            declared = response.headers.get("content-length", "")
            if ok and declared.isdigit() and int(declared) > cap:
                raise Oversized(f"{int(declared)} bytes long, bigger than the {cap} this text can need")
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > (cap if ok else ERROR_BODY_BYTES):
                    if ok:
                        raise Oversized(f"over {cap} bytes, bigger than this text can need")
                    break  # an error's message is at its start
            headers = [(k, v) for k, v in response.headers.multi_items()
                       if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
            return httpx.Response(response.status_code, headers=headers, content=bytes(data),
                                  request=response.request)
    except httpx.TimeoutException as exc:
        connecting = isinstance(exc, httpx.ConnectTimeout)
        what = "did not connect" if connecting else f"gave no whole answer in {deadline:.0f} s"
        raise Unreachable(what, timed_out=not connecting) from None
    except httpx.TransportError as exc:
        if expired.is_set():
            raise Unreachable(f"gave no whole answer in {deadline:.0f} s", timed_out=True) from None
        raise Unreachable(transport_error(exc)) from None
    finally:
        watchdog.cancel()


class Unreachable(Exception):
    """The server did not answer (refused, reset, timed out)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Oversized(Exception):
    """The server's reply is bigger than its text can need: a bad take, not held in memory."""
