"""The remote engine: speech from a fleet of OpenAI-compatible ``/v1/audio/speech`` servers.

vLLM-Omni and SGLang-Omni serve Qwen3-TTS with continuous batching, Kokoro-FastAPI
speaks on a CPU box, ``voxd serve`` puts voxd's own engines on another GPU: all of
them take OpenAI's request shape. This engine is their client. It is
:attr:`~voxd.tts.base.Engine.concurrent`: the renderer keeps :meth:`window`
single-chunk requests in flight and this engine sends each to the server with
the fewest outstanding (:mod:`voxd.tts.fleet`), so the servers' own batching does
the scaling and voxd stays the one coordinator (cache, checkpoints, assembly).

What it does for every request, so the rest of voxd need not care:

* asks for ``wav`` with ``stream: false`` (servers' defaults differ: mp3, streamed),
  reads rate and length from the reply's header, and checks the reply: a real WAV,
  not cut short, at the fleet's one rate, not empty;
* maps a chunk's voice, style and language onto the request: preset voices by
  name ("default" to the server's default, or a Qwen3-TTS speaker it lists),
  cloned voices of the library as ``ref_audio`` (a data URL) + ``ref_text`` for
  servers that clone, designed voices as ``task_type: VoiceDesign`` +
  ``instructions``; a voice the servers cannot speak is a VoiceError before any
  audio is rendered (:meth:`check_voices`);
* retries: a server that refuses connections, times out or answers 5xx is down
  for a back-off and the request goes to another; 429/503 wait as ``Retry-After``
  says and shrink that server's window; a bad reply is asked for again (with
  another seed where the server takes one) and, if every try is bad, the best
  one is kept with a note that the renderer turns into a flag;
* never retries what cannot get better: 400/404/413/422 for a text fail the job with
  the server's own message (:class:`RequestRejected`); a refusal of voxd itself (401/403,
  an exhausted quota, ``GET /models`` refused or without the model) would fail every
  book alike, so it pauses the job instead (:class:`ServersRefuse`), naming the setting;
* when no server has answered with audio for ``pause_after`` seconds (all down, or
  all only ever busy), raises
  :class:`ServersUnavailable`: the job waits in the queue, using up no attempt.

The model's identity, not any URL, is what goes into cache keys: moving a server
re-renders nothing, changing its model does. ``voxd serve`` tells its engine's
own fingerprint, so a book rendered in-process and through ``voxd serve`` share
their cache.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from ..errors import (
    ConfigError,
    EngineError,
    RequestRejected,
    ServersRefuse,
    ServersUnavailable,
    VoiceError,
)
from .base import Engine, Synthesis, Utterance
from .fleet import Endpoint, Fleet, Slot
from .languages import language_name
from .speech_api import (
    OVERLOADED,
    PERMANENT,
    REFUSING,
    Served,
    about_voice,
    hint,
    model_ids,
    quota,
    retry_after,
    served_from,
    server_message,
    shown,
    transport_error,
)
from .speech_reply import Oversized, Unreachable, post_speech, reply_cap, request_deadline

if TYPE_CHECKING:
    import httpx

    from ..voices import VoiceInfo, VoiceLibrary

log = logging.getLogger(__name__)

#: Bad answers (5xx, broken or short audio, timeouts) one text gets before the job is retried later.
MAX_ATTEMPTS = 4
#: Seconds to wait for a connection.
CONNECT_SECONDS = 10.0
#: What blank text becomes (no request is made for it).
_SILENCE_SECONDS = 0.1
_DEFAULT_NAMES = frozenset({"", "default"})
#: Preferred for "default" on servers that list Qwen3-TTS's speakers.
_DEFAULT_SPEAKERS = ("ryan", "aiden", "vivian", "serena")


@dataclass(slots=True)
class _Try:
    """The best take so far of one text, and why it is not good enough."""

    wave: np.ndarray
    rate: int
    problem: str
    score: float = field(default=0.0)


class RemoteEngine(Engine):
    """The client of a fleet of speech servers; see the module docstring."""

    concurrent = True

    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str = "",
        model: str = "",
        max_in_flight: int = 0,
        timeout_seconds: float = 60.0,
        pause_after_seconds: float = 120.0,
        library: VoiceLibrary | None = None,
    ) -> None:
        if not urls:
            raise ConfigError('engine = "remote" needs at least one URL in [remote] urls')
        self.fleet = Fleet([u.rstrip("/") for u in urls], max_in_flight=max_in_flight)
        self._api_key = api_key
        self._model = model.strip()
        self.timeout_seconds = timeout_seconds
        self.pause_after_seconds = pause_after_seconds
        self.library = library
        self._lock = threading.Lock()  # the client and the fleet's rate
        self._discovering = threading.Lock()
        self._served: Served | None = None
        self._checked: set[str] = set()  # endpoints whose /models listed the model
        self._rate: int | None = None  # the fleet's sample rate, from the first good reply
        self._last_audio = 0.0  # when any request last came back with audio (time.monotonic)
        self._references: dict[str, str] = {}  # cloned voice -> data URL of its recording
        self._known: set[str] = set()  # voices the servers said they speak
        self._narrators: dict[str, str | None] = {}  # language -> what a voxd serve says speaks it
        self._client: httpx.Client | None = None
        self._closed = False

    # -- the Engine contract ---------------------------------------------------------

    @property
    def model_id(self) -> str:  # type: ignore[override]
        return self.served().identity

    @property
    def default_voice(self) -> str:  # type: ignore[override]
        return self.served().default_voice or "default"

    @property
    def accepts_seed(self) -> bool:
        return self.served().seeds

    def window(self) -> int:
        return self.fleet.window()

    def check_voices(self, voices: Collection[str]) -> None:
        served = self.served()
        listed = {v.lower() for v in served.voices or []}
        for voice in voices:
            name = voice.strip()
            if name.lower() in _DEFAULT_NAMES or name in self._known:
                continue
            info = self._library_voice(name)
            if info is not None and info.kind == "cloned" and not served.clone:
                raise VoiceError(
                    f"voice {name!r} is cloned from a recording, but the speech servers serve {served.model}, "
                    "which cannot clone voices: point [remote] urls at servers running a Base checkpoint "
                    "(e.g. Qwen/Qwen3-TTS-12Hz-1.7B-Base), or choose a preset voice"
                )
            if info is not None and info.kind == "designed" and not served.design:
                raise VoiceError(
                    f"voice {name!r} is a designed voice, but the speech servers serve {served.model}, "
                    "which cannot design voices: point [remote] urls at servers running a VoiceDesign "
                    "checkpoint, or choose a preset voice"
                )
            if info is None and served.voxd:
                self._ask_voice(name)
            elif info is None and served.voices is not None and "+" not in name and name.lower() not in listed:
                some = ", ".join(sorted(served.voices)[:24]) or "none"
                raise VoiceError(f"the speech servers ({served.model}) have no voice {name!r}; they list: {some}")
            self._known.add(name)

    def _ask_voice(self, name: str) -> None:
        """voxd serve answers for each voice name (variants and aliases no list shows)."""
        from urllib.parse import quote

        for ep in self.fleet.endpoints:
            try:
                self._get_json(ep.url, f"/audio/voices/{quote(name, safe='')}")
                return
            except RequestRejected as exc:
                raise VoiceError(f"speech server {shown(ep.url)}: {exc.server_message or exc}") from None
            except Unreachable:
                continue
        raise ServersUnavailable(f"no speech server answered whether it speaks {name!r} ({self.fleet.reasons()})")

    def voice_identity(self, voice: str) -> str:
        info = self._library_voice(voice.strip())
        return f"{info.kind}:{info.created_at!r}" if info is not None else ""

    def synthesize(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Synthesis:
        if self._closed:
            raise EngineError("the remote engine was used after close()")
        if not batch:
            return Synthesis(waveforms=[], sample_rate=self._rate or 24000)
        self.check_voices({u.voice for u in batch})
        spoken = [i for i, u in enumerate(batch) if u.text.strip()]
        if len(spoken) <= 1:
            results = [self._speak(batch[i], seed) for i in spoken]
        else:
            with ThreadPoolExecutor(max_workers=min(len(spoken), max(1, self.window())),
                                    thread_name_prefix="voxd-remote") as pool:
                results = list(pool.map(lambda i: self._speak(batch[i], seed), spoken))
        rate = results[0][1] if results else (self._rate or 24000)
        waves: list[np.ndarray] = [np.zeros(int(rate * _SILENCE_SECONDS), np.float32) for _ in batch]
        problems: list[str | None] = [None] * len(batch)
        for i, (wave, _, problem) in zip(spoken, results):
            waves[i], problems[i] = wave, problem
        return Synthesis(waveforms=waves, sample_rate=rate, problems=problems)

    def voices(self) -> list[str]:
        listed = self.served().voices or []
        own = [v.name for v in self.library.list()] if self.library is not None else []
        return sorted(set(listed) | set(own))

    def narrator(self, voice: str, language: str | None = None) -> str:
        """The voice that speaks, as its server names it: a ``voxd serve`` picks its default
        voice by the chunk's language, so it is asked which (``GET /audio/voices?language=``)."""
        name = voice.strip()
        info = self._library_voice(name)
        if info is not None:
            return f"{name}, {info.kind} voice"
        served = self.served()
        if name.lower() in _DEFAULT_NAMES:
            told = self._server_narrator(language) if served.voxd else None
            if told:
                return told
            name = served.default_voice or "default voice"
        return f"{served.model.rsplit('/', 1)[-1]} ({name})"

    def _server_narrator(self, language: str | None) -> str | None:
        """What a ``voxd serve`` says speaks its default voice in ``language``; None from a server
        that does not say (an older voxd) or when none answers."""
        key = language or ""
        if key in self._narrators:
            return self._narrators[key]
        told = None
        for ep in self.fleet.endpoints:
            try:
                body = self._get_json(ep.url, "/audio/voices?language=" + quote(key, safe=""))
            except (Unreachable, RequestRejected, ServersRefuse):
                continue
            said = body.get("narrator") if isinstance(body, dict) else None
            told = said.strip()[:200] if isinstance(said, str) and said.strip() else None
            break
        self._narrators[key] = told
        return told

    def close(self) -> None:
        self._closed = True
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- discovery -------------------------------------------------------------------

    def probe(self) -> list[tuple[str, bool, str]]:
        """Each server as ``voxd doctor`` shows it: (url, answers well, what it said)."""
        found = []
        for ep in self.fleet.endpoints:
            try:
                ids = model_ids(self._get_json(ep.url, "/models"))
            except (Unreachable, RequestRejected, ServersRefuse) as exc:
                found.append((shown(ep.url), False, str(exc)))
                continue
            wanted = self._model or (ids[0] if ids else "")
            ok = bool(ids) and wanted in ids
            found.append((shown(ep.url), ok, f"serves {', '.join(ids) or 'no model'}"
                          + ("" if ok else f"; [remote] model is {wanted!r}")))
        return found

    def served(self) -> Served:
        """What the fleet serves: asked once, of the first server that answers."""
        if self._served is not None:
            return self._served
        with self._discovering:
            if self._served is None:
                self._served = self._discover()
                log.info("speech servers: %s (%d server%s), %s", self._served.model, len(self.fleet.endpoints),
                         "" if len(self.fleet.endpoints) == 1 else "s", self._summary(self._served))
        return self._served

    def _summary(self, s: Served) -> str:
        kinds = ["preset voices"] + (["cloning"] if s.clone else []) + (["designed voices"] if s.design else [])
        return ", ".join(kinds)

    def _discover(self) -> Served:
        reasons, refusals = [], []
        for ep in self.fleet.endpoints:
            try:
                served = served_from(self._get_json(ep.url, "/models"), self._model, ep.url)
            except Unreachable as exc:
                reasons.append(f"{shown(ep.url)}: {exc}")
                continue
            except ServersRefuse as exc:  # another server may serve voxd
                refusals.append((exc.setting, exc.detail))
                continue
            except RequestRejected as exc:  # no such path (404), not the model: the same
                refusals.append(("[remote] urls and model", str(exc)))
                continue
            served = self._with_voices(ep.url, served)
            self._checked.add(ep.url)
            return served
        if refusals:
            raise ServersRefuse("; ".join([text for _, text in refusals] + reasons),
                                ", ".join(dict.fromkeys(setting for setting, _ in refusals)))
        raise ServersUnavailable("no speech server answered: " + "; ".join(reasons))

    def _with_voices(self, url: str, served: Served) -> Served:
        if served.voices is not None:
            return served
        try:
            body = self._get_json(url, "/audio/voices")
        except (Unreachable, RequestRejected, ServersRefuse):
            return served
        voices = body.get("voices") if isinstance(body, dict) else body
        if not isinstance(voices, list):
            return served
        names = [v if isinstance(v, str) else str(v.get("name") or v.get("id") or "") for v in voices
                 if isinstance(v, (str, dict))]
        names = [n for n in names if n]
        default = served.default_voice
        if not served.voxd and names:
            lower = {n.lower(): n for n in names}
            default = next((lower[s] for s in _DEFAULT_SPEAKERS if s in lower), names[0])
        identity = served.identity if served.voxd else f"{served.identity}/voice={default or 'server-default'}"
        return replace(served, voices=names, default_voice=default, identity=identity)

    def _verify(self, ep: Endpoint) -> None:
        """A server that was down at discovery must serve the same model before it gets work."""
        if ep.url in self._checked:
            return
        try:
            models = self._get_json(ep.url, "/models")
        except (RequestRejected, ServersRefuse) as exc:  # this server only: the others serve voxd
            raise _WrongModel(f"refused GET /models ({getattr(exc, 'detail', exc)})") from None
        ids = model_ids(models)
        served = self.served()
        if served.model not in ids:
            raise _WrongModel(f"serves {', '.join(ids) or 'no model'}, not {served.model}")
        self._checked.add(ep.url)

    # -- one text ----------------------------------------------------------------------

    def _speak(self, u: Utterance, seed: int | None) -> tuple[np.ndarray, int, str | None]:
        """One text through the fleet: (wave, rate, what is still wrong with it or None)."""
        body = self._request(u, seed)
        deadline = request_deadline(u.text, self.timeout_seconds)
        attempts, best, last = 0, None, ""
        unanswered_since: float | None = None
        while True:
            if self._closed:
                raise EngineError("the remote engine was closed while a request waited")
            slot = self.fleet.acquire(timeout=1.0)
            if slot is None:
                unanswered_since = unanswered_since or time.monotonic()
                self._give_up_if_long(unanswered_since)
                continue
            ep = slot.endpoint
            try:
                self._verify(ep)
                response = self._post(ep.url, body, deadline, reply_cap(u.text, self._rate))
            except _WrongModel as exc:
                log.warning("speech server %s is left out: it %s", shown(ep.url), exc)
                self.fleet.exclude(slot, f"left out: it {exc}")
                continue
            except Unreachable as exc:
                news = self.fleet.failed(slot, str(exc), timed_out=exc.timed_out)
                log.log(logging.WARNING if news else logging.DEBUG, "speech server %s: %s; %s", shown(ep.url), exc,
                        "trying another" if len(self.fleet.endpoints) > 1 else "trying again after a pause")
                unanswered_since = unanswered_since or time.monotonic()
                if exc.timed_out:  # no audio either: a fleet that only times out pauses the job too
                    attempts, last = attempts + 1, str(exc)
                    self._give_up_if_long(unanswered_since)
                else:
                    self._give_up_if_long(unanswered_since)
                    continue
            except Oversized as exc:
                self.fleet.failed(slot, f"sent a bad reply: {exc}")
                log.warning("speech server %s sent a bad reply: %s", shown(ep.url), exc)
                attempts, last = attempts + 1, str(exc)
                if best is None:
                    best = _Try(np.zeros(0, np.float32), self._rate or 24000, f"the server's reply was {exc}", 1e9)
            except BaseException:
                self.fleet.released(slot)
                raise
            else:
                status = response.status_code
                # Busy answers are no audio either: a fleet that only ever says "busy" pauses the job too.
                unanswered_since = (unanswered_since or time.monotonic()) if status in OVERLOADED else None
                if status == 200:
                    outcome = self._judge(slot, response)
                    if isinstance(outcome, tuple):
                        return outcome
                    attempts, last = attempts + 1, outcome.problem
                    if best is None or outcome.score < best.score:
                        best = outcome
                    if self._served and self._served.seeds:  # ask for another take, not the same again
                        body["seed"] = (int(body.get("seed") or 0) * 31 + attempts) & 0x7FFFFFFF
                elif status in OVERLOADED and not quota(response):
                    self.fleet.overloaded(slot, retry_after(response), f"busy ({status})")
                    log.info("speech server %s is busy (%d); waiting %s", shown(ep.url), status,
                             response.headers.get("retry-after") or "a second")
                    assert unanswered_since is not None
                    self._give_up_if_long(unanswered_since)
                    continue
                elif status in PERMANENT and about_voice(response):
                    self.fleet.released(slot)
                    raise VoiceError(f"speech server {shown(ep.url)}: {server_message(response)}")
                elif status in REFUSING or quota(response):
                    error = refusal(f"speech server {shown(ep.url)} refused voxd ({status} {response.reason_phrase})"
                                    f": {server_message(response)}", status)
                    if self.fleet.others_usable(ep):  # a server with a rotated key: the others go on
                        log.warning("speech server %s is left out: %s (check %s)", shown(ep.url), error.detail,
                                    error.setting)
                        self.fleet.exclude(slot, f"left out: {error.detail}")
                        continue
                    self.fleet.released(slot)
                    raise error
                elif status in PERMANENT:
                    self.fleet.released(slot)
                    raise RequestRejected(
                        f"speech server {shown(ep.url)} refused the request ({status} {response.reason_phrase})"
                        f": {server_message(response)}" + hint(status)
                    )
                else:
                    reason = f"answered {status} {response.reason_phrase}: {server_message(response)}"
                    news = self.fleet.failed(slot, reason)
                    log.log(logging.WARNING if news else logging.DEBUG, "speech server %s %s", shown(ep.url), reason)
                    attempts, last = attempts + 1, reason
            if attempts >= MAX_ATTEMPTS:
                if best is not None:
                    return best.wave, best.rate, best.problem
                raise EngineError(f"the speech servers failed {attempts} times on one text; last: {last}")

    def _give_up_if_long(self, since: float) -> None:
        """Pause the job once the fleet, not just this request, has given no audio for a while:
        a request that keeps meeting a server busy with the book's other requests is not stuck."""
        if time.monotonic() - max(since, self._last_audio) >= self.pause_after_seconds:
            raise ServersUnavailable(
                f"no speech server has answered with audio for {self.pause_after_seconds:.0f} s"
                f" ({self.fleet.reasons()})"
            )

    def _judge(self, slot: Slot, response: httpx.Response) -> tuple[np.ndarray, int, None] | _Try:
        """A good reply as (wave, rate, None); anything else as a _Try saying what is wrong."""
        from ..audio.wav import WavError, decode_wav

        try:
            wav = decode_wav(response.content)
        except WavError as exc:
            self.fleet.failed(slot, f"sent a bad reply: {exc}")
            return _Try(np.zeros(0, np.float32), self._rate or 24000, f"the server's reply was {exc}", 1e9)
        seconds = wav.samples.size / wav.sample_rate
        if wav.cut_short:
            self.fleet.released(slot)
            promised = wav.declared_seconds or 0.0
            return _Try(wav.samples, wav.sample_rate,
                        f"the server's reply was cut short ({seconds:.1f} s of {promised:.1f} s)", 1e6 - seconds)
        if wav.samples.size == 0:
            self.fleet.released(slot)
            return _Try(wav.samples, wav.sample_rate, "the server sent no audio", 1e8)
        if response.headers.get("x-finish-reason", "").lower() == "length":  # SGLang-Omni, voxd serve
            self.fleet.released(slot)
            return _Try(wav.samples, wav.sample_rate, f"ran into the server's length cap at {seconds:.1f} s", 1e4)
        with self._lock:
            if self._rate is None:
                self._rate = wav.sample_rate
            rate = self._rate
        if wav.sample_rate != rate:
            self.fleet.released(slot)
            fixed = _resample(wav.samples, wav.sample_rate, rate)
            return _Try(fixed, rate,
                        f"{shown(slot.endpoint.url)} answered at {wav.sample_rate} Hz instead of {rate} Hz "
                        "(resampled)", 1e3)
        self.fleet.succeeded(slot, seconds)
        self._last_audio = time.monotonic()
        return wav.samples, wav.sample_rate, None

    def _request(self, u: Utterance, seed: int | None) -> dict[str, Any]:
        served = self.served()
        body: dict[str, Any] = {"model": served.model, "input": u.text.strip(), "response_format": "wav",
                                "stream": False}
        name = u.voice.strip()
        info = self._library_voice(name)
        if info is not None and info.kind == "cloned":
            body["task_type"] = "Base"
            body["ref_audio"] = self._reference(name)
            if info.transcript:
                body["ref_text"] = info.transcript
            else:
                body["x_vector_only_mode"] = True
        elif info is not None and info.kind == "designed":
            body["task_type"] = "VoiceDesign"
            body["instructions"] = f"{info.source}. {u.style}" if u.style else info.source
        else:
            voice = served.default_voice if name.lower() in _DEFAULT_NAMES else name
            if served.voxd and name.lower() in _DEFAULT_NAMES:
                voice = "default"
            if voice:
                body["voice"] = voice
            if u.style:
                body["instructions"] = u.style
        if u.language:
            language = u.language if served.voxd else language_name(u.language)
            if language:
                body["language"] = language
        if seed is not None and served.seeds:
            body["seed"] = seed
        return body

    def _reference(self, name: str) -> str:
        """A cloned voice's recording as a data URL (read once; never a path the server would open)."""
        if name not in self._references:
            assert self.library is not None
            data = (self.library.folder(name) / "reference.wav").read_bytes()
            self._references[name] = "data:audio/wav;base64," + base64.b64encode(data).decode("ascii")
        return self._references[name]

    def _library_voice(self, name: str) -> VoiceInfo | None:
        if self.library is None or name.lower() in _DEFAULT_NAMES:
            return None
        return self.library.get(name)

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                if self._closed:
                    raise EngineError("the remote engine was used after close()")
                import httpx

                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(
                    headers=headers, follow_redirects=False,
                    # no connection kept: each speech request is a new one, whose socket its deadline can shut
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                )
            return self._client

    def _post(self, url: str, body: dict[str, Any], deadline: float, cap: int) -> httpx.Response:
        return post_speech(self._http(), url, body, deadline=deadline, cap=cap, connect_seconds=CONNECT_SECONDS)

    def _get_json(self, url: str, path: str) -> Any:
        import httpx

        try:
            response = self._http().get(f"{url}{path}", timeout=httpx.Timeout(30.0, connect=CONNECT_SECONDS))
        except httpx.TimeoutException:
            raise Unreachable(f"did not answer GET {path} in 30 s") from None
        except httpx.TransportError as exc:
            raise Unreachable(transport_error(exc)) from None
        if response.status_code in REFUSING:
            raise refusal(f"speech server {shown(url)} refused GET {path} ({response.status_code}): "
                          f"{server_message(response)}", response.status_code)
        if response.status_code in PERMANENT:
            error = RequestRejected(
                f"speech server {shown(url)} refused GET {path} ({response.status_code}): "
                f"{server_message(response)}" + hint(response.status_code)
            )
            error.server_message = server_message(response)
            raise error
        if response.status_code != 200:
            raise Unreachable(f"answered GET {path} with {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise Unreachable(f"answered GET {path} with something that is not JSON") from None


def refusal(message: str, status: int) -> ServersRefuse:
    """A refusal of voxd: of its key, or of its account's quota."""
    return ServersRefuse(message, "[remote] api_key" if status in REFUSING else "the account's quota")


class _WrongModel(Exception):
    """The server answers, but serves another model than the fleet."""


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    import librosa

    out = librosa.resample(np.asarray(samples, np.float32), orig_sr=rate, target_sr=target)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
