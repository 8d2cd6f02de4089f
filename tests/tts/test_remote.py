"""The remote engine (voxd/tts/remote.py) against real servers on loopback.

``voxd serve`` processes for what a well-behaved server does, and
:class:`tests.servers.OddSpeechServer` (a real HTTP server speaking with eSpeak
NG) for what misbehaving ones do: cut replies short, answer at the wrong rate,
refuse, fail, ask to be left alone. The contract every engine keeps is tested
in tests/tts/test_base.py.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from voxd.book import Chunk, Pause
from voxd.cache import ChunkCache
from voxd.errors import (
    EngineError,
    PermanentError,
    RequestRejected,
    ServersRefuse,
    ServersUnavailable,
    Unavailable,
    VoiceError,
)
from voxd.render import Check, render, with_keys
from voxd.tts.base import Utterance
from voxd.tts.remote import MAX_ATTEMPTS, RemoteEngine
from voxd.tts.speech_api import shown
from voxd.voices import VoiceLibrary

from ..servers import OddSpeechServer, free_port
from ..support import ServeProcess, recording

TEXTS = [
    "The first sentence of the test, long enough to be judged by its duration.",
    "A second sentence, about the pebbles on the beach and the grey sea beyond them.",
    "And a third one, which ends the little book that these tests read aloud.",
]


@pytest.fixture
def served(serve_espeak) -> ServeProcess:
    return serve_espeak


def chunks(texts: list[str], model_id: str, voice: str = "default") -> list[Chunk]:
    return with_keys([Chunk(chapter=0, index=i, text=t, pause=Pause.SENTENCE, voice=voice, language="en")
                      for i, t in enumerate(texts)], model_id)


def engine_for(*urls: str, **options) -> RemoteEngine:
    options.setdefault("pause_after_seconds", 5.0)
    return RemoteEngine(list(urls), **options)


# -- what a fleet of good servers gives -------------------------------------------------------


def test_requests_spread_over_the_fleet_and_come_back_in_order(tmp_path):
    with OddSpeechServer() as a, OddSpeechServer() as b:
        eng = engine_for(a.url, b.url)
        # lengths far apart (each text a clause longer than the one before), shuffled: a wave in
        # the wrong place is the length of another text
        texts = [f"Sentence {n} of a book read by two servers" + ", and then one more clause" * n + "."
                 for n in (7, 2, 11, 0, 5, 9, 1, 4, 10, 3, 8, 6)]
        waves = eng.synthesize([Utterance(t, "en-us", "en") for t in texts]).waveforms
        assert len(a.asked) + len(b.asked) == 12 and a.asked and b.asked
        alone = [w.size for w in a.engine.synthesize([Utterance(t, "en-us", "en") for t in texts]).waveforms]
        ranked = sorted(alone)
        assert min(hi / lo for lo, hi in zip(ranked, ranked[1:])) > 1.08  # the premise: no two alike
        for got, own in zip(waves, alone):  # each wave is its own text's
            assert abs(got.size - own) < 0.03 * own
        eng.close()


def test_the_cache_key_holds_the_model_not_the_url(served: ServeProcess):
    with OddSpeechServer(model="odd-tts") as a, OddSpeechServer(model="odd-tts") as b, \
            OddSpeechServer(model="other-tts") as c:
        assert engine_for(a.url).model_id == engine_for(b.url).model_id == "openai-speech:odd-tts/voice=en-us"
        assert engine_for(c.url).model_id != engine_for(a.url).model_id
    # voxd serve tells its engine's own fingerprint: the same audio identity as rendering in-process
    from voxd.tts.espeak import EspeakEngine

    assert engine_for(served.url, api_key=served.key).model_id == EspeakEngine().model_id


def test_a_server_of_another_model_is_left_out():
    with OddSpeechServer(model="odd-tts") as a, OddSpeechServer(model="other-tts") as b:
        eng = engine_for(a.url, b.url)
        eng.synthesize([Utterance(t, "default", "en") for t in TEXTS * 2])
        assert b.asked == [] and len(a.asked) == 6
        assert "left out" in eng.fleet.reasons() and "other-tts" in eng.fleet.reasons()


def test_voice_style_and_language_map_onto_the_request():
    with OddSpeechServer(model="Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice") as a:
        eng = engine_for(a.url)
        eng.synthesize([Utterance(TEXTS[0], "en-gb", "de-AT", style="slowly"),
                        Utterance(TEXTS[1], "default", None)])
        first, second = sorted(a.bodies, key=lambda body: body["input"] != TEXTS[0])
        assert first["voice"] == "en-gb" and first["language"] == "German" and first["instructions"] == "slowly"
        assert first["response_format"] == "wav" and first["stream"] is False
        assert first["model"] == "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
        assert second["voice"] == "en-us"  # "default": the first voice the server lists (no Qwen speaker there)
        assert "language" not in second and "instructions" not in second


def test_cloned_and_designed_voices_go_to_servers_that_take_them(tmp_path):
    library = VoiceLibrary(tmp_path / "voices")
    library.add_recording(recording(tmp_path / "Narrator.wav"), transcript=None)
    library.add_design("Storyteller", "an old, warm voice")
    with OddSpeechServer(model="Qwen/Qwen3-TTS-12Hz-1.7B-Base") as base, \
            OddSpeechServer(model="Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign") as design:
        engine_for(base.url, library=library).synthesize([Utterance(TEXTS[0], "Narrator", "en")])
        [body] = base.bodies
        assert body["task_type"] == "Base" and body["x_vector_only_mode"] is True and "voice" not in body
        assert body["ref_audio"].startswith("data:audio/wav;base64,")
        engine_for(design.url, library=library).synthesize([Utterance(TEXTS[0], "Storyteller", "en", "softly")])
        [body] = design.bodies
        assert body["task_type"] == "VoiceDesign" and body["instructions"] == "an old, warm voice. softly"


def test_a_voice_the_servers_cannot_speak_fails_before_any_request(tmp_path, served: ServeProcess):
    library = VoiceLibrary(tmp_path / "voices")
    library.add_recording(recording(tmp_path / "Narrator.wav"))
    with OddSpeechServer(model="odd-tts") as a:
        eng = engine_for(a.url, library=library)
        with pytest.raises(VoiceError, match="'Narrator' is cloned .* cannot clone"):
            eng.check_voices(["Narrator"])
        with pytest.raises(VoiceError, match="no voice 'Bob'; they list: en-gb, en-us"):
            eng.check_voices(["Bob"])
        assert a.asked == []
    # voxd serve answers for each name, so aliases and variants no list shows pass
    eng = engine_for(served.url, api_key=served.key)
    eng.check_voices(["en-us+f3", "German", "default"])
    with pytest.raises(VoiceError, match="zz-nobody"):
        eng.check_voices(["zz-nobody"])


# -- misbehaving servers -----------------------------------------------------------------------


def test_a_reply_cut_short_is_asked_for_again():
    with OddSpeechServer(cut=lambda text, n: n == 1) as a:
        result = engine_for(a.url).synthesize([Utterance(t, "en-us", "en") for t in TEXTS])
        assert result.problems == [None, None, None]
        assert all(a.times(t) == 2 for t in TEXTS)


def test_a_reply_that_stays_cut_short_is_kept_and_flagged(tmp_path):
    with OddSpeechServer(cut=lambda text, n: "pebbles" in text) as a:
        eng = engine_for(a.url)
        cs = chunks(TEXTS, eng.model_id)
        progress = render(cs, eng, ChunkCache(tmp_path), batch_size=1)
        assert a.times(TEXTS[1]) == MAX_ATTEMPTS and a.times(TEXTS[0]) == 1
        [note] = progress.flagged
        assert "chunk 2" in note and "cut short" in note
        assert progress.chunks_done == 3  # the book goes on, with the best take kept


def test_a_reply_at_another_rate_is_asked_again_then_resampled_and_flagged(tmp_path):
    with OddSpeechServer(rate=lambda text, n: 16000 if "pebbles" in text else None) as a:
        eng = engine_for(a.url, max_in_flight=1)  # one at a time: the first reply sets the book's rate
        cs = chunks(TEXTS, eng.model_id)
        cache = ChunkCache(tmp_path)
        progress = render(cs, eng, cache, batch_size=1)
        assert a.times(TEXTS[1]) == MAX_ATTEMPTS
        [note] = progress.flagged
        assert "16000 Hz instead of 22050 Hz" in note
        assert {cache.get(c.key)[1] for c in cs} == {22050}


def test_5xx_sends_the_text_to_another_server(caplog):
    with OddSpeechServer(status=lambda text, n: 500) as broken, OddSpeechServer() as good:
        eng = engine_for(broken.url, good.url)
        result = eng.synthesize([Utterance(t, "en-us", "en") for t in TEXTS])
        assert result.problems == [None] * 3 and sorted(good.asked) == sorted(TEXTS)
        assert 1 <= len(broken.asked) <= 3  # down after its first failure, for a back-off
        assert "answered 500" in caplog.text


@pytest.mark.slow
def test_a_text_every_server_fails_on_is_an_engine_error():
    with (OddSpeechServer(status=lambda text, n: 502) as a,
          pytest.raises(EngineError, match=f"failed {MAX_ATTEMPTS} times.*502")):
        engine_for(a.url).synthesize([Utterance(TEXTS[0], "en-us")])


@pytest.mark.parametrize("status", [400, 404, 422])
def test_permanent_refusals_fail_at_once_with_the_servers_words(status):
    with OddSpeechServer(status=lambda text, n: status) as a:
        with pytest.raises(RequestRejected, match=f"refused the request \\({status} .*told to answer {status}"):
            engine_for(a.url).synthesize([Utterance(TEXTS[0], "en-us")])
        assert len(a.asked) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_of_voxd_itself_pauses_rather_than_fails(status):
    # Every book would get it: failing the job would fail the whole queue, one book at a time.
    with OddSpeechServer(status=lambda text, n: status) as a:
        lead = r"^the speech servers refuse voxd \(check \[remote\] api_key\): "
        with pytest.raises(ServersRefuse, match=lead + rf".*refused voxd \({status} "):
            engine_for(a.url).synthesize([Utterance(TEXTS[0], "en-us")])
        assert len(a.asked) == 1
    assert issubclass(ServersRefuse, Unavailable) and not issubclass(ServersRefuse, PermanentError)


def test_a_wrong_key_names_the_setting(served: ServeProcess):
    with pytest.raises(ServersRefuse, match=r"^the speech servers refuse voxd \(check \[remote\] api_key\): .*\(401\)"):
        _ = engine_for(served.url, api_key="not-the-key").model_id


def test_a_server_that_refuses_voxd_is_passed_over_for_one_that_serves_it(served: ServeProcess, tmp_path):
    with ServeProcess(tmp_path / "other", key="another-key") as other:  # voxd has the first server's key
        eng = engine_for(other.url, served.url, api_key=served.key)
        assert eng.model_id  # discovered from the second server
        texts = [f"{t} Once more, take {n}." for n in range(3) for t in TEXTS]
        result = eng.synthesize([Utterance(t, "default") for t in texts])
        assert result.problems == [None] * len(texts)  # a request the refusing server got went to the other


def test_a_server_that_refuses_a_speech_request_is_left_out_while_another_serves():
    # Both were fine at discovery; then one's key was rotated: the book goes on with the other.
    with OddSpeechServer() as good, OddSpeechServer(status=lambda text, n: 401) as rotated:
        eng = engine_for(rotated.url, good.url)
        result = eng.synthesize([Utterance(t, "en-us") for t in TEXTS * 2])
        assert result.problems == [None] * 6 and len(rotated.asked) >= 1
        assert "left out" in eng.fleet.reasons()
        asked = len(rotated.asked)
        eng.synthesize([Utterance("One more sentence for the fleet.", "en-us")])
        assert len(rotated.asked) == asked  # left out for good: no request goes to it again


def test_busy_servers_are_waited_for_and_their_window_shrinks():
    with OddSpeechServer(status=lambda text, n: 503 if n <= 2 else None) as a:
        eng = engine_for(a.url)
        eng.fleet.endpoints[0].limit = 8
        started = time.monotonic()
        result = eng.synthesize([Utterance(t, "en-us", "en") for t in TEXTS])
        assert result.problems == [None] * 3 and all(a.times(t) == 3 for t in TEXTS)
        assert eng.fleet.endpoints[0].limit < 8
        assert time.monotonic() - started >= 0.2 * 2  # Retry-After: 0.2, twice


@pytest.mark.slow
def test_a_fleet_that_only_ever_says_busy_pauses_the_job_too():
    with OddSpeechServer(status=lambda text, n: 503) as a:
        with pytest.raises(ServersUnavailable, match=r"with audio for 1 s \(.*busy \(503\)"):
            engine_for(a.url, pause_after_seconds=1.0).synthesize([Utterance(TEXTS[0], "en-us")])
        assert len(a.asked) >= 2  # it kept asking, as Retry-After said, until it gave up


def test_an_exhausted_quota_is_not_retried_and_pauses():
    with OddSpeechServer(status=lambda text, n: 4290) as a:
        with pytest.raises(ServersRefuse, match="insufficient_quota"):
            engine_for(a.url).synthesize([Utterance(TEXTS[0], "en-us")])
        assert len(a.asked) == 1


@pytest.mark.slow
def test_when_no_server_answers_the_job_pauses():
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with pytest.raises(ServersUnavailable, match="no speech server answered.*refused"):
        _ = engine_for(*dead).model_id
    with OddSpeechServer() as a:
        eng = engine_for(a.url, dead[0], pause_after_seconds=1.0)
        eng.synthesize([Utterance(TEXTS[0], "en-us")])  # discovered while a was up
    started = time.monotonic()
    with pytest.raises(ServersUnavailable, match="no speech server has answered with audio for 1 s"):
        eng.synthesize([Utterance(TEXTS[1], "en-us")])
    assert time.monotonic() - started < 10


def test_the_api_key_and_url_credentials_never_reach_the_log(caplog, served: ServeProcess):
    caplog.set_level(logging.DEBUG)
    eng = engine_for(served.url, api_key=served.key)
    eng.synthesize([Utterance(TEXTS[0], "default")])
    with pytest.raises(ServersRefuse):
        _ = engine_for(f"http://user:pa55word@127.0.0.1:{served.port}/v1", api_key="wrong-key-123").model_id
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("voxd"))
    assert "speech servers: voxd-espeak" in ours
    assert served.key not in ours and "wrong-key-123" not in ours and "pa55word" not in ours
    assert shown("http://user:pa55word@host:1/v1") == "http://host:1/v1"
    # httpx logs each request's URL at INFO; voxd's logging keeps it at WARNING and above
    from voxd.cli import _setup_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("apscheduler", "watchdog", "httpx", "httpcore")}
    try:
        _setup_logging("DEBUG")
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    finally:  # the CLI's logging set-up is for a process; the tests after this one keep theirs
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in quiet.items():
            logging.getLogger(name).setLevel(was)


def test_a_remote_render_keeps_a_window_of_requests_in_flight(tmp_path):
    """Not lockstep: each chunk is stored as it comes back, and the server sees several at once."""
    with OddSpeechServer() as a:
        eng = engine_for(a.url, max_in_flight=4)
        texts = [f"Sentence {n}, one of many that make a chapter of some length." for n in range(16)]
        cs = chunks(texts, eng.model_id)
        ready: list[list[str]] = []
        progress = render(cs, eng, ChunkCache(tmp_path), batch_size=64, on_ready=ready.append, check=Check())
        assert progress.chunks_done == 16 and progress.batch_size == 1
        assert all(len(keys) == 1 for keys in ready[1:])  # one by one, as each came back
        assert sorted(a.asked) == sorted(texts)


def test_stopping_a_remote_render_keeps_what_already_came_back(tmp_path):
    from voxd.errors import Stopping

    with OddSpeechServer() as a:
        eng = engine_for(a.url, max_in_flight=2)
        texts = [f"Sentence {n} of a book that is stopped halfway through its render." for n in range(12)]
        cs = chunks(texts, eng.model_id)
        cache = ChunkCache(tmp_path)
        calls = {"n": 0}

        def checkpoint():
            calls["n"] += 1
            if len(a.asked) >= 4:
                raise Stopping()

        with pytest.raises(Stopping):
            render(cs, eng, cache, batch_size=1, checkpoint=checkpoint)
        kept = [c for c in cs if c.key in cache]
        assert 4 <= len(kept) < 12 and len(kept) == len(a.asked)  # every request made was kept
        again = render(cs, eng, cache, batch_size=1)
        assert again.chunks_cached == len(kept) and len(a.asked) == 12  # none asked twice


def test_blank_text_costs_no_request(served: ServeProcess):
    eng = engine_for(served.url, api_key=served.key)
    before = len(served.requested())
    result = eng.synthesize([Utterance("  ", "default"), Utterance(TEXTS[0], "default")])
    assert not result.waveforms[0].any() and result.waveforms[1].any()
    assert len(served.requested()) == before + 1
    assert np.all(np.abs(result.waveforms[1]) <= 1.0)


def test_a_remote_engine_from_settings(tmp_path, served: ServeProcess):
    from voxd.config import Settings
    from voxd.tts.registry import load_engine

    settings = Settings(engine="remote", state_dir=tmp_path, remote={"urls": [served.url + "/"],
                                                                     "api_key": served.key})
    eng = load_engine(settings)
    assert isinstance(eng, RemoteEngine) and eng.fleet.endpoints[0].url == served.url
    assert eng.narrator("default") == "eSpeak NG (en-us)"  # as the server names its voice
    # a voxd serve picks its default voice by the language: the tags credit the one that spoke
    assert eng.narrator("default", "en-GB") == "eSpeak NG (en-gb)"
    assert eng.narrator("default", "ar") == "eSpeak NG (ar)"
    with pytest.raises(Exception, match="needs at least one speech server"):
        Settings(engine="remote")
    with pytest.raises(Exception, match="not an http"):
        Settings(remote={"urls": ["gpu-box:8880"]})


def test_after_close_it_refuses(served: ServeProcess):
    eng = engine_for(served.url, api_key=served.key)
    eng.close()
    with pytest.raises(EngineError):
        eng.synthesize([Utterance(TEXTS[0], "default")])


@pytest.mark.slow
def test_a_server_with_a_tiny_queue_slows_the_client_down_and_the_book_completes(tmp_path):
    with ServeProcess(tmp_path / "serve", extra_config="[serve]\nmax_queue = 1\nbatch_wait_ms = 50\n") as server:
        eng = engine_for(server.url, api_key=server.key, max_in_flight=4)
        texts = [f"Sentence {n}, sent four at a time to a server that takes one." for n in range(10)]
        cs = chunks(texts, eng.model_id)
        progress = render(cs, eng, ChunkCache(tmp_path / "cache"), batch_size=1)
        assert progress.chunks_done == 10 and progress.flagged == []
        assert "speech busy" in server.log()  # it did answer 503...
        assert sorted(set(server.answered())) == sorted(server.answered())  # ...and nothing was spoken twice


def test_a_bad_take_is_asked_for_again_with_another_seed_where_the_server_takes_seeds():
    with OddSpeechServer(model="Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", cut=lambda text, n: n <= 2) as a:
        eng = engine_for(a.url)
        assert eng.accepts_seed
        result = eng.synthesize([Utterance(TEXTS[0], "en-us", "en")], seed=11)
        assert result.problems == [None]
        seeds = [body.get("seed") for body in a.bodies]
        assert seeds[0] == 11 and len(set(seeds)) == 3  # each retry drew another take


# -- hostile servers: replies too big, replies that never end ----------------------------------------


def within(seconds: float, call):
    """``call()``'s result or exception, or a failure if it takes longer than ``seconds`` (the
    thread is left behind: the hostile server stops on its own after HOSTILE_SECONDS)."""
    import threading

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    return outcome, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["huge", "endless"])
def test_a_reply_bigger_than_its_text_can_need_is_cut_off_as_a_bad_take(mode):
    from voxd.tts.speech_reply import reply_cap

    short, other = "A short line.", "Another short line, spoken well."
    with OddSpeechServer(hostile=lambda text, n: mode if text == short else None) as a:
        eng = engine_for(a.url, max_in_flight=1)
        outcome, _ = within(60, lambda: eng.synthesize([Utterance(other, "en-us", "en"),
                                                        Utterance(short, "en-us", "en")]))
        result = outcome["result"]
        assert result.problems[0] is None
        assert "bigger than" in result.problems[1] and a.times(short) == MAX_ATTEMPTS
        cap = reply_cap(short, 22050)
        assert cap < 8 * 2**20
        # the client stopped reading at the cap: the server got to send little more than that (what
        # the kernel's buffers on both ends took, a few MB on loopback) of the 256 MB it would
        deadline = time.monotonic() + 10
        while len(a.sent) < MAX_ATTEMPTS and time.monotonic() < deadline:  # its last reply ending
            time.sleep(0.05)
        assert len(a.sent) == MAX_ATTEMPTS and max(a.sent) < cap + 16 * 2**20, a.sent


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["trickle", "trickle-headers"])
def test_a_reply_that_trickles_in_is_given_up_at_its_deadline(mode):
    text = "Hi there."  # a deadline of 0.5 s + 4 x 0.6 s of expected audio
    with OddSpeechServer(hostile=lambda t, n: mode) as a:
        eng = engine_for(a.url, timeout_seconds=0.5, pause_after_seconds=60.0)
        _ = eng.model_id
        outcome, took = within(40, lambda: eng.synthesize([Utterance(text, "en-us", "en")]))
        error = outcome.get("error")
        assert isinstance(error, EngineError), outcome
        assert f"failed {MAX_ATTEMPTS} times" in str(error) and "no whole answer in" in str(error)
        assert took < 30  # four deadlines of ~3 s and the back-offs between them, not minutes
        assert all(n < 40 for n in a.sent)  # each gave up after a few bytes


@pytest.mark.slow
def test_the_deadline_holds_on_a_server_that_keeps_connections_alive():
    """After a GET (the models, a narrator) the client may hold a kept-alive connection; the
    speech request must still be one the deadline can cut (a new connection, whose socket it has)."""
    with OddSpeechServer(hostile=lambda t, n: "trickle", keep_alive=True) as a:
        eng = engine_for(a.url, timeout_seconds=0.5, pause_after_seconds=60.0)
        _ = eng.model_id
        eng.probe()  # GETs that leave a connection to use again, where the client keeps them
        outcome, took = within(40, lambda: eng.synthesize([Utterance("Hi there.", "en-us", "en")]))
        assert isinstance(outcome.get("error"), EngineError), outcome
        assert "no whole answer in" in str(outcome["error"]) and took < 30


@pytest.mark.slow
def test_a_fleet_that_only_trickles_pauses_the_job():
    with OddSpeechServer(hostile=lambda t, n: "trickle") as a:
        eng = engine_for(a.url, timeout_seconds=0.5, pause_after_seconds=2.0)
        _ = eng.model_id
        outcome, took = within(30, lambda: eng.synthesize([Utterance("A trickled line.", "en-us", "en")]))
        assert isinstance(outcome.get("error"), ServersUnavailable), outcome
        assert "no speech server has answered with audio for 2 s" in str(outcome["error"])
        assert took < 15
