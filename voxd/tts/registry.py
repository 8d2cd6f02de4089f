"""Engine construction by name, with the heavy imports deferred to here."""

from __future__ import annotations

from typing import cast

from ..config import Settings
from ..errors import ConfigError
from .base import Engine

ENGINES = ("auto", "espeak", "piper", "qwen", "remote")


def load_engine(settings: Settings, name: str | None = None) -> Engine:
    name = name or settings.engine
    if name == "auto":  # callers resolve it first (voxd.tts.auto.resolve), to say what was chosen
        from .auto import resolve

        settings, _ = resolve(settings)
        name = settings.engine
    if name == "espeak":
        from .espeak import EspeakEngine

        return EspeakEngine(rate_wpm=settings.espeak.rate_wpm)
    if name == "piper":
        from .piper import PiperEngine, PiperOptions
        from .piper_voices import Catalogue

        p = settings.piper
        catalogue = Catalogue.build(p.voice, p.voices, settings.state_path / "voices" / "piper")
        how = PiperOptions(length_scale=p.length_scale, noise_scale=p.noise_scale, noise_w=p.noise_w,
                           speaker=p.speaker, sentence_pause=settings.pause_sentence)
        return PiperEngine(catalogue, how, workers=p.workers)
    if name == "qwen":
        from ..voices import VoiceLibrary
        from .qwen import QwenEngine, QwenOptions
        from .qwen_voices import QwenVoices

        q = settings.qwen
        # QwenOptions names exactly the [qwen] settings the engine takes, under the same names.
        options = cast(QwenOptions, q.model_dump(include=set(QwenOptions.__annotations__)))
        return QwenVoices(
            QwenEngine(q.custom_voice_model, **options),
            VoiceLibrary(settings.state_path / "voices"),
            base_model=q.base_model,
            design_model=q.voice_design_model,
            options=options,
        )
    if name == "remote":
        from ..voices import VoiceLibrary
        from .remote import RemoteEngine

        r = settings.remote
        if not r.urls:
            raise ConfigError('engine = "remote" needs at least one speech server in [remote] urls')
        return RemoteEngine(
            r.urls,
            api_key=r.api_key.get_secret_value(),
            model=r.model,
            max_in_flight=r.max_in_flight,
            timeout_seconds=r.timeout_seconds,
            pause_after_seconds=r.pause_after_seconds,
            library=VoiceLibrary(settings.state_path / "voices"),
        )
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
