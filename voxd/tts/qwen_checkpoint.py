"""Qwen3-TTS checkpoints on this machine: where a model id's files are, and what they say.

A Hugging Face id is resolved to its snapshot in the local cache before loading
(and downloaded, with progress in the log, the first time), so the model loads
with no network once it is on the machine: given an id, qwen_tts and
transformers would ask the hub about it on every load. A checkpoint's
config.json alone tells its kind, speakers and languages, so a configuration
mistake is reported before anything heavy is imported.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from voxd.errors import ConfigError, EngineError

log = logging.getLogger("voxd.tts.qwen")


def local_snapshot(repo_id: str) -> str:
    """The local directory of Hugging Face model ``repo_id``: its snapshot in the hub
    cache, downloaded first (progress in the log) if the cache lacks it."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise EngineError(f"loading {repo_id} from the Hugging Face hub needs huggingface_hub ({exc})") from exc
    try:
        path = snapshot_download(repo_id, local_files_only=True)
        if _complete_checkpoint(Path(path)):
            return path
    except Exception:  # not cached (or not a repo id): download below, which says which
        pass
    log.info("downloading %s from the Hugging Face hub (first use; a few GB); progress follows", repo_id)
    stop = threading.Event()
    watcher = threading.Thread(target=_report_download, args=(repo_id, stop), name="voxd-download", daemon=True)
    watcher.start()
    try:
        path = snapshot_download(repo_id)
    except Exception as exc:
        name = type(exc).__name__
        if name in ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"):
            raise ConfigError(
                f"qwen.custom_voice_model: the Hugging Face hub has no model {repo_id!r} that this machine "
                f"may download ({name}); give a model id such as Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice or a local "
                "directory"
            ) from exc
        raise EngineError(
            f"{repo_id} is not in the local Hugging Face cache and could not be downloaded ({name}: {exc}); "
            "connect this machine to the internet once, or point qwen.custom_voice_model at a local copy"
        ) from exc
    finally:
        stop.set()
        watcher.join()
    if not _complete_checkpoint(Path(path)):  # offline, huggingface_hub returns what it has
        raise EngineError(
            f"{repo_id} is not in the local Hugging Face cache (only part of it, in {path}) and could not be "
            "downloaded; connect this machine to the internet once, or point qwen.custom_voice_model at a local copy"
        )
    log.info("downloaded %s to %s (%.2f GB)", repo_id, path, _tree_bytes(Path(path), follow=True) / 1e9)
    return path


def _complete_checkpoint(path: Path) -> bool:
    """Whether a cached snapshot has what loading needs (an interrupted download may not)."""
    return (
        (path / "config.json").is_file()
        and any(path.glob("*.safetensors"))
        and (path / "speech_tokenizer" / "config.json").is_file()
        and any((path / "speech_tokenizer").glob("*.safetensors"))
    )


def _report_download(repo_id: str, stop: threading.Event, every: float = 15.0) -> None:
    """Log how much of ``repo_id`` is in the hub cache every ``every`` seconds until ``stop``."""
    try:
        from huggingface_hub import constants

        folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    except Exception:
        return
    while not stop.wait(every):
        log.info("downloading %s: %.2f GB so far", repo_id, _tree_bytes(folder) / 1e9)


def _tree_bytes(folder: Path, follow: bool = False) -> int:
    total = 0
    try:
        for item in folder.rglob("*"):
            try:
                if item.is_file() and (follow or not item.is_symlink()):
                    total += item.stat().st_size
            except OSError:
                pass
    except OSError:
        pass
    return total


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
