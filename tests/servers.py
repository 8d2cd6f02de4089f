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


class HttpSink:
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

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HttpSink":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

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

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=voxd@example.com&to=reader@example.com&mode=insecure"
