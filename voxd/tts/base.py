"""The contract every speech engine keeps.

A batch of utterances goes in; one float32 mono waveform per utterance comes out,
all at one sample rate. Batching is the engine's business (Qwen3-TTS runs a batch
in lockstep on the GPU; eSpeak simply loops), so the renderer can stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str
    voice: str
    language: str | None = None
    style: str | None = None


@dataclass(frozen=True, slots=True)
class Synthesis:
    waveforms: list[np.ndarray]  # float32, mono, in [-1, 1], one per utterance
    sample_rate: int


class Engine(Protocol):
    #: Stable identity of the model and its settings; part of every cache key.
    model_id: str
    #: The voice used for ``Utterance.voice == "default"``.
    default_voice: str

    def synthesize(self, batch: Sequence[Utterance]) -> Synthesis:
        """Speak every utterance; the result keeps the batch's order.

        Raises VoiceError for an unknown voice or language (the job fails) and
        EngineError for a failure of the engine itself (the job is retried).
        """
        ...

    def voices(self) -> list[str]:
        """Names accepted as ``Utterance.voice``."""
        ...

    def narrator(self, voice: str) -> str:
        """How the voice is credited as narrator in the audiobook's tags."""
        ...

    def close(self) -> None:
        """Release the model and any native resources."""
        ...
