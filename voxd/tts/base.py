"""The contract every speech engine keeps.

A batch of utterances goes in; one float32 mono waveform per utterance comes out,
all at one sample rate. Batching is the engine's business (Qwen3-TTS runs a batch
in lockstep on the GPU; eSpeak simply loops), so the renderer can stay the same.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .hub import FetchProgress


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str
    voice: str
    language: str | None = None
    style: str | None = None
    #: This text's own seed (the renderer derives it from the chunk's key), so that its
    #: take does not depend on the batch it lands in; engines that draw per batch ignore it.
    seed: int | None = None
    #: The pace asked for (``voxd serve``'s ``speed``): 1 is the voice's own. Engines with
    #: a rate of their own (:attr:`Engine.paced`) speak at it; the others ignore it.
    speed: float = 1.0


@dataclass(frozen=True, slots=True)
class Synthesis:
    waveforms: list[np.ndarray]  # float32, mono, in [-1, 1], one per utterance
    sample_rate: int
    #: Per utterance: generation stopped at the engine's length cap rather than by
    #: itself (a runaway). Empty when the engine cannot run away (eSpeak).
    truncated: list[bool] = field(default_factory=list)
    #: Per utterance: what the engine saw wrong with the audio and could not mend (a
    #: server's reply cut short, or at another rate), or None; empty when nothing was.
    #: The renderer treats such a take as suspect: spoken again, else flagged.
    problems: list[str | None] = field(default_factory=list)


#: Reading speed assumed for a text's expected length: characters per second of speech.
CHARS_PER_SECOND = 15.0
#: A wide (CJK) character takes about as long to say as this many Latin ones.
WIDE_CHAR_WEIGHT = 3.0


def speech_seconds(text: str) -> float:
    """About how long a narrator takes to say ``text``, from its characters alone."""
    weight = sum(WIDE_CHAR_WEIGHT if unicodedata.east_asian_width(ch) in "WF" else 1.0 for ch in text)
    return weight / CHARS_PER_SECOND


class Engine(Protocol):
    """What the renderer, the assembler and ``voxd serve`` may rely on from a speech engine.

    Every engine subclasses this explicitly, so the optional parts below have their
    defaults in one place and mypy checks each engine against the whole contract.
    One test suite (``tests/tts/test_base.py``) holds every engine to it.
    """

    #: Stable identity of the model and everything that changes its audio; part of every
    #: cache key. The same settings give the same id, before and after the model loads.
    model_id: str
    #: The voice used for ``Utterance.voice == "default"``.
    default_voice: str
    #: The items of a batch run together until the longest is done (Qwen3-TTS on a GPU),
    #: so batches should hold texts of similar length.
    lockstep: bool = False
    #: The engine is a client of speech servers that batch for themselves: the renderer
    #: keeps :meth:`window` single-utterance calls in flight from threads instead of
    #: handing it batches one at a time.
    concurrent: bool = False
    #: The engine speaks at :attr:`Utterance.speed` (eSpeak's rate, Piper's length scale);
    #: for the others ``voxd serve`` stretches the audio to the speed asked for.
    paced: bool = False

    @property
    def accepts_seed(self) -> bool:
        """Whether ``synthesize(batch, seed=N)`` can give another take of the same text."""
        return False

    @property
    def overlaps_decode(self) -> bool:
        """Whether :meth:`submit` returns with the audio still being made (Qwen3-TTS with
        ``decode_overlap``), so the renderer starts the next batch before collecting it."""
        return False

    def submit(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Callable[[], Synthesis]:
        """:meth:`synthesize` in two halves: what it returns gives the result, or raises what
        ``synthesize`` would. The default speaks before it returns."""
        done = self.synthesize(batch, seed=seed)
        return lambda: done

    def synthesize(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Synthesis:
        """Speak every utterance; the result keeps the batch's order, one float32 mono
        wave in [-1, 1] per utterance (blank text: a short silence), all at one rate.

        ``seed`` asks for another take (engines without :attr:`accepts_seed` ignore it).
        Raises VoiceError for an unknown voice or language (the job fails), EngineError
        for a failure of the engine itself (the job is retried), and, for engines that
        need something outside the process, :class:`voxd.errors.Unavailable` while it is
        away (the job waits).
        """
        ...

    def check_voices(self, voices: Collection[str]) -> None:
        """Raise VoiceError now for a voice this engine cannot speak, so a book fails
        before any audio is rendered rather than hours in. The default checks nothing."""
        return None

    def voice_identity(self, voice: str) -> str:
        """What besides its name makes a voice sound as it does (a cloned voice's
        recording): part of the cache key, so a voice replaced under the same name never
        reuses the old voice's audio. Empty for voices a name fully defines."""
        return ""

    def model_for(self, voice: str) -> str:
        """The checkpoint that speaks ``voice``, for engines that batch on a GPU (a
        batch size that fits is learned per model); empty where that means nothing."""
        return ""

    def prepare(self, voices: Collection[str], report: Callable[[FetchProgress], None] | None = None) -> None:
        """Before a render: get what speaking ``voices`` needs and may take long to get (model
        weights, fetched with progress through ``report``, which may raise to stop), so that it
        is a phase of its own and not hidden in the first batch. The default needs nothing."""
        return None

    def window(self) -> int:
        """For a :attr:`concurrent` engine: how many calls are worth having in flight now."""
        return 1

    def voices(self) -> list[str]:
        """Names accepted as ``Utterance.voice``."""
        ...

    def narrator(self, voice: str, language: str | None = None) -> str:
        """How the voice is credited as narrator in the audiobook's tags: the voice that speaks
        ``voice`` in ``language`` (the chunk's), which for "default" may depend on the language."""
        ...

    def close(self) -> None:
        """Release the model and any native resources; later calls raise EngineError."""
        ...
