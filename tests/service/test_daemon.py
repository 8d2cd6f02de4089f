"""Pieces of the daemon module that run without starting it: lock, digest."""

from __future__ import annotations

import os

import pytest

from voxd.errors import ConfigError
from voxd.service.daemon import acquire_lock, digest_fields
from voxd.service.notify import Notifier
from voxd.service.store import Store

from ..servers import HttpSink


def test_one_daemon_per_state_directory(tmp_path):
    fd = acquire_lock(tmp_path)
    try:
        with pytest.raises(ConfigError, match="already running"):
            acquire_lock(tmp_path)
        assert (tmp_path / "voxd.lock").read_text().strip() == str(os.getpid())
    finally:
        os.close(fd)
    os.close(acquire_lock(tmp_path))  # free again once the holder is gone


def test_digest_counts_the_last_day_and_is_delivered(tmp_path):
    store = Store(tmp_path / "db")
    for n, outcome in enumerate(["done", "done", "failed", None]):
        job, _ = store.put(f"{n:064d}", f"/in/{n}.epub")
        if outcome:
            store.claim(60)
            store.progress(job.id, title=f"Book {n}")
            store.finish(job.id, "/out/x.m4b") if outcome == "done" else store.fail(job.id, "broken zip")
    fields = digest_fields(store)
    assert (fields["done"], fields["failed"], fields["queued"]) == (2, 1, 1)
    assert "done: Book 0" in fields["lines"] and "failed: 2.epub: broken zip" in fields["lines"]
    with HttpSink() as sink:
        notifier = Notifier(store, [sink.url], events=[])  # the digest needs no opt-in beyond digest_time
        assert notifier.event("digest", **fields)
        notifier.deliver_pending()
    assert sink.received[0]["title"] == "voxd: 2 done, 1 failed in the last 24 hours"
