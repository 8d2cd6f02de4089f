"""The page's server: idle connections cannot take the daemon's files, a slow upload still arrives."""

from __future__ import annotations

import socket
import time

import pytest

from tests.support import closed_by_server
from tests.web.conftest import start_page
from voxd.web import server as web_server


def connect(page) -> socket.socket:
    host, port = page.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


@pytest.fixture
def tight(tmp_path, monkeypatch):
    monkeypatch.setattr(web_server, "MAX_CONNECTIONS", 4)
    monkeypatch.setattr(web_server, "HEADER_SECONDS", 1.0)
    monkeypatch.setattr(web_server, "BODY_PROGRESS", 30)  # bytes a body must bring within each second
    page = start_page(tmp_path, password="secret")
    yield page
    page.server.stop()


def test_a_connection_that_sends_no_request_is_closed(tight):
    sock = connect(tight)
    sock.sendall(b"GET /api/jobs HTTP/1.1\r\nHost: x\r\n")  # and never the end of its headers
    assert closed_by_server(sock, 5)


def test_connections_past_the_cap_are_closed_at_once_and_the_page_still_answers(tight, caplog):
    idle = [connect(tight) for _ in range(4)]
    time.sleep(0.3)
    extra = connect(tight)
    assert closed_by_server(extra, 2)
    assert "web page: refused a connection" in caplog.text and "the web page's cap" in caplog.text
    for sock in idle:
        sock.close()
    time.sleep(1.5)
    with tight.client(headers={"Authorization": "Bearer secret"}) as c:
        assert c.get("/api/jobs").status_code == 200


def test_a_body_that_only_trickles_is_closed(tight):
    sock = connect(tight)
    sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 100000\r\n\r\npassword=")
    start = time.monotonic()
    try:
        while time.monotonic() - start < 6:
            sock.sendall(b"x")  # a byte every half second: far under 30 bytes a second
            time.sleep(0.5)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_by_server(sock, 1)
    assert time.monotonic() - start < 5


def test_a_slow_upload_is_not_cut_by_the_header_deadline(tight):
    body = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.json\"\r\n\r\n"
            + b'{"voxd_manifest": 1, "title": "Slow", "chapters": [{"title": "One", "text": "Hello."}]}'
            + b"\r\n--B--\r\n")
    sock = connect(tight)
    sock.sendall(b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer secret\r\n"
                 b"Content-Type: multipart/form-data; boundary=B\r\n"
                 + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
    for i in range(0, len(body), 40):  # the body over 2.5 s, past the 1 s deadline, 40 bytes at a time
        sock.sendall(body[i:i + 40])
        time.sleep(2.5 * 40 / len(body))
    sock.settimeout(10)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    assert tight.store.jobs()[0].name == "slow.json"
