"""``voxd serve``: voxd's own engines behind OpenAI's ``/v1/audio/speech``.

One process, one engine, one GPU (``--device cuda:1`` for a second card): a
daemon elsewhere points ``engine = "remote"`` at it, as at any vLLM-Omni or
Kokoro server. Concurrent requests are coalesced into the engine's batches by
:mod:`voxd.tts.batcher`.

The edges are where a server gets hurt, so they are explicit:

* a bearer key (``[serve] api_key`` or ``VOXD_SERVE__API_KEY``) guards every
  ``/v1`` route; without one the server binds only a loopback address;
* request bodies and texts are capped; a request that is too big, malformed or
  asks for something this server does not do gets OpenAI's error envelope with a
  message that says what to change;
* nothing a request names is ever opened: voices are names in the engine or its
  library, and reference audio by URL or path is refused;
* a full queue answers 503 with ``Retry-After``, so clients slow down.

``GET /v1/models`` lists one model, with a ``voxd`` object that tells a voxd
client what this engine can do and its fingerprint (the cache identity of its
audio, so a book rendered here and in-process share its cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import heap
from .audio.speech_formats import MEDIA_TYPES, encode
from .audio.tempo import SPEED_MAX, SPEED_MIN, stretch
from .errors import ConfigError, EngineError, PermanentError, VoiceError, VoxdError
from .tts.base import Engine, Utterance
from .tts.batcher import Batcher, QueueFull

if TYPE_CHECKING:
    from .config import Settings
    from .verify.recogniser import Recogniser

log = logging.getLogger(__name__)

#: ``model`` values stock OpenAI clients send; taken to mean this server's model.
OPENAI_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})
#: ``voice`` values stock OpenAI clients send; taken to mean this server's default voice,
#: unless the engine has a voice of that name.
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
                           "verse"})


class SpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech``; fields other servers take are accepted and ignored
    where ignoring them is harmless, refused where it is not."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    input: str
    voice: str = "default"
    instructions: str | None = Field(None, max_length=2000)
    language: str | None = Field(None, max_length=40)
    response_format: str = "mp3"  # OpenAI's default: a client that names none expects mp3
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    speed: float = 1.0
    stream: bool = False
    task_type: Literal["CustomVoice", "VoiceDesign", "Base", None] = None
    ref_audio: str | None = None
    ref_text: str | None = None


@dataclass(frozen=True, slots=True)
class ServeOptions:
    model_name: str
    api_key: str
    max_input_chars: int
    max_body_bytes: int
    #: answers POST /v1/audio/transcriptions (the read-back of daemons elsewhere); None: 404
    recogniser: Recogniser | None = None


class _Refused(Exception):
    """A request this server answers with an error envelope."""

    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind
        self.headers = headers or {}


#: The most of a client's string an error message or a log line quotes.
QUOTE_CHARS = 60
#: The longest message an error envelope carries: whatever a message quotes, it stays this short.
MAX_MESSAGE_CHARS = 1000


def quote(text: str, limit: int = QUOTE_CHARS, *, marks: bool = True) -> str:
    """A client's string as an error quotes it (in quotes, or as it is for a path): its first
    ``limit`` characters, and its length when it is longer (a 1 MB voice name is not sent back,
    nor written to the log)."""
    shown = (repr if marks else str)(text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text)} characters)"


def error_response(status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error envelope, which every client of these servers parses."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "..."
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


#: The longest voice name looked up: the engines' and the library's are far shorter.
MAX_VOICE_CHARS = 200

#: Transcriptions waiting for the recogniser (one runs at a time) beyond which a request gets 503.
MAX_TRANSCRIPTIONS_WAITING = 32


def create_app(engine: Engine, batcher: Batcher, options: ServeOptions) -> Starlette:
    started = int(time.time())
    transcribing = [0]  # requests past their upload, waiting for or in the recogniser

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                _authorise(request, options.api_key)
                return await handler(request)
            except _Refused as exc:
                if exc.status < 500:  # one line each; a wrong key (an old daemon, someone trying keys) a warning
                    client = request.client.host if request.client else "an unknown address"
                    log.log(logging.WARNING if exc.status == 401 else logging.INFO,
                            "voxd serve: refused %s %s from %s: %d %s", request.method,
                            request.url.path[:QUOTE_CHARS], client, exc.status, exc.message[:MAX_MESSAGE_CHARS])
                return error_response(exc.status, exc.message, param=exc.param, kind=exc.kind, headers=exc.headers)
            except ClientDisconnect:  # the client went, or its body did not come in time: nobody to answer
                log.debug("voxd serve: %s %s: the client disconnected", request.method, request.url.path[:QUOTE_CHARS])
                return Response(status_code=499)
            except Exception as exc:  # noqa: BLE001 - a request this server did not foresee: one line, no traceback
                log.error("voxd serve: %s %s failed: %s: %s", request.method, request.url.path[:QUOTE_CHARS],
                          type(exc).__name__, str(exc)[:MAX_MESSAGE_CHARS])
                return error_response(500, f"the server failed on this request: {type(exc).__name__}",
                                      kind="server_error")
        return run

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": options.model_name, "waiting": batcher.waiting,
                             "batch_size": batcher.batch_size, "batches": batcher.batches})

    async def models(request: Request) -> Response:
        entry = {
            "id": options.model_name, "object": "model", "created": started, "owned_by": "voxd",
            "voxd": {
                "fingerprint": engine.model_id, "default_voice": engine.default_voice,
                "voices": engine.voices(), "seeds": engine.accepts_seed, "clone": False, "design": False,
            },
        }
        return JSONResponse({"object": "list", "data": [entry]})

    async def voices(request: Request) -> Response:
        body: dict[str, Any] = {"voices": engine.voices()}
        language = request.query_params.get("language")
        if language is not None:  # which voice speaks this language (a daemon's narrator tag)
            body["narrator"] = engine.narrator("default", language.strip()[:35] or None)
        return JSONResponse(body)

    async def voice(request: Request) -> Response:
        """Whether this server speaks a voice: names are checked by the engine, so variants and
        aliases a list cannot show (eSpeak's "en-us+f3") answer too."""
        name = request.path_params["name"]
        if len(name) > MAX_VOICE_CHARS:
            raise _Refused(404, f"no voice is named {quote(name)}", param="voice", kind="not_found_error")
        try:
            engine.check_voices([name])
        except VoiceError as exc:
            raise _Refused(404, str(exc), param="voice", kind="not_found_error") from None
        return JSONResponse({"voice": name, "narrator": engine.narrator(name)})

    async def speech(request: Request) -> Response:
        body = await _read_json(request, options.max_body_bytes)
        try:
            req = SpeechRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise _Refused(400, f"{param or 'body'}: {first['msg']}", param=param) from None
        utterance = _utterance(req, engine, options)
        digest = text_digest(utterance.text)
        log.debug("speech asked %s (%d characters, voice %s)", digest, len(utterance.text), utterance.voice)
        try:
            future = batcher.submit(utterance, req.seed)
        except QueueFull as exc:
            log.debug("speech busy %s: %s", digest, exc)
            raise _Refused(503, f"the server is busy: {exc}; try again shortly", kind="server_busy",
                           headers={"Retry-After": "1"}) from None
        try:
            spoken = await _unless_gone(request, asyncio.wrap_future(future))
        except ClientDisconnect:
            future.cancel()  # dropped from its batch, unless that batch is being spoken already
            batcher.cancelled()
            log.debug("speech dropped %s: the client disconnected", digest)
            raise
        except PermanentError as exc:
            raise _Refused(400, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the engine failed: the client may try elsewhere
            log.error("speech failed: %s: %s", type(exc).__name__, exc)
            raise _Refused(500, f"the engine failed: {exc}", kind="server_error") from None
        log.debug("speech answered %s (%.1f s)", digest, spoken.wave.size / spoken.sample_rate)
        fmt = req.response_format
        # an engine without a rate of its own: the audio stretched to the speed asked for
        speed = 1.0 if engine.paced else utterance.speed
        try:
            content = await asyncio.to_thread(
                lambda: encode(stretch(spoken.wave, spoken.sample_rate, speed), spoken.sample_rate, fmt))
        except Exception as exc:  # noqa: BLE001 - FFmpeg's error, in the envelope like every other
            log.error("encoding %s failed: %s: %s", fmt, type(exc).__name__, exc)
            raise _Refused(500, f"encoding the audio as {fmt} failed: {exc}", kind="server_error") from None
        headers = {"X-Sample-Rate": str(spoken.sample_rate),
                   "X-Finish-Reason": "length" if spoken.truncated else "stop"}
        return Response(content, media_type=MEDIA_TYPES[fmt], headers=headers)

    async def transcriptions(request: Request) -> Response:
        """What a recording says, as OpenAI's transcription API answers: a daemon elsewhere reads
        its takes back here. The audio is decoded from the upload, never fetched from a URL."""
        recogniser = options.recogniser
        if recogniser is None:
            raise _Refused(404, "this server has no recogniser: it reads back nothing ([verify] model)",
                           kind="not_found_error")
        # the body is read with its size counted (a chunked upload has no Content-Length), then parsed
        body = await _read_body(request, options.max_body_bytes)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            async with Request(request.scope, replay).form(max_files=1, max_fields=16,
                                                             max_part_size=options.max_body_bytes) as form:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise _Refused(400, "the request has no audio: send it as the multipart field 'file'",
                                   param="file")
                data = await upload.read(options.max_body_bytes + 1)
                language = str(form.get("language") or "") or None
                fmt = str(form.get("response_format") or "json")
        except HTTPException as exc:  # the form could not be parsed (not multipart, too many parts)
            raise _Refused(400, f"the request is not a multipart form this server reads: {exc.detail}") from None
        if len(data) > options.max_body_bytes:
            raise _Refused(413, f"the audio is over {options.max_body_bytes} bytes, the most this server takes")
        if fmt not in ("json", "text", "verbose_json"):
            raise _Refused(400, f"response_format {quote(fmt)}: this server answers json, text or verbose_json",
                           param="response_format")
        try:
            wave, rate = await asyncio.to_thread(_decode_audio, data)
        except _Refused:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the decoder says of a file it cannot read
            raise _Refused(400, f"the audio could not be decoded: {exc}", param="file") from None
        if language and not recogniser.knows(language):
            raise _Refused(400, f"this server's recogniser ({recogniser.name}) does not know {quote(language)}",
                           param="language")
        if transcribing[0] >= MAX_TRANSCRIPTIONS_WAITING:  # each would hold a worker thread behind the lock
            raise _Refused(503, "the server is busy transcribing; try again shortly", kind="server_busy",
                           headers={"Retry-After": "1"})
        transcribing[0] += 1
        try:
            heard = await asyncio.to_thread(recogniser.transcribe, wave, rate, language)
        except Exception as exc:  # noqa: BLE001 - the recogniser failed: the client may try elsewhere
            log.error("transcription failed: %s: %s", type(exc).__name__, exc)
            raise _Refused(500, f"the recogniser failed: {exc}", kind="server_error") from None
        finally:
            transcribing[0] -= 1
        if fmt == "text":
            return Response(heard.text, media_type="text/plain; charset=utf-8")
        answer: dict[str, Any] = {"text": heard.text}
        if fmt == "verbose_json":
            answer.update(language=heard.language, duration=round(wave.size / rate, 3), task="transcribe")
        return JSONResponse(answer)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/audio/transcriptions", guarded(transcriptions), methods=["POST"]),
        Route("/v1/models", guarded(models), methods=["GET"]),
        Route("/v1/audio/voices", guarded(voices), methods=["GET"]),
        Route("/v1/audio/voices/{name}", guarded(voice), methods=["GET"]),
        Route("/v1/audio/speech", guarded(speech), methods=["POST"]),
    ]
    async def unrouted(request: Request, exc: Exception) -> Response:
        """Starlette's own 404 and 405 in the envelope too: a client parses every error the same way."""
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = (f"this server has no {quote(request.url.path, marks=False)}; it answers POST /v1/audio/speech, "
                       "POST /v1/audio/transcriptions, GET /v1/models, GET /v1/audio/voices and GET /health")
        elif exc.status_code == 405:
            message = (f"{request.method} is not allowed on {quote(request.url.path, marks=False)} "
                       f"(allowed: {headers.get('Allow', '')})")
        else:
            message = exc.detail
        return error_response(exc.status_code, message, headers=headers)

    return Starlette(routes=routes, exception_handlers={HTTPException: unrouted})


#: The longest recording /v1/audio/transcriptions takes: a chunk's take is seconds long, and a
#: few compressed megabytes of silence would otherwise decode to hours (gigabytes of samples).
MAX_TRANSCRIBE_SECONDS = 600.0


def _too_long(seconds: float) -> _Refused:
    return _Refused(413, f"the audio is {seconds:.0f} s long; this server transcribes at most "
                         f"{MAX_TRANSCRIBE_SECONDS:.0f} s at a time", param="file")


def _decode_audio(data: bytes) -> tuple[Any, int]:
    """An uploaded recording as mono float32 samples and their rate, refused past
    :data:`MAX_TRANSCRIBE_SECONDS` before it is decoded: WAV as servers send it (voxd's own
    lenient reader), anything else through libsndfile (FLAC, Ogg) or FFmpeg (mp3...), whose
    frames are made mono float32 by its resampler."""
    import io

    import numpy as np

    from .audio.wav import WavError, decode_wav

    try:
        decoded = decode_wav(data)
    except WavError:
        pass
    else:
        if decoded.samples.size > MAX_TRANSCRIBE_SECONDS * decoded.sample_rate:
            raise _too_long(decoded.samples.size / decoded.sample_rate)
        return np.asarray(decoded.samples, dtype=np.float32), decoded.sample_rate
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - not a format libsndfile reads: FFmpeg's turn
        info = None
    if info is not None:
        if info.frames > MAX_TRANSCRIBE_SECONDS * info.samplerate:
            raise _too_long(info.frames / info.samplerate)
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return samples.mean(axis=1).astype(np.float32), int(rate)
    import av

    pieces, total = [], 0
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate)
        mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(stream):
            for out in mono.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
                total += pieces[-1].size
                if total > MAX_TRANSCRIBE_SECONDS * rate:
                    raise _too_long(total / rate)
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32), rate


