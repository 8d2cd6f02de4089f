"""Helpers more than one test module uses; test modules import from here, never from each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def recording(path: Path) -> Path:
    """A real speech recording (eSpeak NG, about 10 s) to clone a voice from, written to ``path``."""
    import soundfile

    from voxd.tts.base import Utterance
    from voxd.tts.espeak import EspeakEngine

    speech = EspeakEngine().synthesize([Utterance(
        "A recording of my own voice, read slowly, for a clone that lasts a whole book long.", "en-us")])
    soundfile.write(path, np.concatenate([speech.waveforms[0]] * 2), speech.sample_rate)
    return path
