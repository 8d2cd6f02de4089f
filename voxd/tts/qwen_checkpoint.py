"""Qwen3-TTS checkpoints on this machine: where a model id's files are, and what they say.

A Hugging Face id is resolved to its snapshot in the local cache before loading
(and fetched the first time, :mod:`voxd.tts.hub`), so the model loads
with no network once it is on the machine: given an id, qwen_tts and
transformers would ask the hub about it on every load. A checkpoint's
config.json alone tells its kind, speakers and languages, so a configuration
mistake is reported before anything heavy is imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from voxd.errors import ConfigError
from voxd.tts.hub import Report, fetch


def local_snapshot(repo_id: str, report: Report | None = None, *, setting: str = "qwen.custom_voice_model") -> str:
    """The local directory of Hugging Face model ``repo_id``: its snapshot in the hub
    cache, fetched first (:func:`voxd.tts.hub.fetch`: progress in the log and to
    ``report``, resuming an earlier try) if the cache lacks it or holds only part."""
    return fetch(repo_id, complete=complete_checkpoint, report=report, setting=setting)


def complete_checkpoint(path: Path) -> bool:
    """Whether a snapshot has what loading needs (an interrupted download may not)."""
    return (
        (path / "config.json").is_file()
        and any(path.glob("*.safetensors"))
        and (path / "speech_tokenizer" / "config.json").is_file()
        and any((path / "speech_tokenizer").glob("*.safetensors"))
    )


def looks_like_path(model: str) -> bool:
    """A local directory rather than a hub id ("org/name"): absolute, ~ or ./ relative."""
    return model.startswith(("/", "~", "./", "../")) or (len(model) > 1 and model[1] == ":")


def read_checkpoint_config(model: str) -> dict[str, Any] | None:
    """The checkpoint's config.json if it is on this machine (a directory, or the
    Hugging Face cache), without touching the network; None otherwise."""
    path: Path | None = None
    local = Path(model).expanduser()
    if local.is_dir():
        path = local / "config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
        except Exception:  # not a valid repo id, no huggingface_hub: learn it when loading
            cached = None
        if isinstance(cached, str):
            path = Path(cached)
    if path is None or not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def catalog_from_config(
    model: str, config: dict[str, Any], *, expected: str = "custom_voice",
    setting: str = "qwen.custom_voice_model", example: str = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
) -> tuple[list[str], list[str]] | None:
    """(speakers, languages) the way qwen_tts derives them from config.json."""
    kind = config.get("tts_model_type")
    if kind is not None and kind != expected:
        raise ConfigError(f"{model} is a Qwen3-TTS {kind!r} checkpoint; {setting} must be a {expected!r} one "
                          f"(e.g. {example})")
    talker = config.get("talker_config") or {}
    speakers = talker.get("spk_id")
    languages = talker.get("codec_language_id")
    if not isinstance(speakers, dict) or not isinstance(languages, dict):
        return None
    names = ["auto"] + [str(lang).lower() for lang in languages if "dialect" not in str(lang)]
    return sorted(str(s).lower() for s in speakers), names