def text_digest(text: str) -> str:
    """A text's name in the debug log: enough to follow it, nothing of what it says."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _authorise(request: Request, key: str) -> None:
    if not key:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise _Refused(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                       kind="authentication_error", headers={"WWW-Authenticate": "Bearer"})


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it passes ``limit`` bytes, declared or not."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _Refused(413, f"the request body is {int(length)} bytes; this server takes at most {limit}")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise _Refused(413, f"the request body is over {limit} bytes, the most this server takes")
    return bytes(data)


async def _read_json(request: Request, limit: int) -> Any:
    data = await _read_body(request, limit)
    try:
        body = json.loads(data)
    except RecursionError:
        raise _Refused(400, "the request body is nested too deeply to be a request") from None
    except ValueError as exc:
        raise _Refused(400, f"the request body is not JSON: {exc}") from None
    where = _unpaired_surrogate(body)
    if where is not None:
        param, char = where
        raise _Refused(400, f"{param or 'the body'} holds an unpaired surrogate (U+{ord(char):04X}), which is not "
                            "text: send UTF-8", param=param)
    return body


def _unpaired_surrogate(body: Any) -> tuple[str | None, str] | None:
    """Where a JSON body holds a lone surrogate (``"\\ud800"`` is valid JSON, not encodable text):
    the top-level field it is under (None for a key or a body that is not an object) and the
    character. A walk with a stack, not recursion: the body was nested as deep as the parser took."""
    stack: list[tuple[str | None, Any]] = [(None, body)]
    if isinstance(body, dict):
        stack = [(None, key) for key in body] + [(str(key), value) for key, value in body.items()]
    while stack:
        field, value = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return (field if isinstance(body, dict) else None), found.group()
        elif isinstance(value, dict):
            stack.extend((field, item) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((field, item) for item in value)
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


async def _unless_gone(request: Request, work: asyncio.Future[Any]) -> Any:
    """``work``'s result, or :class:`ClientDisconnect` as soon as the client hangs up (its body
    read, the ASGI receive says only that)."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if work not in done:
        work.cancel()
        raise ClientDisconnect()
    return work.result()


