"""The contract every speech engine keeps.

A batch of utterances goes in; one float32 mono waveform per utterance comes out,
all at one sample rate. Batching is the engine's business (Qwen3-TTS runs a batch
in lockstep on the GPU; eSpeak simply loops), so the renderer can stay the same.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
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
    #: Per utterance: generation stopped at the engine's length cap rather than by
    #: itself (a runaway). Empty when the engine cannot run away (eSpeak).
    truncated: list[bool] = field(default_factory=list)


#: Reading speed assumed for a text's expected length: characters per second of speech.
CHARS_PER_SECOND = 15.0
#: A wide (CJK) character takes about as long to say as this many Latin ones.
WIDE_CHAR_WEIGHT = 3.0


def speech_seconds(text: str) -> float:
    """About how long a narrator takes to say ``text``, from its characters alone."""
    weight = sum(WIDE_CHAR_WEIGHT if unicodedata.east_asian_width(ch) in "WF" else 1.0 for ch in text)
    return weight / CHARS_PER_SECOND


class Engine(Protocol):
    #: Stable identity of the model and its settings; part of every cache key.
    model_id: str
    #: The voice used for ``Utterance.voice == "default"``.
    default_voice: str

    def synthesize(self, batch: Sequence[Utterance]) -> Synthesis:
        """Speak every utterance; the result keeps the batch's order.

        Raises VoiceError for an unknown voice or language (the job fails) and
        EngineError for a failure of the engine itself (the job is retried).

        Optional extras the renderer looks for with ``getattr`` (an engine without
        them works as it is):

        * ``lockstep = True``: the items of a batch run together until the longest
          is done (Qwen3-TTS), so batches should hold texts of similar length.
        * ``accepts_seed = True``: ``synthesize(batch, seed=N)`` draws with another
          random seed, so speaking a text again can give a different take.
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
