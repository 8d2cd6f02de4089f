"""The voice library: cloned and designed voices that books and manifests can name.

A cloned voice comes from a recording dropped into ``inbox/voices/``: the best
5-15 s of clean speech is cut out (see :mod:`voxd.audio.segment`), resampled to the
model's 24 kHz and kept as ``state_dir/voices/<name>/reference.wav`` with a
``voice.json`` that says where it came from. A designed voice is a description
("a warm, low, unhurried male voice") for the VoiceDesign checkpoint. The engine
computes a clone prompt from the reference once and caches it beside it.

A voice folder is written under a temporary name and renamed into place, so the
engine never sees half a voice.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .audio.segment import RecordingError, choose_reference, extract
from .errors import PermanentError, VoiceError

#: Read by a designed voice when it is frozen into a clone: varied sounds, about 10 s.
FREEZE_SENTENCE = (
    "The old lighthouse keeper climbed the narrow stairs each evening, counting every step, "
    "and watched the grey sea turn to silver under a quiet, patient moon."
)
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus")
SAMPLE_RATE = 24_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    name: str
    kind: str  # "cloned" | "designed"
    source: str  # the recording's file name, or the description
    transcript: str | None = None  # for in-context cloning; None means speaker embedding only
    seconds: float = 0.0
    created_at: float = 0.0


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise VoiceError(
            f"{name!r} is not a usable voice name: use letters, digits, spaces, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return name


def read_audio(path: Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any audio file PyAV reads to mono float32 at ``rate``."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise RecordingError(f"{path.name}: has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    except RecordingError:
        raise
    except Exception as exc:  # PyAV raises many kinds for damaged or non-audio files
        raise RecordingError(f"{path.name}: cannot be read as audio ({type(exc).__name__}: {exc})") from None
    if not parts:
        raise RecordingError(f"{path.name}: the recording is empty")
    return np.concatenate(parts).astype(np.float32)


class VoiceLibrary:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, name: str) -> Path:
        return self.root / name

    def get(self, name: str) -> VoiceInfo | None:
        if not _NAME.match(name):  # never a path: "../x" names no voice of this library
            return None
        meta = self.folder(name) / "voice.json"
        try:
            return VoiceInfo(**json.loads(meta.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def list(self) -> list[VoiceInfo]:
        if not self.root.is_dir():
            return []
        found = (self.get(p.name) for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith("."))
        return [v for v in found if v is not None]

    def reference(self, name: str) -> tuple[np.ndarray, int]:
        import soundfile

        audio, rate = soundfile.read(self.folder(name) / "reference.wav", dtype="float32")
        return audio, rate

    def _install(self, info: VoiceInfo, files: dict[str, bytes | np.ndarray]) -> VoiceInfo:
        """Write the voice to a temporary folder and rename it into place (replacing an older one)."""
        import soundfile

        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{info.name}."))
        try:
            for name, content in files.items():
                if isinstance(content, np.ndarray):
                    soundfile.write(tmp / name, content, SAMPLE_RATE, subtype="PCM_16")
                else:
                    (tmp / name).write_bytes(content)
            (tmp / "voice.json").write_text(json.dumps(asdict(info), indent=2, ensure_ascii=False), encoding="utf-8")
            target = self.folder(info.name)
            if target.exists():
                old = target.with_name(f".{info.name}.old.{time.time_ns()}")
                target.rename(old)
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return info

    def add_recording(self, path: Path, *, name: str | None = None, transcript: str | None = None) -> VoiceInfo:
        """Make a cloned voice from a recording: pick its best speech, keep it as the reference.

        With a transcript the whole clean speech span is kept (the text must match the
        audio for in-context cloning) when it is short enough; otherwise only the
        speaker embedding is used, and the transcript is set aside.
        """
        name = check_name(name or path.stem)
        audio = read_audio(path)
        choice = choose_reference(audio, SAMPLE_RATE, name=path.name)
        if transcript and choice.speech_seconds <= 20.0 and len(choice.segments) == 1:
            reference = extract(audio, SAMPLE_RATE, choice)
        else:
            transcript = None
            reference = extract(audio, SAMPLE_RATE, choice)
        peak = float(np.max(np.abs(reference))) if reference.size else 0.0
        if peak > 0:
            reference = reference * (0.9 / peak) if peak > 0.9 or peak < 0.1 else reference
        info = VoiceInfo(
            name=name, kind="cloned", source=path.name, transcript=transcript or None,
            seconds=round(reference.size / SAMPLE_RATE, 2), created_at=time.time(),
        )
        return self._install(info, {"reference.wav": reference.astype(np.float32)})

    def add_reference(self, name: str, audio: np.ndarray, rate: int, *, transcript: str | None,
                      source: str) -> VoiceInfo:
        """A cloned voice from audio that is already a clean reference (a frozen designed voice)."""
        if rate != SAMPLE_RATE:
            import librosa

            audio = librosa.resample(np.asarray(audio, np.float32), orig_sr=rate, target_sr=SAMPLE_RATE)
        info = VoiceInfo(name=check_name(name), kind="cloned", source=source, transcript=transcript,
                         seconds=round(len(audio) / SAMPLE_RATE, 2), created_at=time.time())
        return self._install(info, {"reference.wav": np.asarray(audio, np.float32)})

    def add_design(self, name: str, description: str) -> VoiceInfo:
        description = " ".join(description.split())
        if not description:
            raise VoiceError("a designed voice needs a description, e.g. 'a warm, low, unhurried male voice'")
        info = VoiceInfo(name=check_name(name), kind="designed", source=description, created_at=time.time())
        return self._install(info, {})

    def remove(self, name: str) -> bool:
        folder = self.folder(name)
        if not (folder / "voice.json").is_file():
            return False
        shutil.rmtree(folder)
        return True


def import_recording(library: VoiceLibrary, path: Path) -> VoiceInfo:
    """The inbox's path for ``inbox/voices/<name>.<audio>`` (+ optional ``<name>.txt``)."""
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise PermanentError(
            f"{path.name}: not a recording voxd reads ({', '.join(AUDIO_SUFFIXES)}); "
            "put transcripts beside a recording as <name>.txt"
        )
    text_file = path.with_suffix(".txt")
    transcript = text_file.read_text(encoding="utf-8", errors="replace").strip() if text_file.is_file() else None
    return library.add_recording(path, transcript=transcript)