def _utterance(req: SpeechRequest, engine: Engine, options: ServeOptions) -> Utterance:
    """The engine's utterance for a request, or the reason this server refuses it."""
    if req.model not in (None, "", options.model_name, engine.model_id) and req.model not in OPENAI_MODELS:
        raise _Refused(404, f"the model {quote(req.model)} does not exist here; this server serves "
                            f"{options.model_name!r}",
                       param="model", kind="not_found_error")
    text = req.input.strip()
    if not text:
        raise _Refused(400, "input is empty", param="input")
    if len(req.input) > options.max_input_chars:
        raise _Refused(400, f"input is {len(req.input)} characters; this server takes at most "
                       f"{options.max_input_chars} (split the text)", param="input")
    if req.response_format not in MEDIA_TYPES:
        raise _Refused(400, f"response_format {quote(req.response_format)} is not supported here: use "
                       f"{', '.join(MEDIA_TYPES)}", param="response_format")
    if not SPEED_MIN <= req.speed <= SPEED_MAX:  # OpenAI's range
        raise _Refused(400, f"speed must be from {SPEED_MIN:g} to {SPEED_MAX:g}, not {req.speed:g}", param="speed")
    if req.ref_audio is not None or req.task_type in ("Base", "VoiceDesign"):
        raise _Refused(400, "this server speaks with its own voices only: it takes no ref_audio and no "
                       "VoiceDesign requests (add voices to its library with `voxd voices add` or "
                       "`voxd voices design` and name them in 'voice')", param="ref_audio" if req.ref_audio else
                       "task_type")
    voice = req.voice.strip() or "default"
    if len(voice) > MAX_VOICE_CHARS:
        raise _Refused(400, f"no voice is named {quote(voice)}: a voice's name is at most {MAX_VOICE_CHARS} "
                            "characters", param="voice")
    try:
        engine.check_voices([voice])
    except VoiceError as exc:
        if voice.lower() not in OPENAI_VOICES:
            raise _Refused(400, str(exc), param="voice") from None
        voice = "default"  # "alloy" from a stock client: this server's own voice
    return Utterance(text=text, voice=voice, language=req.language or None, style=req.instructions or None,
                     speed=req.speed)


