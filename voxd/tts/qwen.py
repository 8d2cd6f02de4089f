"""Qwen3-TTS (CustomVoice) as a voxd speech engine: the production voice.

The model comes from the ``qwen-tts`` package and is loaded with the same call
its own demo uses::

    Qwen3TTSModel.from_pretrained(model, device_map=device, dtype=dtype, attn_implementation="sdpa")

``model`` is a Hugging Face id (``Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice``) or a
local directory in the same layout. Nothing heavy happens before the first
:meth:`QwenEngine.synthesize`: constructing the engine imports neither torch
nor qwen_tts, so the daemon and the command line start fast, and a
configuration mistake that a small JSON file can reveal (a checkpoint that is
not a CustomVoice one) is reported at once.

A CustomVoice checkpoint speaks with preset speakers (``Utterance.voice``, e.g.
"Ryan" or "Vivian"; case does not matter) in a handful of languages
(``Utterance.language``, an ISO code like "en", "de-AT" or "zho", or the model's
own name, "English"); ``Utterance.style`` becomes the natural-language
``instruct`` ("speak slowly, in a warm tone"). A batch is one call into the
model: its items run in lockstep until the longest is done, so the renderer
sends texts of similar length together.

Every setting that changes the audio (the model, the default speaker, the
sampling settings and the seed) is part of :attr:`QwenEngine.model_id` and so of
every cache key.

A Hugging Face id is resolved to its snapshot in the local cache before
loading (and downloaded, with progress in the log, the first time), so the
model loads with no network once it is on the machine: given an id, qwen_tts
and transformers would ask the hub about it on every load.

Memory. qwen_tts asks transformers' ``generate`` for every step's hidden states
(it reads the codes of each frame from them) and keeps them until the batch is
done: all layers, about 116 KiB per item per frame for the 1.7B model in
bfloat16 (7 GiB for a batch of 16 running 4096 frames), as much again as the
key/value cache. Only the last layer's last position is ever read, so the
engine trims each step's output to that (:func:`_keep_last_hidden_state`): the
same codes and audio, a 29th of that memory.
"""

from __future__ import annotations

import gc
import logging
import math
import re
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from voxd.errors import ConfigError, EngineError, OutOfMemory, VoiceError, VoxdError, translate
from voxd.tts.base import Engine, Synthesis, Utterance, speech_seconds
from voxd.tts.languages import AUTO_LANGUAGES as _AUTO_LANGUAGES
from voxd.tts.languages import ISO_LANGUAGES as _ISO_LANGUAGES
from voxd.tts.qwen_checkpoint import catalog_from_config, local_snapshot, looks_like_path, read_checkpoint_config
from voxd.tts.qwen_decode import Pending
from voxd.tts.qwen_model import failed, free_cuda, keep_last_hidden_state, quiet_padding_warning

log = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
#: Preferred for ``voice == "default"``, in order; the first one the checkpoint has wins.
DEFAULT_SPEAKERS = ("ryan", "aiden", "vivian", "serena")

#: The talker emits this many codec frames per second of audio (the 12 Hz tokenizer).
FRAMES_PER_SECOND = 12.5
#: Never ask for more frames than this in one call (about five and a half minutes).
MAX_NEW_TOKENS_CAP = 4096
#: Room for slow speakers, slow instructions and pauses before a batch is cut short.
_MARGIN = 2.5
#: The least any batch may run, in frames (6 s): short texts can still take a breath.
_MIN_NEW_TOKENS = 75

_SILENCE_SECONDS = 0.1  # what blank text becomes
_DEFAULT_NAMES = frozenset({"", "default"})
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def estimate_max_new_tokens(texts: Sequence[str]) -> int:
    """Codec frames to allow for a batch: the longest text's expected speech, with a
    generous margin, never less than a few seconds and never more than the cap.

    The model normally stops by itself (codec EOS); this only bounds a batch in
    which one item never does, which would otherwise run for minutes.
    """
    longest = max((_speech_seconds(text) for text in texts), default=0.0)
    frames = math.ceil(longest * FRAMES_PER_SECOND * _MARGIN)
    return min(MAX_NEW_TOKENS_CAP, max(_MIN_NEW_TOKENS, frames))


def _speech_seconds(text: str) -> float:
    return speech_seconds(text)


