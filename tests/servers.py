"""Real local servers that notifications are delivered to in tests."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """A threading HTTP server on 127.0.0.1, running in a thread while used as a context manager."""

    def _listen(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class HttpSink(LoopbackServer):
    """An HTTP server on 127.0.0.1 that records every JSON body posted to it."""

    def __init__(self, status: int = 200, port: int = 0) -> None:
        self.status = status
        self.received: list[dict] = []
        self.event = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                try:
                    sink.received.append(json.loads(body))
                except ValueError:
                    sink.received.append({"raw": body.decode(errors="replace")})
                self.send_response(sink.status)
                self.end_headers()
                sink.event.set()

            def log_message(self, *args):
                pass

        self._listen(Handler, port)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    @property
    def secret_url(self) -> str:
        """The same endpoint with credentials in the URL, as real webhooks often carry."""
        return f"json://voxd:s3cret-pa55@127.0.0.1:{self.port}/hook"


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that records every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[str] = []
        self.event = threading.Event()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(envelope.content.decode("utf-8", errors="replace"))
                sink.event.set()
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=voxd@example.com&to=reader@example.com&mode=insecure"


class OddSpeechServer(LoopbackServer):
    """A real speech server on 127.0.0.1 (OpenAI's /v1/audio/speech) that speaks with eSpeak NG
    and misbehaves as a test tells it, per text and per time that text is asked for:

    * ``cut(text, n)``: send only half of the WAV's body, its header promising all of it;
    * ``rate(text, n)``: an int resamples the reply to that rate (with a true header);
    * ``status(text, n)``: an int answers with that HTTP status and an OpenAI error envelope
      (429 and 503 with ``Retry-After: 0.2``; 4290 is OpenAI's quota 429, which has none);
    * ``say(text, n)``: a string is spoken instead of the text asked for (a server that answers
      for another request), with HTTP 200 as such servers do;
    * ``hostile(text, n)``: ``"huge"`` claims a 2 GB WAV and streams silence as fast as the client
      takes it (at most ``HUGE_BYTES``), ``"endless"`` does the same with no length said;
      ``"trickle"`` sends its headers, then the WAV a byte every ``TRICKLE_SECONDS``;
      ``"trickle-headers"`` sends even its headers that way. Each stops after ``HOSTILE_SECONDS``
      or when the client goes; ``sent`` counts the bytes of each reply sent.

    ``engine`` speaks (default: eSpeak NG).

    ``n`` counts from 1. ``asked`` records every text in the order it came.
    """

    HUGE_BYTES = 256 * 2**20
    TRICKLE_SECONDS = 0.25
    HOSTILE_SECONDS = 20.0

    def __init__(self, *, cut=None, rate=None, status=None, say=None, hostile=None, model: str = "odd-tts",
                 engine=None, keep_alive: bool = False) -> None:
        from voxd.tts.espeak import EspeakEngine

        self.engine = engine or EspeakEngine()
        self.voice = "default" if engine else "en-us"
        self.cut, self.rate, self.status, self.say, self.model = cut, rate, status, say, model
        self.hostile = hostile
        self.sent: list[int] = []
        self.asked: list[str] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: a connection per request, so a stopped server refuses the next one
            # (a kept-alive connection would go on being served by its thread); ``keep_alive``
            # serves HTTP/1.1, whose connections a client may keep and use again.
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_GET(self):
                if self.path.endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                elif self.path.endswith("/audio/voices"):
                    self._json(200, {"voices": ["en-us", "en-gb"]})
                else:
                    self._json(404, {"error": {"message": "no such route", "code": 404}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                text = body["input"]
                with server.lock:
                    server.asked.append(text)
                    server.bodies.append(body)
                    n = server.asked.count(text)
                status = server.status(text, n) if server.status else None
                if status:
                    message = "insufficient_quota: no credit left" if status == 4290 else f"told to answer {status}"
                    self._json(min(status, 429) if status == 4290 else status,
                               {"error": {"message": message, "type": "test", "code": status}})
                    return
                mode = server.hostile(text, n) if server.hostile else None
                if mode:
                    self._hostile(mode, server.speak(text, n))
                    return
                self._audio(server.speak(text, n))

            def _hostile(self, mode: str, payload: bytes) -> None:
                import time

                sent, deadline = 0, time.monotonic() + server.HOSTILE_SECONDS
                if mode in ("huge", "endless"):
                    length = b"Content-Length: 2147483648\r\n" if mode == "huge" else b"Connection: close\r\n"
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n" + length + b"\r\n" + payload[:44]
                else:
                    head = (b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n"
                            + f"Content-Length: {len(payload)}\r\n\r\n".encode())
                try:
                    if mode == "trickle-headers":
                        payload = head + payload
                    else:
                        self.wfile.write(head)
                        self.wfile.flush()
                    while time.monotonic() < deadline:
                        if mode in ("huge", "endless"):
                            if sent >= server.HUGE_BYTES:
                                break
                            self.wfile.write(bytes(2**16))
                            sent += 2**16
                        else:
                            if sent >= len(payload):
                                break
                            self.wfile.write(payload[sent:sent + 1])
                            self.wfile.flush()
                            sent += 1
                            time.sleep(server.TRICKLE_SECONDS)
                except OSError:  # the client went away, as it should
                    pass
                with server.lock:
                    server.sent.append(sent)
                self.close_connection = True

            def _audio(self, payload: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if status in (429, 503) and "insufficient_quota" not in data.decode():
                    self.send_header("Retry-After", "0.2")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._listen(Handler)

    def speak(self, text: str, n: int) -> bytes:
        import numpy as np

        from voxd.audio.wav import encode_wav
        from voxd.tts.base import Utterance

        spoken = (self.say(text, n) if self.say else None) or text
        result = self.engine.synthesize([Utterance(spoken, self.voice, "en")])
        wave, rate = result.waveforms[0], result.sample_rate
        new_rate = self.rate(text, n) if self.rate else None
        if new_rate:
            positions = np.linspace(0, wave.size - 1, int(wave.size * new_rate / rate))
            wave, rate = np.interp(positions, np.arange(wave.size), wave).astype(np.float32), new_rate
        payload = encode_wav(wave, rate)
        if self.cut and self.cut(text, n):
            payload = payload[: 44 + (len(payload) - 44) // 2]
        return payload

    def times(self, text: str) -> int:
        with self.lock:
            return self.asked.count(text)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"
