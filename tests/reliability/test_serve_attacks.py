"""``voxd serve`` under attack, on loopback: half-open connections (slowloris), more of them than
the process may open files, each bounded in count and time. The malformed and oversized
requests are in tests/test_serve.py."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import httpx
import pytest

from ..support import ServeProcess, closed_by_server

TEXT = "A sentence for the speech server under attack."
#: A request begun and never finished: its headers stop half way.
HALF_A_REQUEST = b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
#: A request whose headers came, but not its body.
HALF_A_BODY = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-key\r\n"
               b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input\": ")


def slow_clients(port: int, n: int, what: bytes = HALF_A_REQUEST) -> list[socket.socket]:
    clients = []
    for _ in range(n):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        with contextlib.suppress(OSError):  # closed at once, as it may be
            client.sendall(what)
        clients.append(client)
    return clients


def speak(server: ServeProcess, timeout: float = 30) -> int:
    return httpx.post(f"{server.url}/audio/speech", json={"input": TEXT, "response_format": "wav"},
                      headers={"Authorization": f"Bearer {server.key}"}, timeout=timeout).status_code


def close_all(clients: list[socket.socket]) -> None:
    for client in clients:
        client.close()


@pytest.mark.slow
def test_requests_that_never_arrive_whole_are_closed(tmp_path):
    with ServeProcess(tmp_path, extra_config="[serve]\nrequest_timeout_seconds = 1.0\n") as server:
        clients = slow_clients(server.port, 10) + slow_clients(server.port, 10, HALF_A_BODY)
        try:
            started = time.monotonic()
            assert all(closed_by_server(c, 8) for c in clients)
            assert time.monotonic() - started < 8
            assert speak(server) == 200  # a whole request is answered as before
        finally:
            close_all(clients)
        assert "Traceback" not in server.log()


@pytest.mark.slow
def test_connections_past_the_cap_are_closed_at_once_and_logged_once(tmp_path):
    config = "[serve]\nmax_connections = 10\nrequest_timeout_seconds = 60\n"
    with ServeProcess(tmp_path, extra_config=config) as server:
        held = slow_clients(server.port, 10)
        try:
            time.sleep(0.3)  # the server has taken them all
            turned = slow_clients(server.port, 40)
            assert all(closed_by_server(c, 3) for c in turned)
            assert not any(closed_by_server(c, 0.2) for c in held)  # the first ten are still open
            close_all(turned)
        finally:
            close_all(held)
        time.sleep(0.3)
        assert speak(server) == 200
        refused = [line for line in server.log().splitlines() if "refused" in line and "connection" in line]
        assert 1 <= len(refused) <= 2, refused  # one line for the burst, not one per connection
        assert "max_connections" in refused[0]


@pytest.mark.slow
def test_more_slow_clients_than_files_lock_no_one_out_for_long(tmp_path):
    # 256 files (a unit's LimitNOFILE, low), 400 half-open clients, and a real one after them.
    config = "[serve]\nrequest_timeout_seconds = 2.0\n"
    with ServeProcess(tmp_path, extra_config=config, nofile=256) as server:
        clients = slow_clients(server.port, 400)
        try:
            deadline, status = time.monotonic() + 20, None
            while status != 200 and time.monotonic() < deadline:
                try:
                    status = speak(server, timeout=5)
                except httpx.TransportError:
                    time.sleep(0.2)
            assert status == 200  # within the request timeout or so, not never
        finally:
            close_all(clients)
        log = server.log()
        assert "too few for [serve] max_connections = 512" in log
        assert "Too many open files" not in log and "Traceback" not in log
        loud = [line for line in log.splitlines() if " DEBUG " not in line]  # the test's server logs DEBUG
        assert len(loud) < 10, loud  # a few lines, not a traceback per accept()


def test_the_units_give_room_for_the_connections():
    from pathlib import Path

    from voxd.config import ServeSettings
    from voxd.serve_connections import RESERVED_FILES

    units = sorted((Path(__file__).parents[2] / "systemd").glob("*.service"))
    assert len(units) == 3
    for unit in units:
        [limit] = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("LimitNOFILE=")]
        assert int(limit) >= ServeSettings().max_connections + RESERVED_FILES, unit.name


def test_refusals_are_logged_once_per_interval(caplog):
    from voxd.serve_connections import RefusalLog

    now = [0.0]
    refusals = RefusalLog(interval=10.0, clock=lambda: now[0])
    with caplog.at_level("WARNING"):
        for step in range(300):  # 300 refusals over 30 s
            now[0] = step * 0.1
            refusals.refused("512 connections are open")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and refusals.total == 300
    assert "refused a connection: 512 connections are open" in lines[0]
    assert "refused 100 connections in the last 10 s" in lines[1]


@pytest.mark.slow
def test_a_request_whose_client_is_gone_is_dropped_from_its_batch(tmp_path):
    import threading

    from ..support import text_digest

    config = "[serve]\nbatch_wait_ms = 2000\n"  # the first request waits 2 s for company
    with ServeProcess(tmp_path, extra_config=config) as server:
        replies: list[int] = []
        asker = threading.Thread(target=lambda: replies.append(speak(server)))
        asker.start()
        time.sleep(0.3)
        gone = [f"Text number {n}, asked for by a client that does not wait for it." for n in range(10)]
        for text in gone:
            body = json.dumps({"input": text, "response_format": "wav"}).encode()
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
                client.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Authorization: Bearer test-key\r\nContent-Type: application/json\r\n"
                               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                time.sleep(0.05)  # the server has the request; then the client hangs up
        asker.join(30)
        assert replies == [200]
        deadline = time.monotonic() + 5
        while len(server.requested()) < 11 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(server.requested()) == sorted([text_digest(TEXT)] + [text_digest(t) for t in gone])
        assert server.answered() == [text_digest(TEXT)]  # nothing spoken for nobody
        assert server.log().count("the client disconnected") >= 10
        assert speak(server) == 200


@pytest.mark.slow
def test_a_flood_of_malformed_requests_is_a_400_each_and_a_line_each(tmp_path):
    bodies = [b"[" * 5000 + b"]" * 5000, b'{"input": "\\ud800 x"}',
              b'{"input": "ok", "voice": "' + b"v" * 500_000 + b'"}', b"\xff\xfe not even text",
              b'{"input": 1e999999}', b'{"input": ["a", {"b": null}]}']
    with ServeProcess(tmp_path) as server:
        since = len(server.log())
        with httpx.Client(headers={"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"},
                          timeout=30) as http:
            for n in range(120):
                reply = http.post(f"{server.url}/audio/speech", content=bodies[n % len(bodies)])
                assert 400 <= reply.status_code < 500 and set(reply.json()["error"]) >= {"message", "code"}, reply.text
                assert len(reply.content) < 2000
        added = server.log()[since:]
        assert "Traceback" not in added and len(added.splitlines()) == 120 and len(added) < 120 * 400
        assert speak(server) == 200
