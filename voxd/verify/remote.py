"""Recognisers elsewhere: OpenAI-compatible ``POST /v1/audio/transcriptions`` servers.

A NAS that renders through a GPU box need not read back on its own cores: the GPU box runs
``voxd serve`` (which answers transcriptions with its own Whisper), or vLLM serving a Whisper
model. Each take goes to one server as a 16 kHz WAV; a server that cannot be reached or fails
is left out for a back-off that doubles (up to two minutes) and the next one is asked; when no
server answers, the take is "not checked", never failed. The server decides which languages
it knows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import numpy as np

from ..audio.wav import encode_wav
from .recogniser import RATE, Heard, at_16k

log = logging.getLogger(__name__)

_FIRST_BACKOFF, _MAX_BACKOFF = 5.0, 120.0


class RecognisersAway(Exception):
    """No transcription server answered."""


class RemoteRecogniser:
    """A client of transcription servers, tried in turn; :meth:`transcribe` may be called from any thread."""

    multilingual = True

    def __init__(self, urls: Sequence[str], *, model: str, api_key: str = "", timeout: float = 120.0) -> None:
        import httpx

        self.urls = list(urls)
        self.name = f"{model} at {', '.join(self.urls)}"
        self._model = model
        # a server that drops packets is given up in seconds, not after the reply's long timeout
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0),
                                    headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self._lock = threading.Lock()
        self._next = 0
        self._down: dict[str, tuple[float, float]] = {}  # url -> (until, back-off)

    def knows(self, language: str | None) -> bool:
        return True

    def transcribe(self, wave: np.ndarray, rate: int, language: str | None) -> Heard:
        payload = encode_wav(at_16k(wave, rate), RATE)
        tried: list[str] = []
        for url in self._order():
            try:
                response = self._client.post(
                    f"{url}/audio/transcriptions", files={"file": ("take.wav", payload, "audio/wav")},
                    data={"model": self._model, "response_format": "json",
                          **({"language": language.split("-")[0]} if language else {})},
                )
            except Exception as exc:  # noqa: BLE001 - any transport failure: the next server
                self._fail(url, f"{type(exc).__name__}: {exc}")
                tried.append(f"{url}: {exc}")
                continue
            if response.status_code != 200:  # busy, broken, or refusing (a wrong key, no recogniser): the next one
                self._fail(url, f"HTTP {response.status_code}: {response.text[:200]}")
                tried.append(f"{url}: HTTP {response.status_code}")
                continue
            with self._lock:
                self._down.pop(url, None)
            body = response.json()
            return Heard(text=str(body.get("text", "")).strip(), language=body.get("language") or language)
        raise RecognisersAway("no transcription server answered" + (f" ({'; '.join(tried)})" if tried else
                                                                     " (all are backing off)"))

    def _order(self) -> list[str]:
        """The servers not backing off, starting with the next in turn."""
        now = time.monotonic()
        with self._lock:
            self._next = (self._next + 1) % len(self.urls)
            turn = self.urls[self._next:] + self.urls[: self._next]
            return [url for url in turn if self._down.get(url, (0.0, 0.0))[0] <= now]

    def _fail(self, url: str, why: str) -> None:
        with self._lock:
            _, backoff = self._down.get(url, (0.0, _FIRST_BACKOFF / 2))
            backoff = min(_MAX_BACKOFF, backoff * 2)
            self._down[url] = (time.monotonic() + backoff, backoff)
        log.warning("read-back: %s failed (%s); left out for %.0f s", url, why, backoff)

    def close(self) -> None:
        self._client.close()
