"""eSpeak NG as a voxd speech engine: robotic, but instant and everywhere.

Why it exists: voxd's real voice (Qwen3-TTS) needs a GPU and minutes of model
loading. eSpeak NG speaks in milliseconds on any CPU, in about a hundred
languages, from a few megabytes of data. That makes it the engine for quick
previews of a book, for machines without a GPU, and for the end-to-end tests,
which need real audio of plausible length without a model download.

The library comes from the PyPI package ``espeakng-loader``, which ships
``libespeak-ng.so`` and its ``espeak-ng-data``; it is driven through ctypes, and
no external binary is run. libespeak-ng keeps global state (one current voice,
one rate, one output callback), so this module initialises it once per process
and serialises every synthesis behind one lock. Any number of
:class:`EspeakEngine` objects, each with its own rate and default voice, may
share it from any number of threads.

Voices are named the way eSpeak names them: a language code (``en-us``,
``en-gb``, ``de``, ``fr-fr``), a voice file (``gmw/en-US``) or a voice's display
name (``German``), optionally followed by a variant (``en-us+f3``).
"""

from __future__ import annotations

import ctypes
import difflib
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxd.errors import ConfigError, EngineError, VoiceError
from voxd.tts.base import Engine, Synthesis, Utterance

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report data errors instead of calling exit()
_PARAM_RATE = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_EE_NOT_FOUND = 2
_RATE_MIN, _RATE_MAX = 80, 450  # words per minute that eSpeak accepts

#: Returned for empty text, so a blank line costs a beat rather than a failure.
_SILENCE_SECONDS = 0.1
#: Voice names taken to mean "whatever the engine's default voice is".
_DEFAULT_NAMES = frozenset({"", "default"})
#: Shown first when an unknown voice is reported, if the data has them.
_SUGGESTED = ("en-us", "en-gb", "de", "fr-fr", "es", "it", "pt-br", "nl", "ru", "cmn")
_SUGGESTED_VARIANTS = ("m1", "m2", "m3", "f1", "f2", "f3", "klatt", "whisper")

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakVoice(ctypes.Structure):
    """``espeak_VOICE`` as espeak_ListVoices returns it."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated code)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True, slots=True)
class _VoiceInfo:
    name: str
    identifier: str  # path under espeak-ng-data/voices, e.g. "gmw/en-US"
    languages: tuple[tuple[int, str], ...]  # (priority, lower-case code); lower priority wins


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _read_languages(address: int | None) -> tuple[tuple[int, str], ...]:
    """Decode espeak_VOICE.languages: priority byte, code, NUL; ends at priority 0."""
    found: list[tuple[int, str]] = []
    while address:
        priority = ctypes.c_ubyte.from_address(address).value
        if priority == 0:
            break
        code = ctypes.string_at(address + 1)
        found.append((priority, code.decode("utf-8", "replace").lower()))
        address += len(code) + 2
    return tuple(found)


class _VoiceTable:
    """Maps every name a user may write to the voice file eSpeak should load."""

    def __init__(self, voices: Sequence[_VoiceInfo], variants: Sequence[str]) -> None:
        self._by_key: dict[str, str] = {}
        self._variants = {v.lower(): v for v in variants}
        # Later passes never override earlier ones: file names beat language
        # codes, which beat display names.
        for voice in voices:
            self._add(voice.identifier, voice.identifier)
            self._add(voice.identifier.rsplit("/", 1)[-1], voice.identifier)
        by_priority = sorted(
            (priority, code, voice.identifier)
            for voice in voices
            for priority, code in voice.languages
        )
        for _, code, identifier in by_priority:
            self._add(code, identifier)
        for voice in voices:
            self._add(voice.name, voice.identifier)
        self._codes = sorted(
            {code for voice in voices for _, code in voice.languages}
            | {_normalise(voice.identifier.rsplit("/", 1)[-1]) for voice in voices}
        )

    def _add(self, key: str, identifier: str) -> None:
        self._by_key.setdefault(_normalise(key), identifier)

    def codes(self) -> list[str]:
        """Language codes and voice file names, sorted: the short names to offer users."""
        return list(self._codes)

    def resolve(self, name: str) -> str | None:
        """The argument for espeak_SetVoiceByName, or None if eSpeak has no such voice."""
        base, plus, variant = name.partition("+")
        identifier = self._by_key.get(_normalise(base))
        if identifier is None:
            return None
        if not plus:
            return identifier
        real_variant = self._variants.get(variant.strip().lower())
        return None if real_variant is None else f"{identifier}+{real_variant}"

    def unknown_message(self, name: str) -> str:
        """Why ``name`` did not resolve, with a few names that would have."""
        base, plus, variant = name.partition("+")
        if plus and _normalise(base) in self._by_key:
            wanted = variant.strip().lower()
            some = ", ".join(_pick(wanted, sorted(self._variants), _SUGGESTED_VARIANTS))
            return (
                f"eSpeak NG has no voice variant {variant!r} (in {name!r}); "
                f"variants include {some}"
            )
        some = ", ".join(_pick(_normalise(name), self._codes, _SUGGESTED))
        return f"eSpeak NG has no voice {name!r}; valid voices include {some}"


def _pick(wanted: str, names: Sequence[str], preferred: Sequence[str], count: int = 8) -> list[str]:
    """Up to ``count`` names: close matches first, then preferred ones, then any."""
    close = difflib.get_close_matches(wanted, names, n=4, cutoff=0.6)
    common = [name for name in preferred if name in names]
    return list(dict.fromkeys([*close, *common, *names]))[:count]


class _Library:
    """The process's one initialised libespeak-ng; every call into it holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept alive as long as the library
        lib_path, data_path = _locate_library()
        self._lib = _load(lib_path)
        _declare_signatures(self._lib)
        self.sample_rate = self._initialise(data_path)
        self._lib.espeak_SetSynthCallback(self._callback)
        self.version = self._version()
        self.voices = _VoiceTable(self._list_voices(), _list_variants(data_path))

    def _initialise(self, data_path: str) -> int:
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EngineError(
                f"eSpeak NG could not initialise with its data at {data_path} (error {rate})"
            )
        return int(rate)

    def _version(self) -> str:
        data_dir = ctypes.c_char_p()
        raw = self._lib.espeak_Info(ctypes.byref(data_dir))
        return raw.decode("ascii", "replace") if raw else "unknown"

    def _list_voices(self) -> list[_VoiceInfo]:
        array = self._lib.espeak_ListVoices(None)
        voices: list[_VoiceInfo] = []
        index = 0
        while array and array[index]:
            raw = array[index].contents
            voices.append(
                _VoiceInfo(
                    name=(raw.name or b"").decode("utf-8", "replace"),
                    identifier=(raw.identifier or b"").decode("utf-8", "replace"),
                    languages=_read_languages(raw.languages),
                )
            )
            index += 1
        return voices

    def _collect(self, wav: ctypes.Array, count: int, _events: int) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0: go on synthesising

    def speak(self, text: str, voice: str, rate_wpm: int) -> np.ndarray:
        """Synthesise ``text`` with ``voice`` (a resolved name) at ``rate_wpm``; int16 samples."""
        data = text.encode("utf-8") + b"\0"
        with self.lock:
            self._chunks = []
            self._check(
                self._lib.espeak_SetVoiceByName(voice.encode("utf-8")), f"select voice {voice!r}"
            )
            self._check(self._lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0), "set the rate")
            self._check(
                self._lib.espeak_Synth(
                    data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                ),
                "synthesise",
            )
            self._check(self._lib.espeak_Synchronize(), "finish synthesis")
            chunks, self._chunks = self._chunks, []
        return np.frombuffer(b"".join(chunks), dtype=np.int16)

    @staticmethod
    def _check(code: int, action: str) -> None:
        if code == _EE_NOT_FOUND:
            raise VoiceError(f"eSpeak NG could not {action}: not found")
        if code != _EE_OK:
            raise EngineError(f"eSpeak NG failed to {action} (error {code})")


