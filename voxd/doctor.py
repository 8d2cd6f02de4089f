"""What ``voxd doctor`` says about the engines, the GPU and the models, and ``voxd doctor --fetch``.

Each function returns (label, text, ok) lines for the command line to print: ok True
or False is a verdict (False counts as a problem), None a plain fact. The GPU lines
come from :mod:`voxd.tts.cuda_check`; this module adds the configured device's free
memory (the card ``[qwen] device`` names, not always the first), the batch size it
gives, and the models: whether each one configured is on this machine, and whether
the disk has room for those that are not.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .config import Settings
from .errors import VoxdError

if TYPE_CHECKING:
    from .tts.auto import Choice

Line = tuple[str, str, bool | None]
GiB = 2**30

#: About how much one checkpoint takes on disk (weights and speech tokenizer), by size.
MODEL_BYTES = {"1.7B": 4_500_000_000, "0.6B": 2_500_000_000}


def models(settings: Settings) -> list[tuple[str, str]]:
    """(setting, model) of every Qwen3-TTS checkpoint the configuration names."""
    q = settings.qwen
    return [("qwen.custom_voice_model", q.custom_voice_model), ("qwen.base_model", q.base_model),
            ("qwen.voice_design_model", q.voice_design_model)]


def choice_lines(settings: Settings, choice: Choice | None) -> list[Line]:
    """The engine and why: what ``auto`` chose here, or a warning where the configured engine is
    Qwen3-TTS on a machine that cannot run it fast (days a book on the CPU)."""
    from .tts.auto import choose, gpu_verdict

    if choice is not None:
        return [("engine", choice.describe(), True)]
    if settings.engine != "qwen":
        return [("engine", f"{settings.engine} (as configured)", None)]
    usable, why = gpu_verdict(settings.qwen.device)
    if usable:
        return [("engine", f"qwen: Qwen3-TTS on {why}", True)]
    on_purpose = settings.qwen.device.strip().lower() == "cpu"
    instead = choose(settings.model_copy(update={"qwen": settings.qwen.model_copy(update={"device": "auto"})}))
    return [("engine", f"qwen, but Qwen3-TTS cannot run fast here ({why}): on the CPU a book takes days; "
             f'engine = "auto" would choose {instead.engine} here', None if on_purpose else False)]


def remote_lines(settings: Settings) -> list[Line]:
    """What ``engine = "remote"`` needs: each server and the models it serves, then the voices
    they speak and whether the configured voice is one of them."""
    from .errors import VoiceError
    from .tts.registry import load_engine

    needed = settings.engine == "remote"
    try:
        engine = load_engine(settings, "remote")
    except VoxdError as exc:
        return [("remote", str(exc), False)]
    lines: list[Line] = []
    try:
        probed = engine.probe()  # type: ignore[attr-defined]
        for url, ok, said in probed:
            lines.append(("server", f"{url}: {said}", ok or not needed))
        if not any(ok for _, ok, _ in probed):
            return lines
        try:
            served = engine.served()  # type: ignore[attr-defined]
            voices = engine.voices()
        except VoxdError as exc:
            return [*lines, ("voices", str(exc), False if needed else None)]
        listed = ", ".join(voices[:12]) + (f" and {len(voices) - 12} more" if len(voices) > 12 else "")
        lines.append(("voices", f"{served.model}: {listed or 'none listed'}; its default voice: "
                      f"{served.default_voice or 'the server decides'}", None))
        if settings.voice:
            try:
                engine.check_voices([settings.voice])
            except VoiceError as exc:
                lines.append(("voice", str(exc), False if needed else None))
            else:
                lines.append(("voice", f"{settings.voice}: the servers speak it", True))
    finally:
        engine.close()
    return lines


def engine_lines(settings: Settings) -> list[Line]:
    """The CPU engines, loaded as a render would load them, and the speech servers where
    they are configured: a missing or broken one is a problem where it is the configured
    engine, and a plain note elsewhere (Piper is an optional extra)."""
    from .tts.registry import load_engine

    lines: list[Line] = []
    try:
        engine = load_engine(settings, "espeak")
        lines.append(("espeak", f"{engine.model_id}, {len(engine.voices())} voices", True))
        engine.close()
    except VoxdError as exc:
        lines.append(("espeak", str(exc), settings.engine != "espeak"))
    try:
        engine = load_engine(settings, "piper")
    except VoxdError as exc:
        lines.append(("piper", str(exc), None if settings.engine != "piper" else False))
    else:
        voice = engine.catalogue.default  # type: ignore[attr-defined]
        lines.append(("piper", f"{voice.name} ({voice.language}, {voice.sample_rate} Hz) from {voice.model}; "
                      f"{len(engine.voices())} voice(s) installed, {engine.workers} worker(s)",  # type: ignore[attr-defined]
                      True if settings.engine == "piper" else None))
        engine.close()
    lines.append(_read_back_line(settings))
    if settings.engine != "remote" and settings.remote.urls:  # the configured engine's own come first
        lines.extend(remote_lines(settings))
    return lines


def _read_back_line(settings: Settings) -> Line:
    """The read-back's recogniser, loaded as a render loads it (a model not on this machine yet
    is fetched now): missing, it is a problem only where ``[verify] required`` says so."""
    from .verify.listener import listener_for
    from .verify.recogniser import RecogniserUnavailable

    if settings.verify.mode == "off":
        return ("verify", "the read-back is off ([verify] mode)", None)
    try:
        listener = listener_for(settings)
    except RecogniserUnavailable as exc:
        return ("verify", str(exc), False)
    if listener is None or listener.recogniser is None:
        away = listener.away if listener else ""
        return ("verify", f"not checked: {away}; books render, their chunks counted as not checked",
                False if "[verify]" in away else None)  # a setting that names no model is a mistake to fix
    r = listener.recogniser
    known = "English only" if not r.multilingual else "many languages"
    return ("verify", f"Whisper {r.name} ({known}), every {'take' if listener.mode == 'all' else 'suspect take'} "
            "read back", True)


def gpu_lines(settings: Settings) -> list[Line]:
    """torch, the driver, each card and whether this torch supports it, the configured
    device's verdict and free memory, and the batch size that memory gives."""
    from .tts import cuda_check

    device = settings.qwen.device
    engine_is_qwen = settings.engine == "qwen"
    torch = _torch()
    smi = cuda_check.gather_smi()
    proc_present, proc_driver = cuda_check.gather_proc()
    facts = cuda_check.gather_torch(torch) if torch is not None else None
    found = cuda_check.diagnose(smi, proc_present=proc_present, proc_driver=proc_driver, torch=facts,
                                device=device, visible=os.environ.get("CUDA_VISIBLE_DEVICES"))
    lines: list[Line] = []
    for label, text, ok in cuda_check.report_lines(found, smi, facts, proc_driver=proc_driver, device=device):
        lines.append((label, text, ok if (ok is not False or engine_is_qwen) else None))
    free = _free_memory(torch, found)
    if free is not None:
        where, free_bytes, total_bytes, source = free
        lines.append(("vram", f"{where}: {free_bytes / GiB:.1f} of {total_bytes / GiB:.1f} GiB free{source}", None))
        try:
            from .tts.gpu import recommended_batch_size

            for _, model in models(settings)[:2]:
                lines.append(("batch", f"{model}: {recommended_batch_size(model, free_bytes)} chunks per batch", None))
        except ImportError:
            pass
    return lines


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _free_memory(torch: Any, found: Any) -> tuple[str, int, int, str] | None:
    """(device and card, free bytes, total bytes, where the figure comes from) of the configured card."""
    if found.usable and torch is not None:
        index = int(found.device.split(":", 1)[1])
        try:
            free, total = torch.cuda.mem_get_info(index)
            return f"{found.device} ({torch.cuda.get_device_name(index)})", int(free), int(total), ""
        except Exception:
            pass
    card = found.card
    if card is not None and card.memory_free_mib is not None and card.memory_total_mib is not None:
        return (f"{found.device} ({card.name})", card.memory_free_mib * 2**20, card.memory_total_mib * 2**20,
                " (as nvidia-smi counts it)")
    return None


