"""Piper as a voxd speech engine: a natural neural voice on any CPU.

Why it exists: Qwen3-TTS needs an NVIDIA GPU, and eSpeak NG sounds like a machine. Piper
(``piper-tts``, VITS voices run by onnxruntime) reads at about ten times real time on one CPU
core with a voice a person will listen to for hours, fully offline: the engine for a NAS or a
small server, and the real voice every test of what a listener hears can run on.

How it runs: one onnxruntime session per voice, shared by ``workers`` threads, each run on
one intra-op thread. onnxruntime lets go of the GIL while it runs, so the threads use as many
cores as there are workers, at the memory of one process (a second process would load its own
copy of the model and the runtime; two intra-op threads on one run were never faster than one).
A batch's texts are spread over the workers, longest first.

What is said: voxd's own sentence splitter (which knows "Mr." and "e.g." are not ends) cuts a
chunk into sentences; each is phonemized (eSpeak NG, inside piper-tts) and spoken as one
sequence, so an abbreviation inside a sentence no longer breaks it in two; Piper's own silence
around each sentence is trimmed and voxd's sentence pause put between them, as between
chunks. A text the phonemizer cannot take comes back as a moment of silence with a problem
note: the chunk is flagged, the book goes on.

piper-tts is GPL-3.0 (it bundles eSpeak NG) and is an optional extra (``voxd[piper]``), imported
only when this engine is made.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EngineError, VoiceError
from ..narration.text import split_sentences
from .base import Engine, Synthesis, Utterance
from .piper_voices import DEFAULT_NAMES, Catalogue, PiperVoiceFile, file_hash

log = logging.getLogger(__name__)

#: Returned for blank text, so a blank line costs a beat rather than a failure.
_SILENCE_SECONDS = 0.1
#: Below this (about -50 dBFS) a sample at a sentence's edge is Piper's silence, trimmed.
_TRIM_LEVEL = 0.003
#: Kept on each side of a trimmed sentence: the breath before a word and its release.
_TRIM_MARGIN_SECONDS = 0.04


@dataclass(frozen=True, slots=True)
class PiperOptions:
    """How Piper speaks; every field is part of the model id, and so of the cache key."""

    length_scale: float = 1.2
    noise_scale: float = 0.667
    noise_w: float = 0.8
    speaker: str = ""
    sentence_pause: float = 0.35


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _import_piper() -> Any:
    try:
        import onnxruntime
        import piper
    except ImportError as exc:
        raise ConfigError(
            'engine = "piper" needs the piper extra: pip install "voxd[piper]" (piper-tts, GPL-3.0); '
            f"it is not installed ({exc})"
        ) from None
    return piper, onnxruntime


def trim(wave: np.ndarray, rate: int) -> np.ndarray:
    """``wave`` without the silence at its two ends, a short margin kept."""
    loud = np.flatnonzero(np.abs(wave) > _TRIM_LEVEL)
    if loud.size == 0:
        return wave[:0]
    margin = int(rate * _TRIM_MARGIN_SECONDS)
    return wave[max(0, int(loud[0]) - margin): int(loud[-1]) + 1 + margin]


class _LoadedVoice:
    """One voice's onnxruntime session, shared by every worker thread."""

    def __init__(self, voice: PiperVoiceFile, piper: Any, onnxruntime: Any) -> None:
        import json

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(str(voice.model), sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            config = piper.PiperConfig.from_dict(json.loads(voice.config.read_text(encoding="utf-8")))
        except Exception as exc:  # onnxruntime raises its own types for a damaged model
            raise ConfigError(f"{voice.model}: Piper could not load this voice ({type(exc).__name__}: {exc})") \
                from None
        self.file = voice
        self.voice = piper.PiperVoice(session=session, config=config)
        self.synthesis = piper.SynthesisConfig
        try:  # a voice whose phonemizer cannot start (an eSpeak voice this build lacks) fails now, not per chunk
            self.voice.phonemize("a")
        except Exception as exc:
            raise ConfigError(f"{voice.config}: Piper cannot read text for this voice "
                              f"({type(exc).__name__}: {exc})") from None


class PiperEngine(Engine):
    """The Piper engine; see the module docstring for when to use it."""

    lockstep = False
    paced = True  # the length scale, divided by the speed asked for

    def __init__(self, catalogue: Catalogue, options: PiperOptions | None = None, workers: int = 0) -> None:
        self.options = options or PiperOptions()
        o = self.options
        for name, value, low, high in (("length_scale", o.length_scale, 0.25, 4.0),
                                       ("noise_scale", o.noise_scale, 0.0, 2.0),
                                       ("noise_w", o.noise_w, 0.0, 2.0)):
            if not low <= value <= high:
                raise ConfigError(f"[piper] {name} must be from {low} to {high}, not {value}")
        self._piper, self._ort = _import_piper()
        if catalogue.default is None:
            raise ConfigError(
                "[piper] voice: no Piper voice is installed; set it to a voice's .onnx path, or put NAME.onnx and "
                "NAME.onnx.json in the state directory's voices/piper/ (see the README's Piper section)"
            )
        self.catalogue = catalogue
        self.workers = workers or default_workers()
        self.default_voice = catalogue.default.name
        self._speaker = o.speaker
        catalogue.default.speaker_id(o.speaker)  # a speaker the voice does not have: ConfigError now
        version = _piper_version()
        self.model_id = (f"piper/{version}/ls={o.length_scale:g}/ns={o.noise_scale:g}/nw={o.noise_w:g}"
                         f"/spk={o.speaker or '-'}/pause={o.sentence_pause:g}")
        self._loaded: dict[Path, _LoadedVoice] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(self.workers, thread_name_prefix="piper")
        self.sample_rate = catalogue.default.sample_rate
        self._load(catalogue.default)  # a broken default voice fails at start-up, naming the file

    # -- the contract ---------------------------------------------------------------------

    @property
    def accepts_seed(self) -> bool:
        """Piper's noise makes every take another one (it cannot be seeded, so a retake is
        new but not reproducible); with both noises at 0 it says the same thing each time."""
        return self.options.noise_scale > 0 or self.options.noise_w > 0

    def synthesize(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Synthesis:
        pool = self._pool
        if pool is None:
            raise EngineError("the Piper engine was used after close()")
        voices = [self._voice_for(u) for u in batch]
        loaded = [self._load(v) for v in voices]
        order = sorted(range(len(batch)), key=lambda i: -len(batch[i].text))  # longest first: even workers
        futures = {i: pool.submit(self._speak, batch[i].text, loaded[i], batch[i].speed) for i in order}
        results = [futures[i].result() for i in range(len(batch))]
        return Synthesis(waveforms=[w for w, _ in results], sample_rate=self.sample_rate,
                         problems=[p for _, p in results] if any(p for _, p in results) else [])

    def check_voices(self, voices: Collection[str]) -> None:
        for voice in voices:
            if voice not in DEFAULT_NAMES:
                self._named(voice)

    def check_language(self, tag: str | None) -> PiperVoiceFile:
        """The voice that will speak ``tag``; VoiceError naming the language and the voices
        installed when none does."""
        found = self.catalogue.for_language(tag)
        if found is None:
            raise VoiceError(f"no Piper voice speaks {tag!r}; installed: {self.catalogue.describe()}. "
                             "Install one for it, or map it in [piper] voices")
        return found

    def voice_identity(self, voice: str) -> str:
        """The content of the voice files that may speak ``voice``: for "default", every voice a
        language could pick, so installing or replacing one never reuses the old audio."""
        if voice not in DEFAULT_NAMES:
            return _identity(self._named(voice))
        files = {v.model: v for v in (self.catalogue.default, *self.catalogue.by_language.values(),
                                      *self.catalogue.voices) if v is not None}
        return "+".join(_identity(v) for _, v in sorted(files.items()))

    def voices(self) -> list[str]:
        return [v.name for v in self.catalogue.voices]

    def narrator(self, voice: str, language: str | None = None) -> str:
        """"Piper (de_DE-thorsten-medium)": for "default", the voice the language chooses."""
        name = voice
        if voice in DEFAULT_NAMES:
            found = self.catalogue.for_language(language)
            name = found.name if found is not None else self.default_voice
        return f"Piper ({name})"

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._loaded.clear()

    # -- inside -----------------------------------------------------------------------------

    def _named(self, voice: str) -> PiperVoiceFile:
        found = self.catalogue.named(voice)
        if found is None:
            raise VoiceError(f"Piper has no voice {voice!r}; installed: {self.catalogue.describe()}")
        return found

    def _voice_for(self, utterance: Utterance) -> PiperVoiceFile:
        if utterance.voice not in DEFAULT_NAMES:
            return self._named(utterance.voice)
        return self.check_language(utterance.language)

    def _load(self, voice: PiperVoiceFile) -> _LoadedVoice:
        with self._lock:
            loaded = self._loaded.get(voice.model)
            if loaded is None:
                loaded = self._loaded[voice.model] = _LoadedVoice(voice, self._piper, self._ort)
                log.info("Piper voice %s (%s, %d Hz) loaded; %d worker thread%s", voice.name, voice.language,
                         voice.sample_rate, self.workers, "" if self.workers == 1 else "s")
            return loaded

    def _speak(self, text: str, loaded: _LoadedVoice, speed: float = 1.0) -> tuple[np.ndarray, str | None]:
        """One text's wave (at the engine's rate) and, when Piper could not say it, why; at
        ``speed`` times the voice's pace (its length scale and the pauses divided by it)."""
        o = self.options
        rate = loaded.file.sample_rate
        config = loaded.synthesis(
            speaker_id=loaded.file.speaker_id(self._speaker) if loaded.file is self.catalogue.default
            else None,
            length_scale=o.length_scale / speed, noise_scale=o.noise_scale, noise_w_scale=o.noise_w,
            normalize_audio=False,
        )
        # "[[...]]" is raw phonemes to Piper: from a book it is text, so the brackets are parted
        clean = text.replace("\0", " ").replace("[[", "[ [").replace("]]", "] ]")
        clean = clean.encode("utf-8", "replace").decode("utf-8").strip()
        pieces: list[np.ndarray] = []
        try:
            for sentence in split_sentences(clean) if clean else []:
                wave = self._sentence(loaded, sentence, config)
                if wave.size:
                    pieces.append(trim(wave, rate))
        except Exception as exc:  # the phonemizer or the model refused this text: a chunk problem
            log.warning("Piper could not speak %r: %s: %s", clean[:60], type(exc).__name__, exc)
            return _silence(self.sample_rate), f"Piper could not speak it ({type(exc).__name__}: {exc})"
        pieces = [p for p in pieces if p.size]
        if not pieces:
            return _silence(self.sample_rate), None
        gap = np.zeros(int(rate * o.sentence_pause / speed), dtype=np.float32)
        joined = np.concatenate([x for p in pieces for x in (gap, p)][1:]).astype(np.float32)
        if rate != self.sample_rate:
            import librosa

            joined = librosa.resample(joined, orig_sr=rate, target_sr=self.sample_rate).astype(np.float32)
        return np.clip(joined, -1.0, 1.0), None

    @staticmethod
    def _sentence(loaded: _LoadedVoice, sentence: str, config: Any) -> np.ndarray:
        """One sentence as one run of the model. eSpeak NG's own clause split ("Mr." ends a
        sentence for it) is undone: its parts are joined, the full stop between them dropped."""
        parts = loaded.voice.phonemize(sentence)
        phonemes: list[str] = []
        for n, part in enumerate(parts):
            part = list(part)
            if n < len(parts) - 1 and part and part[-1] == ".":
                part = part[:-1]
            if phonemes and part:
                phonemes.append(" ")
            phonemes.extend(part)
        if not phonemes:
            return np.zeros(0, dtype=np.float32)
        ids = loaded.voice.phonemes_to_ids(phonemes)
        audio = loaded.voice.phoneme_ids_to_audio(ids, config)
        if isinstance(audio, tuple):
            audio = audio[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)


def _silence(rate: int) -> np.ndarray:
    return np.zeros(int(rate * _SILENCE_SECONDS), dtype=np.float32)


def _identity(voice: PiperVoiceFile) -> str:
    return f"{voice.name}:{file_hash(voice.model)}:{file_hash(voice.config)}"


def _piper_version() -> str:
    try:
        return metadata.version("piper-tts")
    except metadata.PackageNotFoundError:
        return "unknown"
