"""Qwen3-TTS with every kind of voice: preset speakers, cloned voices, designed voices.

Each kind needs its own checkpoint: CustomVoice for the presets (with a style
``instruct``), Base for voices cloned from a recording (no instruct), VoiceDesign
for voices described in words. :class:`QwenVoices` routes each utterance to the
engine of its voice's kind and keeps only one model in memory at a time (a 1.7B
model is several GB of VRAM); the renderer groups chunks by voice, so a book
swaps models at most once per voice.

A cloned voice's prompt (speech codes and speaker embedding of its reference) is
computed once and cached beside the reference as ``prompt-<model>.pt``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from ..errors import VoiceError
from ..files import atomic_path
from ..voices import VoiceInfo, VoiceLibrary
from .base import Engine, Synthesis, Utterance
from .qwen import QwenEngine, QwenOptions
from .qwen_checkpoint import local_snapshot

if TYPE_CHECKING:
    from .hub import FetchProgress

log = logging.getLogger(__name__)


class _LibraryEngine(QwenEngine):
    """A QwenEngine whose voices are the library's voices of one kind."""

    kind = ""

    def __init__(self, model: str, library: VoiceLibrary, **options: Unpack[QwenOptions]) -> None:
        self.library = library
        super().__init__(model, **options)

    def _voice(self, voice: str) -> VoiceInfo:
        info = self.library.get(voice.strip())
        if info is None or info.kind != self.kind:
            raise VoiceError(f"no {self.kind} voice {voice!r} in {self.library.root}")
        return info

    def _speaker_for(self, voice: str, speakers: list[str]) -> str:
        return self._voice(voice).name


class QwenCloneEngine(_LibraryEngine):
    """The Base checkpoint: speech in a voice cloned from a reference recording."""

    kind = "cloned"
    expected_kind = "base"
    setting = "qwen.base_model"
    example = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
    decodes_later = False  # qwen_tts cuts the reference's audio off the decoded waves

    def __init__(self, model: str, library: VoiceLibrary, **options: Unpack[QwenOptions]) -> None:
        super().__init__(model, library, **options)
        self._prompts: dict[str, Any] = {}
        self._warned: set[str] = set()

    def unload(self) -> None:
        self._prompts.clear()  # the prompts hold tensors on the model's device
        super().unload()

    def _call_model(self, model, texts, *, speakers, languages, instructs, max_new_tokens):
        for name, instruct in zip(speakers, instructs):
            if instruct and name not in self._warned:
                self._warned.add(name)
                log.warning(
                    "voice %r is cloned: Qwen3-TTS Base checkpoints take no style prompt, so the style "
                    "%r is ignored (it is never read aloud)", name, instruct,
                )
        prompts = [self.prompt(model, name) for name in speakers]
        return model.generate_voice_clone(
            text=texts, language=languages, voice_clone_prompt=prompts,
            non_streaming_mode=True, max_new_tokens=max_new_tokens, **self.generation,
        )

    def prompt(self, model: Any, name: str) -> Any:
        """The voice's clone prompt item: from memory, from its cached file, or computed once."""
        if name in self._prompts:
            return self._prompts[name]
        import torch

        info = self._voice(name)
        cache = self.library.folder(name) / f"prompt-{_short(self.model_path)}.pt"
        item = None
        if cache.is_file():
            try:
                item = torch.load(cache, map_location=str(model.device), weights_only=False)
            except Exception as exc:  # a damaged cache file is recomputed, never fatal
                log.warning("voice %r: cached prompt %s unreadable (%s); computing it again", name, cache, exc)
        if item is None:
            audio, rate = self.library.reference(name)
            [item] = model.create_voice_clone_prompt(
                ref_audio=(np.asarray(audio, dtype=np.float32), rate),
                ref_text=info.transcript,
                x_vector_only_mode=not info.transcript,
            )
            _save_atomic(torch, item, cache)
            log.info("voice %r: clone prompt computed (%s) and cached",
                     name, "in-context, with transcript" if info.transcript else "speaker embedding only")
        self._prompts[name] = item
        return item


class QwenDesignEngine(_LibraryEngine):
    """The VoiceDesign checkpoint: a voice described in words, plus the chapter's style."""

    kind = "designed"
    expected_kind = "voice_design"
    setting = "qwen.voice_design_model"
    example = "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"

    def _call_model(self, model, texts, *, speakers, languages, instructs, max_new_tokens):
        described = []
        for name, style in zip(speakers, instructs):
            description = self._voice(name).source
            described.append(f"{description}. {style}" if style else description)
        return model.generate_voice_design(
            text=texts, instruct=described, language=languages,
            non_streaming_mode=True, max_new_tokens=max_new_tokens, **self.generation,
        )


