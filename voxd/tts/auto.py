"""``engine = "auto"`` (the default): the engine this machine runs well, chosen at start.

Qwen3-TTS on a CPU takes days for a book, so a newcomer without a GPU who keeps the
default must not get it: Qwen3-TTS when an NVIDIA GPU that torch can use is here (and
qwen-tts is installed), else Piper when a Piper voice is installed, else eSpeak NG. The
choice and its reason are said once at start (the daemon's log, ``voxd doctor``).

The GPU is judged by :func:`voxd.tts.cuda_check.diagnose` from nvidia-smi, ``/proc`` and
torch's own ``version.py``, without importing torch: this runs on start-up paths. Whether
CUDA really initialises is left to the render, which refuses a silent CPU fall-back
(:func:`~voxd.tts.cuda_check.resolve_device`). The choice is made once per process, so a
configuration reload keeps the engine the daemon started with.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass

from ..config import Settings
from ..errors import ConfigError

#: Below this much memory on the card, Qwen3-TTS 1.7B has no room for a useful batch
#: (4.4 GiB of weights; the batch table in the README starts at 8 GiB free).
MIN_GPU_MIB = 8 * 1024


@dataclass(frozen=True, slots=True)
class Choice:
    """The engine ``auto`` stands for here, and why, in words for the log."""

    engine: str
    why: str

    def describe(self) -> str:
        return f'engine = "auto" chose {self.engine}: {self.why}'


def gpu_verdict(device: str = "auto") -> tuple[bool, str]:
    """Whether Qwen3-TTS would run on a GPU here (``[qwen] device``), and why (not), without torch."""
    from . import cuda_check

    if device.strip().lower() == "cpu":
        return False, '[qwen] device = "cpu"'
    if importlib.util.find_spec("qwen_tts") is None:
        return False, "qwen-tts is not installed"
    facts = cuda_check.torch_facts_unimported()
    if facts is None:
        return False, "torch is not installed"
    smi = cuda_check.gather_smi()
    proc_present, proc_driver = cuda_check.gather_proc()
    if not (proc_present or smi.cards or smi.error):  # torch's word is not asked: only the machine's
        return False, "no NVIDIA GPU on this machine"
    found = cuda_check.diagnose(smi, proc_present=proc_present, proc_driver=proc_driver, torch=facts,
                                device=device, visible=os.environ.get("CUDA_VISIBLE_DEVICES"))
    if not found.hardware:
        return False, "no NVIDIA GPU on this machine"
    if not found.usable:
        fix = f"; to use it: {'; or '.join(found.advice)}" if found.advice else ""
        return False, ("an NVIDIA GPU is here but torch cannot use it: " + "; ".join(found.problems or ("unknown",))
                       + fix)
    card = found.card
    if card is not None and card.memory_total_mib is not None and card.memory_total_mib < MIN_GPU_MIB:
        return False, (f"the {card.name} has {card.memory_total_mib / 1024:.1f} GiB, less than the "
                       f"{MIN_GPU_MIB // 1024} GiB Qwen3-TTS needs")
    what = f"the {card.name}, compute capability {card.capability}" if card is not None else found.device
    return True, f"{what}, with torch {facts.version} built for CUDA {facts.cuda}"


def piper_voice(settings: Settings) -> str | None:
    """The Piper voice books without a language would be read by, if Piper and a voice are installed."""
    if importlib.util.find_spec("piper") is None:
        return None
    from .piper_voices import Catalogue

    p = settings.piper
    try:
        catalogue = Catalogue.build(p.voice, p.voices, settings.state_path / "voices" / "piper")
    except ConfigError:
        return None
    return catalogue.default.name if catalogue.default is not None else None


def choose(settings: Settings) -> Choice:
    """What ``auto`` stands for on this machine (see the module docstring)."""
    usable, why = gpu_verdict(settings.qwen.device)
    if usable:
        return Choice("qwen", f"Qwen3-TTS on {why}")
    voice = piper_voice(settings)
    if voice is not None:
        return Choice("piper", f"Piper ({voice}) on the CPU, since Qwen3-TTS cannot run fast here ({why})")
    return Choice("espeak", f"eSpeak NG, since Qwen3-TTS cannot run fast here ({why}) and no Piper voice is "
                            "installed (pip install 'voxd[piper]' and a voice: see the README's Piper section)")


_chosen: dict[tuple[str, str, str, str], Choice] = {}
_lock = threading.Lock()


def resolve(settings: Settings) -> tuple[Settings, Choice | None]:
    """``settings`` with ``engine = "auto"`` replaced by the engine it stands for here, and the
    choice (None when the engine was named). Chosen once per process for the same settings."""
    if settings.engine != "auto":
        return settings, None
    p = settings.piper
    key = (settings.qwen.device, p.voice, repr(sorted(p.voices.items())), str(settings.state_path))
    with _lock:
        choice = _chosen.get(key)
        if choice is None:
            choice = _chosen[key] = choose(settings)
    return settings.model_copy(update={"engine": choice.engine}), choice