def _display(name: str) -> str:
    """The model's lower-case speaker key as its card writes it: "uncle_fu" -> "Uncle_Fu"."""
    return "_".join(part.capitalize() for part in name.split("_"))


def _number(value: float) -> str:
    return f"{value:g}"


class QwenOptions(TypedDict, total=False):
    """The keyword arguments of :class:`QwenEngine` after the model, as the settings give them."""

    device: str
    dtype: str
    default_voice: str
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    subtalker_do_sample: bool
    subtalker_temperature: float
    subtalker_top_k: int
    subtalker_top_p: float
    seed: int | None
    trim_hidden_states: bool
    decode_loop: str
    cuda_graphs: bool
    decode_batch: int
    decode_overlap: bool
    decode_rows: int


class QwenEngine(Engine):
    """Qwen3-TTS CustomVoice; see the module docstring.

    ``decode_loop`` is "voxd" (:mod:`voxd.tts.qwen_loop`: a static cache, CUDA graphs
    with ``cuda_graphs`` on a GPU, a frame budget per item) or "qwen_tts" (its own
    transformers ``generate``, the reference). ``trim_hidden_states`` (on by default)
    frees, in qwen_tts's loop, each step's hidden states but the one it reads; off only
    to compare (the audio is the same). ``decode_batch`` caps the items per codec
    decoder call (0: as many as the free GPU memory holds, see :mod:`voxd.tts.qwen_decode`).
    ``decode_overlap`` lets :meth:`submit` return with the batch's codec decode still under
    way, so the renderer generates the next batch meanwhile (the same audio).
    ``decode_rows`` runs a batch in at most that many rows of voxd's loop (static shapes,
    as with CUDA graphs), each taking the next chunk when its chunk ends (the same audio).
    """

    #: The items of a batch run together until the longest is done.
    lockstep = True
    #: The checkpoint kind (config.json's tts_model_type) and the setting that names it.
    expected_kind = "custom_voice"
    setting = "qwen.custom_voice_model"
    example = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
    #: Whether qwen_tts hands the decoded waves back untouched (CustomVoice, VoiceDesign), so
    #: the decode can finish after the call returns; cloning cuts the reference's audio off them.
    decodes_later = True

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str = "auto",
        default_voice: str = "Ryan",
        do_sample: bool = True,
        temperature: float = 0.9,
        top_k: int = 50,
        top_p: float = 1.0,
        repetition_penalty: float = 1.05,
        subtalker_do_sample: bool = True,
        subtalker_temperature: float = 0.9,
        subtalker_top_k: int = 50,
        subtalker_top_p: float = 1.0,
        seed: int | None = 0,
        trim_hidden_states: bool = True,
        decode_loop: str = "voxd",
        cuda_graphs: bool = True,
        decode_batch: int = 0,
        decode_overlap: bool = False,
        decode_rows: int = 0,
    ) -> None:
        if not model or not model.strip():
            raise ConfigError(f"{self.setting} is empty: give a Hugging Face model id or a directory")
        if not _DEVICE.match(device):
            raise ConfigError(f"qwen.device must be auto, cpu, cuda or cuda:N, not {device!r}")
        if dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ConfigError(f"qwen.dtype must be auto, bfloat16, float16 or float32, not {dtype!r}")
        self.model_path = model.strip()
        if looks_like_path(self.model_path) and not Path(self.model_path).expanduser().is_dir():
            raise ConfigError(f"{self.setting}: {self.model_path} is not a directory")
        self.device = device
        self.dtype = dtype
        self.seed = seed
        self.trim_hidden_states = trim_hidden_states
        if decode_loop not in ("voxd", "qwen_tts"):
            raise ConfigError(f"qwen.decode_loop must be voxd or qwen_tts, not {decode_loop!r}")
        self.decode_loop = decode_loop
        self.cuda_graphs = cuda_graphs
        if decode_batch < 0:
            raise ConfigError(f"qwen.decode_batch must be 0 (as memory allows) or a number of items, "
                              f"not {decode_batch}")
        self.decode_batch = decode_batch
        self.decode_overlap = decode_overlap
        if decode_rows < 0:
            raise ConfigError(f"qwen.decode_rows must be 0 (a row per chunk) or a number of rows, not {decode_rows}")
        self.decode_rows = decode_rows
        self._decoder: Any = None  # the codec decoder in sub-batches, once loaded
        self._instruct_checked = False  # the 0.6B model's silence about styles is told once
        self._frames: Any = None  # the voxd decode loop under the model, once loaded
        self.generation: dict[str, Any] = {
            "do_sample": bool(do_sample),
            "temperature": float(temperature),
            "top_k": int(top_k),
            "top_p": float(top_p),
            "repetition_penalty": float(repetition_penalty),
            "subtalker_dosample": bool(subtalker_do_sample),
            "subtalker_temperature": float(subtalker_temperature),
            "subtalker_top_k": int(subtalker_top_k),
            "subtalker_top_p": float(subtalker_top_p),
        }
        self._lock = threading.RLock()
        self._model: Any = None  # qwen_tts.Qwen3TTSModel once loaded
        self._closed = False
        self._catalog: tuple[list[str], list[str]] | None = None  # (speakers, languages), lower case
        config = read_checkpoint_config(self.model_path)
        if config is not None:
            self._catalog = catalog_from_config(
                self.model_path, config, expected=self.expected_kind, setting=self.setting, example=self.example
            )
        self._wanted_default = default_voice
        self.default_voice = self._pick_default(default_voice)
        self.model_id = self._fingerprint()

    # -- the Engine protocol ------------------------------------------------------

    @property
    def accepts_seed(self) -> bool:
        """Whether ``synthesize(batch, seed=N)`` can give another take: only when sampling."""
        return bool(self.generation["do_sample"] or self.generation["subtalker_dosample"])

    def synthesize(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Synthesis:
        """Speak the batch in one call into the model; voices and languages are
        checked first, so a bad one fails before anything is generated.

        ``seed`` replaces the engine's seed for this call (another take of the
        same texts). ``Synthesis.truncated`` says which items ran into the
        batch's frame cap (:func:`estimate_max_new_tokens`) instead of ending.
        """
        return self._speak(batch, seed, later=False)()

    def submit(self, batch: Sequence[Utterance], *, seed: int | None = None) -> Callable[[], Synthesis]:
        """:meth:`synthesize` in two halves: the batch's codes are generated before this
        returns; with ``decode_overlap`` (and a loop whose codes the decoder can take as they
        are) the codec decode is still under way (:meth:`Decoder.later`), so the caller can
        start the next batch's generation before it calls what this returns for the audio.
        Errors of the decode are raised by that call, as ``synthesize`` would raise them."""
        return self._speak(batch, seed, later=self.decode_overlap and self.decodes_later)

    @property
    def overlaps_decode(self) -> bool:
        """Whether :meth:`submit` returns with the decode under way (the renderer then
        starts the next batch before it collects this one)."""
        return self.decode_overlap and self.decodes_later

    def _speak(self, batch: Sequence[Utterance], seed: int | None, *, later: bool) -> Callable[[], Synthesis]:
        with self._lock:
            if self._closed:
                raise EngineError("the Qwen3-TTS engine was used after close()")
            if not batch:
                empty = Synthesis(waveforms=[], sample_rate=24000)
                return lambda: empty
            speakers, languages = self._speakers_and_languages()
            plan = [
                (self._speaker_for(u.voice, speakers), self._language_for(u.language, languages), u.style or None)
                for u in batch
            ]
            model = self._load()
            styles = [style for _, _, style in plan if style]
            if styles and not self._instruct_checked:
                self._instruct_checked = True  # one look at the checkpoint's size, one warning
                if self._ignores_instruct():
                        log.warning("Qwen3-TTS: %s is a 0.6B CustomVoice model, which ignores style instructions "
                                "(%r is not followed); the 1.7B model follows them", self.model_path, styles[0])
            spoken = [i for i, u in enumerate(batch) if u.text.strip()]
            rate = int(self._sample_rate(model))
            collect: Callable[[], tuple[list[np.ndarray], int, list[bool]]] = lambda: ([], rate, [])  # noqa: E731
            if spoken:
                texts = [batch[i].text.strip() for i in spoken]
                collect = self._generate(
                    model,
                    texts,
                    speakers=[plan[i][0] for i in spoken],
                    languages=[plan[i][1] for i in spoken],
                    instructs=[plan[i][2] for i in spoken],
                    seed=self.seed if seed is None else seed,
                    item_seeds=_item_seeds([batch[i] for i in spoken]),
                    later=later,
                )

        def finish() -> Synthesis:
            generated, sample_rate, capped = collect()
            waves: list[np.ndarray | None] = [None] * len(batch)
            truncated = [False] * len(batch)
            for i, wave, cut in zip(spoken, generated, capped):
                waves[i] = wave
                truncated[i] = cut
            silence = np.zeros(int(sample_rate * _SILENCE_SECONDS), dtype=np.float32)
            return Synthesis(
                waveforms=[silence.copy() if w is None else w for w in waves],
                sample_rate=sample_rate,
                truncated=truncated,
            )

        return finish

    def model_for(self, voice: str) -> str:
        return self.model_path

    def _ignores_instruct(self) -> bool:
        """qwen_tts drops ``instruct`` for the 0.6B CustomVoice checkpoint without a word."""
        from voxd.tts.gpu import model_size

        return self.expected_kind == "custom_voice" and model_size(self.model_path) == "0.6B"

    def check_voices(self, voices: Collection[str]) -> None:
        """Speakers are checked against the checkpoint's config.json, without loading the model."""
        speakers, _ = self._speakers_and_languages()
        for voice in voices:
            self._speaker_for(voice, speakers)

    def voices(self) -> list[str]:
        """The checkpoint's speakers, as its model card names them ("Ryan", "Uncle_Fu")."""
        speakers, _ = self._speakers_and_languages()
        return sorted(_display(s) for s in speakers)

    def languages(self) -> list[str]:
        """The checkpoint's languages, as qwen_tts names them ("Auto", "English", ...)."""
        _, languages = self._speakers_and_languages()
        return [_display(lang) for lang in languages]

    def narrator(self, voice: str, language: str | None = None) -> str:
        """How the voice is credited in the audiobook's tags: "Qwen3-TTS (Ryan)"."""
        name = self.default_voice if voice.strip().lower() in _DEFAULT_NAMES else _display(voice.strip().lower())
        return f"Qwen3-TTS ({name})"

    def close(self) -> None:
        """Free the model and the GPU memory it held; the engine cannot be used again."""
        with self._lock:
            self._closed = True
            self.unload()

    def unload(self) -> None:
        """Free the model and its GPU memory; the next synthesize loads it again."""
        with self._lock:
            model, self._model = self._model, None
            if self._decoder is not None:
                self._decoder.close()
            self._decoder = None
            if model is None:
                return
            on_cuda = "cuda" in str(getattr(model, "device", ""))
            del model
            gc.collect()
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    def _call_model(
        self, model: Any, texts: list[str], *, speakers: list[str], languages: list[str],
        instructs: list[str | None], max_new_tokens: int,
    ) -> tuple[list[Any], int]:
        """The qwen_tts call for this checkpoint's kind; the Base and VoiceDesign engines replace it."""
        return model.generate_custom_voice(
            text=texts, speaker=speakers, language=languages, instruct=instructs,
            non_streaming_mode=True, max_new_tokens=max_new_tokens, **self.generation,
        )

    # -- state ----------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it loads on the first synthesize)."""
        return self._model is not None

    def _fingerprint(self) -> str:
        g = self.generation
        parts = [
            f"qwen3-tts:{self.model_path}",
            f"voice={self.default_voice}",
            "sample=" + ("on" if g["do_sample"] else "greedy"),
            f"t={_number(g['temperature'])}",
            f"k={g['top_k']}",
            f"p={_number(g['top_p'])}",
            f"rp={_number(g['repetition_penalty'])}",
            "sub=" + ("on" if g["subtalker_dosample"] else "greedy"),
            f"st={_number(g['subtalker_temperature'])}",
            f"sk={g['subtalker_top_k']}",
            f"sp={_number(g['subtalker_top_p'])}",
            f"seed={'none' if self.seed is None else self.seed}",
        ]
        return "/".join(parts)

    def _pick_default(self, wanted: str) -> str:
        """The display name of the default speaker: ``wanted`` if the checkpoint has it,
        else the first of DEFAULT_SPEAKERS it has, else its first speaker."""
        if self._catalog is None or not self._catalog[0]:
            return _display(wanted.strip().lower())
        speakers = self._catalog[0]
        for name in (wanted.strip().lower(), *DEFAULT_SPEAKERS):
            if name in speakers:
                return _display(name)
        return _display(sorted(speakers)[0])

    def _speakers_and_languages(self) -> tuple[list[str], list[str]]:
        """From the loaded model, else from the checkpoint's config.json, else by loading."""
        if self._catalog is None:
            self._load()
        assert self._catalog is not None
        return self._catalog

    def _speaker_for(self, voice: str, speakers: list[str]) -> str:
        name = voice.strip().lower()
        if name in _DEFAULT_NAMES:
            name = self.default_voice.lower()
        if name in speakers:
            return name
        valid = ", ".join(sorted(_display(s) for s in speakers))
        raise VoiceError(
            f"Qwen3-TTS ({self.model_path}) has no speaker {voice!r}; valid speakers: {valid}"
        )

    def _language_for(self, language: str | None, languages: list[str]) -> str:
        """The model's name for a BCP 47 / ISO 639 tag or a language name; "Auto" for none."""
        tag = (language or "").strip().lower().replace("_", "-")
        if tag in _AUTO_LANGUAGES:
            return "Auto"
        primary = tag.split("-", 1)[0]
        for candidate in (tag, _ISO_LANGUAGES.get(primary), _ISO_LANGUAGES.get(tag)):
            if candidate and candidate in languages and candidate != "auto":
                return _display(candidate)
        codes = {name: code for code, name in _ISO_LANGUAGES.items() if len(code) == 2}
        valid = ", ".join(
            f"{_display(name)} ({codes[name]})" if name in codes else _display(name)
            for name in languages
            if name != "auto"
        )
        raise VoiceError(
            f"Qwen3-TTS ({self.model_path}) does not speak language {language!r}; "
            f"valid languages: {valid}, or leave the language unset to detect it"
        )

    # -- the model --------------------------------------------------------------------

    def _load(self) -> Any:
        """The qwen_tts model, loaded on first use."""
        with self._lock:
            if self._model is not None:
                return self._model
            if self._closed:
                raise EngineError("the Qwen3-TTS engine was used after close()")
            try:
                from .quiet import cuda_allocator_defaults, import_qwen_tts

                if self.decode_loop == "qwen_tts":
                    cuda_allocator_defaults()
                Qwen3TTSModel = import_qwen_tts().Qwen3TTSModel
                import torch
            except ImportError as exc:
                raise EngineError(
                    f"the Qwen3-TTS engine needs the Python packages torch and qwen-tts ({exc})"
                ) from exc
            device = self._resolve_device(torch)
            dtype = self._resolve_dtype(torch, device)
            torch.backends.cudnn.benchmark = False  # batch shapes vary: autotuning every one costs more
            source = self.model_path
            local = Path(source).expanduser()
            source = str(local) if local.is_dir() else local_snapshot(source)
            log.info("loading Qwen3-TTS from %s on %s (%s)", source, device, str(dtype).removeprefix("torch."))
            try:
                model = Qwen3TTSModel.from_pretrained(
                    source, device_map=device, dtype=dtype, attn_implementation="sdpa"
                )
            except VoxdError:
                raise
            except Exception as exc:
                if isinstance(translate(exc), OutOfMemory):
                    free_cuda(torch)
                    # Not OutOfMemory: no smaller batch helps a model that does not load.
                    raise EngineError(
                        f"Qwen3-TTS ({source}) does not fit in {device} memory (other programs on the GPU?): {exc}"
                    ) from exc
                raise EngineError(f"could not load Qwen3-TTS from {source}: {type(exc).__name__}: {exc}") from exc
            kind = getattr(model.model, "tts_model_type", None)
            if kind != self.expected_kind:
                raise ConfigError(
                    f"{source} is a Qwen3-TTS {kind!r} checkpoint; {self.setting} must be a "
                    f"{self.expected_kind!r} one (e.g. {self.example})"
                )
            quiet_padding_warning(model)
            if self.decode_loop == "voxd":
                from .qwen_loop import install

                self._frames = install(model.model, graphs=self.cuda_graphs)
            if self._frames is None and self.trim_hidden_states:
                keep_last_hidden_state(model)
            from .qwen_decode import Decoder

            self._decoder = Decoder(model.model.speech_tokenizer, max_items=self.decode_batch).install()
            self._model = model
            speakers = sorted(str(s).lower() for s in (model.model.get_supported_speakers() or ()))
            languages = [str(lang).lower() for lang in (model.model.get_supported_languages() or ())]
            self._catalog = (speakers, languages)
            default = self._pick_default(self._wanted_default)
            if default != self.default_voice:
                log.warning("Qwen3-TTS: %s has no speaker %s; the default is %s", source, self.default_voice, default)
                self.default_voice = default
                self.model_id = self._fingerprint()
            return model

    def _resolve_device(self, torch: Any) -> str:
        from voxd.tts.cuda_check import resolve_device  # "auto" never falls back to the CPU silently

        return resolve_device(torch, self.device)

    def _resolve_dtype(self, torch: Any, device: str) -> Any:
        if self.dtype == "auto":
            return torch.bfloat16 if device.startswith("cuda") else torch.float32
        return getattr(torch, self.dtype)

    @staticmethod
    def _sample_rate(model: Any) -> int:
        try:
            return int(model.model.speech_tokenizer.get_output_sample_rate())
        except Exception:  # an older or odd speech tokenizer: the 12 Hz codec's rate
            return 24000

    def _generate(
        self,
        model: Any,
        texts: list[str],
        *,
        speakers: list[str],
        languages: list[str],
        instructs: list[str | None],
        seed: int | None,
        item_seeds: list[int] | None = None,
        later: bool = False,
    ) -> Callable[[], tuple[list[np.ndarray], int, list[bool]]]:
        """Generates the codes now; what it returns gives (waveforms, sample rate, which ones
        ran into the frame cap), at once or, ``later``, when the decode under way is done."""
        import torch

        max_new_tokens = estimate_max_new_tokens(texts)
        # Each item's own budget (the voxd loop stops it there, the rest go on); qwen_tts's
        # own loop runs every item to the batch's.
        budgets = [estimate_max_new_tokens([t]) - 1 for t in texts]
        if self._frames is not None:
            self._frames.plan(max_frames=budgets, seeds=item_seeds, rows=self.decode_rows or None)
        else:
            budgets = [max_new_tokens - 1] * len(texts)
        try:
            if seed is not None:
                torch.manual_seed(seed)  # seeds every CUDA device too
            self._decoder.defer = later
            wavs, sample_rate = self._call_model(
                model, texts, speakers=speakers, languages=languages, instructs=instructs,
                max_new_tokens=max_new_tokens,
            )
        except VoxdError:
            raise
        except Exception as exc:
            raise failed(exc, len(texts), max_new_tokens) from exc
        finally:
            self._decoder.defer = False
        if isinstance(wavs, Pending):
            pending = wavs

            def collect() -> tuple[list[np.ndarray], int, list[bool]]:
                try:
                    decoded, rate = pending.result()
                except Exception as exc:
                    raise failed(exc, len(texts), max_new_tokens) from exc
                return self._waves(texts, decoded, rate, budgets)

            return collect
        done = self._waves(texts, wavs, sample_rate, budgets)
        return lambda: done

    def _waves(self, texts: list[str], wavs: list[Any], sample_rate: Any,
               budgets: list[int]) -> tuple[list[np.ndarray], int, list[bool]]:
        if len(wavs) != len(texts):
            raise EngineError(f"Qwen3-TTS returned {len(wavs)} waveforms for {len(texts)} texts")
        waves = [np.clip(np.asarray(w, dtype=np.float32).reshape(-1), -1.0, 1.0) for w in wavs]
        # A wave lasts exactly its frames (1920 samples each at 24 kHz). An item that never
        # said EOS has its whole budget of them: max_new_tokens - 1 in qwen_tts's loop,
        # which reads a frame's codes from the step after it, and the last step has none.
        capped = [round(len(w) * FRAMES_PER_SECOND / int(sample_rate)) >= budget for w, budget in zip(waves, budgets)]
        return waves, int(sample_rate), capped


def _item_seeds(batch: Sequence[Utterance]) -> list[int] | None:
    """Every utterance's own seed, or None unless all have one (then the batch's seed rules)."""
    seeds = [u.seed for u in batch]
    return None if any(s is None for s in seeds) else [int(s) for s in seeds if s is not None]
