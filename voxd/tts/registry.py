"""Engine construction by name, with the heavy imports deferred to here."""

from __future__ import annotations

from ..config import Settings
from ..errors import ConfigError
from .base import Engine

ENGINES = ("espeak", "qwen")


def load_engine(settings: Settings, name: str | None = None) -> Engine:
    name = name or settings.engine
    if name == "espeak":
        from .espeak import EspeakEngine

        return EspeakEngine(rate_wpm=settings.espeak.rate_wpm)
    if name == "qwen":
        raise ConfigError(
            "engine 'qwen' (Qwen3-TTS) is not available in this version of voxd yet; "
            "set engine = \"espeak\" for now"
        )
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