def model_lines(settings: Settings) -> list[Line]:
    """Whether each configured model is on this machine, and room on disk for the rest."""
    from .tts.gpu import model_size
    from .tts.hub import cache_root, on_disk, size_text
    from .tts.qwen_checkpoint import complete_checkpoint, looks_like_path

    lines: list[Line] = []
    missing = 0
    for setting, model in models(settings):
        label = "model"
        if looks_like_path(model) or Path(model).expanduser().is_dir():
            local = Path(model).expanduser()
            ok = local.is_dir() and complete_checkpoint(local)
            lines.append((label, f"{model} ({setting}): local directory" + ("" if ok else ", incomplete or missing"),
                          ok))
            continue
        state = on_disk(model, complete_checkpoint)
        if state.complete:
            lines.append((label, f"{model}: on this machine ({size_text(state.size)}, {state.path})", True))
            continue
        expected = MODEL_BYTES.get(model_size(model), MODEL_BYTES["1.7B"])
        missing += max(0, expected - state.size)
        said = (f"partly here ({size_text(state.size)} of about {size_text(expected)}); "
                if state.size else f"not on this machine yet (about {size_text(expected)}); ")
        lines.append((label, f"{model}: {said}fetched at first use, or now with voxd doctor --fetch", None))
    try:
        root = cache_root()
        probe = next((p for p in (root, *root.parents) if p.exists()), None)
        free = shutil.disk_usage(probe).free if probe is not None else None
    except Exception:
        root, free = None, None
    if root is not None and free is not None:
        need = f"; the models not here yet need about {size_text(missing)}" if missing else ""
        lines.append(("models", f"{root}: {size_text(free)} free{need}", free >= missing))
    return lines


def fetch_models(settings: Settings, out: TextIO = sys.stdout, every: float = 5.0) -> list[Line]:
    """``voxd doctor --fetch``: every configured hub model not on this machine, fetched now
    with its progress printed (resuming an earlier try); a line per model."""
    from .tts.hub import FetchProgress
    from .tts.qwen_checkpoint import local_snapshot, looks_like_path

    lines: list[Line] = []
    for setting, model in models(settings):
        if looks_like_path(model) or Path(model).expanduser().is_dir():
            continue
        last = [0.0]

        def show(progress: FetchProgress, last: list[float] = last) -> None:
            now = time.monotonic()
            if progress.finished or now - last[0] >= every:
                last[0] = now
                print(f"    {progress.describe()}", file=out, flush=True)

        try:
            path = local_snapshot(model, show, setting=setting)
        except VoxdError as exc:
            lines.append(("fetch", f"{model}: {exc}", False))
            continue
        lines.append(("fetch", f"{model}: on this machine ({path})", True))
    if settings.verify.mode != "off" and not settings.verify.urls:  # the read-back's Whisper too
        from .verify.recogniser import model_folder

        try:
            folder = model_folder(settings.verify.model, lambda p: print(f"    {p.describe()}", file=out, flush=True))
            lines.append(("fetch", f"{settings.verify.model}: on this machine ({folder})", True))
        except VoxdError as exc:
            lines.append(("fetch", f"{settings.verify.model}: {exc}", False))
    return lines