def _locate_library() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise EngineError(
            "the eSpeak NG engine needs the Python package 'espeakng-loader' "
            "(pip install espeakng-loader)"
        ) from exc
    try:
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except (RuntimeError, OSError) as exc:
        raise EngineError(f"espeakng-loader is installed but incomplete: {exc}") from exc


def _load(lib_path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(lib_path)
    except OSError as exc:
        raise EngineError(f"could not load eSpeak NG from {lib_path}: {exc}") from exc


def _declare_signatures(lib: ctypes.CDLL) -> None:
    c_int, c_uint = ctypes.c_int, ctypes.c_uint
    c_char_p, c_void_p = ctypes.c_char_p, ctypes.c_void_p
    lib.espeak_Initialize.argtypes = [c_int, c_int, c_char_p, c_int]
    lib.espeak_Initialize.restype = c_int
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_Info.argtypes = [ctypes.POINTER(c_char_p)]
    lib.espeak_Info.restype = c_char_p
    lib.espeak_ListVoices.argtypes = [c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
    lib.espeak_SetVoiceByName.argtypes = [c_char_p]
    lib.espeak_SetVoiceByName.restype = c_int
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    lib.espeak_SetParameter.restype = c_int
    lib.espeak_Synth.argtypes = [
        c_void_p, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint, ctypes.POINTER(c_uint), c_void_p,
    ]
    lib.espeak_Synth.restype = c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = c_int


def _list_variants(data_path: str) -> list[str]:
    """Names usable after '+' in a voice name (files in espeak-ng-data/voices/!v)."""
    folder = Path(data_path) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


_LIBRARY: _Library | None = None
_LIBRARY_LOCK = threading.Lock()


def _library() -> _Library:
    """The shared library, loaded and initialised on first use."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            _LIBRARY = _Library()
        return _LIBRARY


class EspeakEngine(Engine):
    """The eSpeak NG engine; see the module docstring for when to use it."""

    paced = True

    def __init__(self, rate_wpm: int = 175, default_voice: str = "en-us") -> None:
        if not isinstance(rate_wpm, int) or not _RATE_MIN <= rate_wpm <= _RATE_MAX:
            raise ConfigError(
                "rate_wpm must be a whole number of words per minute "
                f"from {_RATE_MIN} to {_RATE_MAX}, not {rate_wpm!r}"
            )
        self._lib = _library()
        self.rate_wpm = rate_wpm
        self.sample_rate: int = self._lib.sample_rate
        self._default_voice = self._resolve(default_voice)
        # the default voice is in the identity: "default" is that voice's audio, not another's
        self.model_id: str = f"espeak-ng/{self._lib.version}/rate={rate_wpm}/default={self._default_voice}"
        self.default_voice = default_voice
        self._closed = False

    def narrator(self, voice: str, language: str | None = None) -> str:
        """How the voice is credited in the audiobook's tags: "default" is the voice of the
        chunk's language (``en-gb``, ``ar``), as :meth:`synthesize` picks it."""
        default = _normalise(voice) in _DEFAULT_NAMES
        return f"eSpeak NG ({(self._language_code(language) or self.default_voice) if default else voice})"

    def synthesize(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Synthesis:
        """Speak each utterance in turn; voices are checked before any audio is made.
        eSpeak is deterministic: ``seed`` changes nothing."""
        if self._closed:
            raise EngineError("the eSpeak NG engine was used after close()")
        voices = [self._voice_for(utterance) for utterance in batch]
        waveforms = [self._speak(u.text, voice, u.speed) for u, voice in zip(batch, voices)]
        return Synthesis(waveforms=waveforms, sample_rate=self.sample_rate)

    def check_voices(self, voices: Collection[str]) -> None:
        for voice in voices:
            if _normalise(voice) not in _DEFAULT_NAMES:
                self._resolve(voice)

    def voices(self) -> list[str]:
        """Language codes and voice file names eSpeak accepts (display names and
        ``+variant`` suffixes are accepted too, but not listed)."""
        return self._lib.voices.codes()

    def close(self) -> None:
        """Retire this engine. The shared library stays loaded for other engines in
        the process; it holds no GPU and little memory."""
        self._closed = True

    def _voice_for(self, utterance: Utterance) -> str:
        if _normalise(utterance.voice) not in _DEFAULT_NAMES:
            return self._resolve(utterance.voice)
        return self._language_voice(utterance.language) or self._default_voice

    def _language_voice(self, language: str | None) -> str | None:
        """The voice for a book's language tag ("de-AT" falls back to "de"), if any: the default
        voice where it speaks that language and the tag names no region of its own ("en" is
        en-us's English, not eSpeak's "en", which is British: the voice named as the default is
        the one that speaks)."""
        if not language:
            return None
        table = self._lib.voices
        tag = _normalise(language)
        primary = tag.split("-", 1)[0]
        default_language = _normalise(self.default_voice).partition("+")[0].split("-", 1)[0]
        if primary == default_language and ("-" not in tag or table.resolve(tag) is None):
            return self._default_voice
        return table.resolve(tag) or table.resolve(primary)

    def _language_code(self, language: str | None) -> str | None:
        """The code eSpeak knows the language's voice by ("en-gb", "ar"; "de" for "de-AT"),
        as :meth:`_language_voice` finds it: what the tags name, not the voice file's path."""
        if not language:
            return None
        table = self._lib.voices
        tag = _normalise(language)
        return next((code for code in (tag, tag.split("-", 1)[0]) if table.resolve(code)), None)

    def _resolve(self, name: str) -> str:
        resolved = self._lib.voices.resolve(name)
        if resolved is None:
            raise VoiceError(self._lib.voices.unknown_message(name))
        return resolved

    def _speak(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        """``text`` at ``rate_wpm`` times ``speed``: eSpeak's own rate as far as it goes (80 to
        450 words a minute), the audio stretched for the rest."""
        clean = text.replace("\0", " ").strip()
        rate = min(_RATE_MAX, max(_RATE_MIN, round(self.rate_wpm * speed)))
        samples = self._lib.speak(clean, voice, rate) if clean else np.empty(0, np.int16)
        if samples.size == 0:  # blank text, or only characters eSpeak does not pronounce
            return np.zeros(int(self.sample_rate * _SILENCE_SECONDS), dtype=np.float32)
        wave = samples.astype(np.float32) / 32768.0
        rest = self.rate_wpm * speed / rate
        if abs(rest - 1.0) > 0.01:
            from ..audio.tempo import stretch

            wave = stretch(wave, self.sample_rate, rest)
        return wave
