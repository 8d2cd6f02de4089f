"""Notifications delivered for real: apprise to a local HTTP server and a local SMTP server."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import SecretStr

from voxd.config import Templates
from voxd.notify import Notifier, redact

from .servers import HttpSink, SmtpSink


def test_json_webhook_receives_done_message():
    with HttpSink() as sink:
        notifier = Notifier([SecretStr(sink.url)])
        assert notifier.event("done", title="Emma", author="Jane Austen", chapters=55, duration="12h01m00s",
                              elapsed="3h00m00s", output="/out/Emma.m4b", job=1, file="emma.epub")
        notifier.close()
        [message] = sink.received
    assert message["title"] == "Audiobook ready: Emma"
    assert "Jane Austen" in message["message"] and "/out/Emma.m4b" in message["message"]
    assert message["type"] == "success"


def test_email_is_delivered_over_smtp():
    with SmtpSink() as sink:
        notifier = Notifier([sink.url])
        notifier.event("failed", file="broken.epub", reason="broken.epub: not a valid EPUB (zip) file")
        notifier.close()
        [mail] = sink.messages
    assert "Subject: voxd could not convert broken.epub" in mail
    assert "not a valid EPUB" in mail


def test_events_filter_and_custom_templates():
    with HttpSink() as sink:
        notifier = Notifier([sink.url], events=["failed"],
                            templates=Templates(failed_title="FAIL {file}", failed_body="because {reason}"))
        assert not notifier.event("done", title="x")
        assert notifier.event("failed", file="a.pdf", reason="scanned")
        notifier.close()
    assert [(m["title"], m["message"], m["type"]) for m in sink.received] == [
        ("FAIL a.pdf", "because scanned", "failure")
    ]


def test_send_never_blocks_on_a_dead_endpoint():
    # Nothing listens on this port: delivery fails, retries with back-off, but send() returns at once.
    from .servers import free_port

    notifier = Notifier([f"json://127.0.0.1:{free_port()}/x"], attempts=2, backoff=0.2)
    started = time.monotonic()
    for _ in range(5):
        notifier.event("done", title="t")
    assert time.monotonic() - started < 0.5
    notifier.close(timeout=30)
    assert notifier.failed == 5 and notifier.delivered == 0


def test_server_error_is_retried_then_given_up(caplog):
    with HttpSink(status=500) as sink:
        notifier = Notifier([sink.url], attempts=3, backoff=0.05)
        with caplog.at_level(logging.WARNING):
            notifier.event("done", title="t")
            notifier.close()
    assert len(sink.received) == 3
    assert notifier.failed == 1
    assert "failed after 3 attempts" in caplog.text


def test_secrets_never_reach_the_log(caplog):
    from .servers import free_port

    # Only loopback: the endpoint is dead, so the failure path (which logs the URL) runs.
    url = f"json://alice:hunter2secret@127.0.0.1:{free_port()}/hook?token=abcdef123456"
    shown = redact(url)
    assert "hunter2secret" not in shown and "127.0.0.1" in shown
    notifier = Notifier([url], attempts=1, backoff=0)
    with caplog.at_level(logging.DEBUG):
        notifier.event("done", title="t")
        notifier.close(timeout=30)
    assert "failed after 1 attempts" in caplog.text
    assert "hunter2secret" not in caplog.text


def test_unknown_fields_in_values_do_not_break_templates():
    with HttpSink() as sink:
        notifier = Notifier([sink.url])
        notifier.event("done", title="Only a title")
        notifier.close()
    assert sink.received[0]["title"] == "Audiobook ready: Only a title"
    assert "? of audio" in sink.received[0]["message"]