def check_exposure(host: str, api_key: str) -> None:
    """A server reachable from other machines must ask for a key."""
    from .serve_connections import is_loopback

    if not api_key and not is_loopback(host):
        raise ConfigError(
            f"voxd serve binds {host} (reachable from other machines) only with an API key: "
            "set [serve] api_key or VOXD_SERVE__API_KEY, or bind 127.0.0.1"
        )


def _recogniser(settings: Settings) -> Recogniser | None:
    """This machine's Whisper, for daemons elsewhere to read their takes back with ([verify] model,
    device); none where the read-back is off or its model cannot be had (logged: speech is served)."""
    if settings.verify.mode == "off":
        return None
    from .verify.recogniser import RecogniserUnavailable, whisper_for

    try:
        return whisper_for(settings)
    except (RecogniserUnavailable, VoxdError) as exc:
        log.warning("voxd serve: no transcriptions: %s", exc)
        return None


def shutdown(batcher: Batcher, engine: Engine) -> None:
    batcher.close()
    with contextlib.suppress(EngineError):
        engine.close()


def run_serve(settings: Settings, *, engine_name: str, host: str, port: int) -> int:
    """Load the engine, start the batcher and serve until SIGINT/SIGTERM."""
    import uvicorn

    from .render import MAX_LENGTH_RATIO
    from .serve_connections import (
        RefusalLog,
        backlog_for,
        fit_file_limit,
        guarded_protocol,
        listen,
        server_class,
    )
    from .tts.gpu import batch_size_for
    from .tts.registry import load_engine

    if engine_name not in ("espeak", "piper", "qwen"):
        raise ConfigError(f"voxd serve speaks with a local engine (espeak, piper or qwen), not {engine_name!r}")
    s = settings.serve
    key = s.api_key.get_secret_value()
    check_exposure(host, key)
    heap.map_large_buffers()  # a burst's waves given back when freed, not kept in glibc's arenas
    sockets = listen(host, port)  # before the model loads: a port in use is said at once, not minutes later
    with contextlib.ExitStack() as bound:  # the sockets are closed however this ends
        for sock in sockets:
            bound.enter_context(sock)
        settings = settings.model_copy(update={"engine": engine_name})
        engine = load_engine(settings, engine_name)
        batch_size = batch_size_for(settings).size
        batcher = Batcher(engine, batch_size=batch_size, max_wait=s.batch_wait_ms / 1000.0, max_queue=s.max_queue,
                          max_ratio=MAX_LENGTH_RATIO)
        options = ServeOptions(
            model_name=s.model_name or f"voxd-{engine_name}", api_key=key, max_input_chars=s.max_input_chars,
            max_body_bytes=int(s.max_body_mb * 2**20), recogniser=_recogniser(settings),
        )
        app = create_app(engine, batcher, options)

        refusals = RefusalLog()
        connections = fit_file_limit(s.max_connections)

        Server = server_class(refusals)
        server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                       lifespan="off", server_header=False, backlog=backlog_for(connections),
                                       http=guarded_protocol(connections, s.request_timeout_seconds, refusals)))

        def stop(signum: int, frame: object) -> None:
            log.info("voxd serve: %s received, finishing the requests in flight", signal.Signals(signum).name)
            server.should_exit = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        log.info("voxd serve: %s (model %r, %d per batch%s) on http://%s:%d/v1", engine_name, options.model_name,
                 batch_size, ", API key required" if key else "", host, port)
        try:
            server.run(sockets=sockets)
        finally:
            shutdown(batcher, engine)
            log.info("voxd serve stopped")
        return 0 if server.started else 1
