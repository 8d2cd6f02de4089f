"""Notifications delivered for real from the outbox: apprise to a local HTTP server and SMTP server."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import SecretStr

from voxd.config import Templates
from voxd.service.notify import Notifier, redact
from voxd.service.store import Store

from ..servers import HttpSink, SmtpSink, free_port


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "voxd.sqlite3")


def test_json_webhook_receives_done_message(store):
    with HttpSink() as sink:
        notifier = Notifier(store, [SecretStr(sink.url)])
        assert notifier.event("done", title="Emma", author="Jane Austen", chapters=55, duration="12h01m00s",
                              elapsed="3h00m00s", output="/out/Emma.m4b", job=1, file="emma.epub")
        assert notifier.deliver_pending() == 1
        [message] = sink.received
    assert message["title"] == "Audiobook ready: Emma"
    assert "Jane Austen" in message["message"] and "/out/Emma.m4b" in message["message"]
    assert message["type"] == "success"
    [row] = store.notifications()
    assert row.sent_at is not None


def test_email_is_delivered_over_smtp(store):
    with SmtpSink() as sink:
        notifier = Notifier(store, [sink.url])
        notifier.start()
        notifier.event("failed", file="broken.epub", reason="broken.epub: not a valid EPUB (zip) file")
        assert sink.event.wait(20)
        notifier.close()
        [mail] = sink.messages
    assert "Subject: voxd could not convert broken.epub" in mail
    assert "not a valid EPUB" in mail


def test_events_filter_and_custom_templates(store):
    with HttpSink() as sink:
        notifier = Notifier(store, [sink.url], events=["failed"],
                            templates=Templates(failed_title="FAIL {file}", failed_body="because {reason}"))
        assert not notifier.event("done", title="x")
        assert notifier.event("failed", file="a.pdf", reason="scanned")
        notifier.deliver_pending()
    assert [(m["title"], m["message"], m["type"]) for m in sink.received] == [
        ("FAIL a.pdf", "because scanned", "failure")
    ]


def test_no_urls_means_nothing_queued(store):
    assert not Notifier(store, []).event("done", title="x")
    assert store.notifications() == []


def test_outcome_and_message_are_one_transaction(store):
    job, _ = store.put("a" * 64, "/in/a.epub")
    store.claim(60)
    notifier = Notifier(store, [f"json://127.0.0.1:{free_port()}/x"])
    store.finish(job.id, "/out/a.m4b", notify=notifier.render("done", title="A"))
    assert [n.event for n in store.notifications()] == ["done"]
    # a second finish (e.g. after a crash) changes nothing and queues nothing
    assert not store.finish(job.id, "/out/a.m4b", notify=notifier.render("done", title="A"))
    assert len(store.notifications()) == 1


def test_send_never_blocks_on_a_dead_endpoint(store):
    import apprise  # noqa: F401  (imported here, not in the delivery thread while the events are timed)

    notifier = Notifier(store, [f"json://127.0.0.1:{free_port()}/x"], attempts=2, backoff=0.2, poll=0.1)
    notifier.start()
    started = time.monotonic()
    for _ in range(5):
        notifier.event("done", title="t")
    assert time.monotonic() - started < 1.0  # delivering them takes at least 5 x 0.2 s of backoff
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(n.gave_up_at is None for n in store.notifications()):
        time.sleep(0.1)
    notifier.close()
    rows = store.notifications()
    assert len(rows) == 5 and all(n.gave_up_at and n.attempts == 2 and n.sent_at is None for n in rows)


def test_server_error_is_retried_then_given_up(store, caplog):
    with HttpSink(status=500) as sink:
        notifier = Notifier(store, [sink.url], attempts=3, backoff=0.05, poll=0.05)
        with caplog.at_level(logging.WARNING):
            notifier.start()
            notifier.event("done", title="t")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and store.notifications()[0].gave_up_at is None:
                time.sleep(0.05)
            notifier.close()
    assert len(sink.received) == 3
    assert "failed after 3 attempts" in caplog.text


def test_undelivered_message_survives_a_restart(tmp_path):
    port = free_port()
    url = f"json://127.0.0.1:{port}/hook"
    first = Notifier(Store(tmp_path / "db"), [url], attempts=5, backoff=0.0)
    first.event("done", title="Kept")
    first.deliver_pending()  # nothing listens yet: it fails and stays in the outbox
    assert Store(tmp_path / "db").notifications()[0].sent_at is None
    with HttpSink(port=port) as sink:  # the endpoint is back, and voxd restarted
        Notifier(Store(tmp_path / "db"), [url]).deliver_pending()
    assert [m["title"] for m in sink.received] == ["Audiobook ready: Kept"]


def test_a_url_that_has_the_message_never_gets_it_twice(store):
    with HttpSink() as good, HttpSink(status=500) as bad:
        notifier = Notifier(store, [good.url, bad.url], attempts=3, backoff=0.0)
        notifier.event("done", title="Once")
        notifier.deliver_pending()
        notifier.deliver_pending()
        notifier.deliver_pending()
    assert len(good.received) == 1
    assert len(bad.received) == 3
    [row] = store.notifications()
    assert row.gave_up_at is not None and "delivery failed" in row.error


def test_secrets_never_reach_the_log_or_the_database(store, caplog, tmp_path):
    # Only loopback: the endpoint is dead, so the failure path (which logs the URL) runs.
    url = f"json://alice:hunter2secret@127.0.0.1:{free_port()}/hook"
    shown = redact(url)
    assert "hunter2secret" not in shown and "127.0.0.1" in shown
    notifier = Notifier(store, [url], attempts=1)
    with caplog.at_level(logging.DEBUG):
        notifier.event("done", title="t")
        notifier.deliver_pending()
    assert "failed after 1 attempts" in caplog.text
    assert "hunter2secret" not in caplog.text
    assert b"hunter2secret" not in (tmp_path / "voxd.sqlite3").read_bytes()


def test_missing_template_fields_read_as_question_marks(store):
    with HttpSink() as sink:
        notifier = Notifier(store, [sink.url])
        notifier.event("done", title="Only a title")
        notifier.deliver_pending()
    assert sink.received[0]["title"] == "Audiobook ready: Only a title"
    assert "? of audio" in sink.received[0]["message"]