class QwenVoices(Engine):
    """The engine voxd uses for ``engine = "qwen"``: presets, cloned and designed voices."""

    lockstep = True

    def __init__(self, presets: QwenEngine, library: VoiceLibrary, *, base_model: str, design_model: str,
                 options: QwenOptions) -> None:
        self.presets = presets
        self.library = library
        self._base_model = base_model
        self._design_model = design_model
        self._options = options
        self._engines: dict[str, QwenEngine] = {"preset": presets}
        self.default_voice = presets.default_voice
        self.model_id = presets.model_id

    @property
    def accepts_seed(self) -> bool:
        return self.presets.accepts_seed

    def voice_identity(self, voice: str) -> str:
        """What besides the name makes a voice sound as it does: part of every chunk's cache key,
        so a voice re-recorded under the same name never reuses the old voice's audio."""
        info = self.library.get(voice.strip())
        if info is None:
            return ""
        engine = self._engine_for(info)
        return f"{info.kind}:{info.created_at!r}:{engine.model_id}"

    def model_for(self, voice: str) -> str:
        info = self.library.get(voice.strip()) if voice.strip() else None
        return self.presets.model_path if info is None else self._engine_for(info).model_path

    def check_voices(self, voices: Collection[str]) -> None:
        """Library voices need their checkpoint's settings to be right; the rest are presets."""
        presets = []
        for voice in voices:
            info = self.library.get(voice.strip()) if voice.strip() else None
            if info is None:
                presets.append(voice)
            else:
                self._engine_for(info)
        self.presets.check_voices(presets)

    def prepare(self, voices: Collection[str], report: Callable[[FetchProgress], None] | None = None) -> None:
        """Check the device, then fetch the checkpoints these voices need that are not on this
        machine yet, with progress (a 1.7B one is about 4.5 GB): before the render, not inside
        its first batch. The device comes first: no download for a GPU torch cannot use."""
        kinds: set[str] = set()
        for voice in voices:
            info = self.library.get(voice.strip()) if voice.strip() else None
            kinds.add(info.kind if info else "preset")
        engines = [self.presets if kind == "preset" else self._build(kind) for kind in sorted(kinds)]
        wanted = [e for e in engines if not e.loaded and not Path(e.model_path).expanduser().is_dir()]
        if not wanted:
            return
        try:
            import torch
        except ImportError:
            pass  # loading says so, with what to install
        else:
            from .cuda_check import resolve_device

            resolve_device(torch, self._options.get("device", "auto"))
        for engine in wanted:
            local_snapshot(engine.model_path, report, setting=engine.setting)

    def synthesize(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Synthesis:
        return self._speak(batch, seed, later=False)()

    @property
    def overlaps_decode(self) -> bool:
        return self.presets.overlaps_decode

    def submit(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Callable[[], Synthesis]:
        """:meth:`QwenEngine.submit` for each kind of voice in the batch."""
        return self._speak(batch, seed, later=True)

    def _speak(self, batch: Sequence[Utterance], seed: int | None, *, later: bool) -> Callable[[], Synthesis]:
        groups: dict[str, list[int]] = {}
        for i, u in enumerate(batch):
            info = self.library.get(u.voice.strip()) if u.voice else None
            groups.setdefault(info.kind if info else "preset", []).append(i)
        parts = []
        for kind, indexes in groups.items():
            engine = self._activate(kind)
            part = [batch[i] for i in indexes]
            if later:
                parts.append((indexes, engine.submit(part, seed=seed)))
            else:
                done = engine.synthesize(part, seed=seed)
                parts.append((indexes, lambda done=done: done))  # type: ignore[misc]

        def finish() -> Synthesis:
            waves: list[np.ndarray | None] = [None] * len(batch)
            truncated = [False] * len(batch)
            rate = 24000
            for indexes, collect in parts:
                result = collect()
                rate = result.sample_rate
                for n, i in enumerate(indexes):
                    waves[i] = result.waveforms[n]
                    truncated[i] = result.truncated[n] if result.truncated else False
            return Synthesis(waveforms=waves, sample_rate=rate, truncated=truncated)  # type: ignore[arg-type]

        return finish

    def voices(self) -> list[str]:
        return self.presets.voices()

    def languages(self) -> list[str]:
        return self.presets.languages()

    def narrator(self, voice: str, language: str | None = None) -> str:
        info = self.library.get(voice.strip()) if voice else None
        if info is not None:
            return f"Qwen3-TTS ({info.name}, {info.kind} voice)"
        return self.presets.narrator(voice)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()

    @property
    def loaded(self) -> bool:
        return any(e.loaded for e in self._engines.values())

    def _engine_for(self, info: VoiceInfo) -> QwenEngine:
        return self._build(info.kind)

    def _build(self, kind: str) -> QwenEngine:
        if kind not in self._engines:
            if kind == "cloned":
                self._engines[kind] = QwenCloneEngine(self._base_model, self.library, **self._options)
            elif kind == "designed":
                self._engines[kind] = QwenDesignEngine(self._design_model, self.library, **self._options)
            else:
                raise VoiceError(f"unknown voice kind {kind!r}")
        return self._engines[kind]

    def _activate(self, kind: str) -> QwenEngine:
        """The engine for this kind of voice, with every other model unloaded first."""
        engine = self._build(kind)
        for other in self._engines.values():
            if other is not engine and other.loaded:
                log.info("unloading %s to load %s", other.model_path, engine.model_path)
                other.unload()
        return engine


def _short(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:10]


def _save_atomic(torch: Any, item: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(_to_cpu(item), tmp)


def _to_cpu(item: Any) -> Any:
    import dataclasses

    changes = {f.name: getattr(item, f.name).cpu() for f in dataclasses.fields(item)
               if hasattr(getattr(item, f.name), "cpu")}
    return dataclasses.replace(item, **changes)
