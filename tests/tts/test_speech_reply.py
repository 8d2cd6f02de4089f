"""A speech reply's size cap and deadline (voxd/tts/speech_reply.py). The hostile servers they
stop, a reply of 2 GB and one that trickles in, are in tests/tts/test_remote.py."""

from __future__ import annotations

from voxd.tts.speech_reply import MAX_READ_SECONDS, reply_cap, request_deadline


def test_the_reply_cap_grows_with_the_text_and_the_rate():
    assert reply_cap("word " * 200, 24000) > 5 * reply_cap("word " * 20, 24000)
    assert reply_cap("word " * 20, 48000) > reply_cap("word " * 20, 24000)
    assert reply_cap("word " * 20, None) >= reply_cap("word " * 20, 48000)  # no rate yet: the most a server sends
    assert reply_cap("Hi.", 24000) < 4 * 2**20  # a short text's reply: a few MB, never gigabytes


def test_the_deadline_grows_with_the_text_up_to_its_ceiling():
    short, long = request_deadline("word " * 20, 60.0), request_deadline("word " * 200, 60.0)
    assert 60.0 < short < long
    assert request_deadline("word " * 100_000, 60.0) == MAX_READ_SECONDS
