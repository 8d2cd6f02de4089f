"""Model weights from the Hugging Face hub: fetched as a phase of their own.

The first use of a Qwen3-TTS model downloads it: about 4.5 GB for a 1.7B checkpoint.
Below 60 Mbit/s that takes longer than the service's watchdog allows a silent
worker (``WatchdogSec=10min``), so the fetch is a phase with its own progress
instead of hiding inside the first batch:

* :func:`fetch` runs ``snapshot_download`` in a thread of its own and, every
  second, measures what is on disk against the total the hub lists, and hands a
  :class:`FetchProgress` to ``report`` in the calling thread. The worker turns each
  into a watchdog ping, a ``STATUS=`` line and the job's phase in ``voxd jobs``;
  a ``report`` that raises (a stop, a cancel) ends the wait at once.
* A fetch that receives nothing for :data:`STALL_SECONDS` is given up
  (:class:`Unavailable`: the job waits), so a hung connection never keeps the
  watchdog fed.
* It resumes. huggingface_hub writes each file to ``blobs/<etag>.incomplete`` and,
  on the next try, asks only for the rest (an HTTP ``Range`` from that file's size).
  Its Xet transfer (hf_xet) starts a file from the beginning instead, so voxd's
  fetch uses plain HTTP unless ``HF_HUB_DISABLE_XET`` is set in the environment.
* Space is checked first: a disk that cannot hold the rest pauses the job
  (:class:`StorageFull`) instead of filling up at 90 %.

Nothing here imports huggingface_hub at module import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EngineError, StorageFull, Unavailable, network_reason

log = logging.getLogger("voxd.tts.hub")

#: A fetch whose files grow by nothing for this long is given up (the job waits and resumes).
#: huggingface_hub writes a file in 10 MB pieces, so this also bounds the slowest link
#: (about 17 kB/s) a fetch goes on with; its own timeouts end a dead connection sooner.
STALL_SECONDS = 600.0
#: How often the fetch looks at the disk and reports.
REPORT_SECONDS = 1.0
#: How often the progress is logged.
LOG_SECONDS = 15.0
#: Room left free beside a model, so the chunk cache and the system keep breathing.
SPARE_BYTES = 1 << 30

Report = Callable[["FetchProgress"], None]


@dataclass(frozen=True, slots=True)
class FetchProgress:
    """How far the fetch of one model is: bytes on disk of the ``total`` the hub lists."""

    model: str
    done: int
    total: int | None
    bytes_per_second: float | None = None
    finished: bool = False

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def describe(self) -> str:
        """``downloading Qwen/...: 1.23 of 4.52 GB (27%), 7.5 MB/s``."""
        if self.finished:
            return f"downloaded {self.model} ({size_text(self.done)})"
        if self.total:
            unit = "GB" if self.total >= 1e9 else "MB"
            amount = f"{size_text(self.done, unit, bare=True)} of {size_text(self.total, unit)} ({self.percent:.0f}%)"
        else:
            amount = size_text(self.done)
        speed = f", {self.bytes_per_second / 1e6:.1f} MB/s" if self.bytes_per_second else ""
        return f"downloading {self.model}: {amount}{speed}"


@dataclass(frozen=True, slots=True)
class OnDisk:
    """What of a hub model is on this machine (``voxd doctor``)."""

    model: str
    path: Path | None  # its snapshot folder, when one exists
    complete: bool
    size: int  # bytes on disk, the partial downloads included


def size_text(n: int | None, unit: str | None = None, *, bare: bool = False) -> str:
    """``4.52 GB`` or ``23.5 MB`` (``unit`` forces one; ``bare`` leaves it out)."""
    n = n or 0
    unit = unit or ("GB" if n >= 1e9 else "MB")
    number = f"{n / 1e9:.2f}" if unit == "GB" else f"{n / 1e6:.1f}"
    return number if bare else f"{number} {unit}"


def cache_root() -> Path:
    """The hub cache (``HF_HOME``/hub, or ``HF_HUB_CACHE``), where fetched models live."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def repo_folder(model: str) -> Path:
    return cache_root() / ("models--" + model.replace("/", "--"))


def cached_snapshot(model: str) -> Path | None:
    """The model's snapshot folder in the hub cache, without the network; None if there is none."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not cached, not a repo id, no huggingface_hub
        return None


def on_disk(model: str, complete: Callable[[Path], bool]) -> OnDisk:
    """Whether ``model`` is on this machine in full (``complete`` judges a snapshot), and its size."""
    snapshot = cached_snapshot(model)
    try:
        size = _tree_bytes(repo_folder(model) / "blobs")
    except Exception:
        size = 0
    return OnDisk(model, snapshot, snapshot is not None and complete(snapshot), size)


def fetch(
    model: str,
    *,
    complete: Callable[[Path], bool],
    report: Report | None = None,
    setting: str = "qwen.custom_voice_model",
    every: float = REPORT_SECONDS,
    stall_seconds: float = STALL_SECONDS,
) -> str:
    """The local snapshot folder of hub model ``model``, downloaded first if ``complete``
    finds it missing or partial (an interrupted fetch resumes).

    ``report`` hears the progress every ``every`` seconds in the calling thread and may
    raise to stop waiting (the download goes on in its thread, and a later fetch
    takes over what it wrote). ``setting`` names the configuration key in errors.
    """
    try:
        import huggingface_hub  # noqa: F401
    except ImportError as exc:
        raise EngineError(f"loading {model} from the Hugging Face hub needs huggingface_hub ({exc})") from exc
    snapshot = cached_snapshot(model)
    if snapshot is not None and complete(snapshot):
        return str(snapshot)
    files = _listing(model, setting)
    sizes = [size for _, size, _ in files if size is not None]
    total = sum(sizes) if files and len(sizes) == len(files) else None
    names = {blob for _, _, blob in files if blob}
    blobs = names if files and all(blob for _, _, blob in files) else None
    folder = repo_folder(model)
    already = _on_disk(folder, blobs)
    _check_space(model, total, already)
    log.info("downloading %s from the Hugging Face hub into %s: %s in %d files%s", model, cache_root(),
             size_text(total) if total else "size unknown", len(files),
             f", {size_text(already)} already here from an earlier try" if already else "")
    _configure_hub()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def download() -> None:
        from huggingface_hub import snapshot_download

        try:
            outcome["path"] = snapshot_download(model)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=download, name="voxd-fetch", daemon=True).start()
    started = last_growth = last_log = time.monotonic()
    last = already
    while not done.wait(every):
        now = time.monotonic()
        size = _on_disk(folder, blobs)
        if size > last:
            last, last_growth = size, now
        elif now - last_growth >= stall_seconds:
            raise Unavailable(f"the download of {model} has received nothing for {stall_seconds:.0f} s "
                              "(network down?); it resumes where it stopped when the job runs again")
        speed = (size - already) / (now - started) if now > started and size > already else None
        progress = FetchProgress(model, size, total, speed)
        if now - last_log >= LOG_SECONDS:
            last_log = now
            log.info("%s%s", progress.describe(), _eta(progress))
        if report:
            report(progress)
    if "error" in outcome:
        raise _fetch_error(model, outcome["error"], setting)
    path = Path(outcome["path"])
    if not complete(path):  # offline, huggingface_hub returns what it has
        raise Unavailable(f"{model} could not be downloaded completely (only part of it is in {path}); "
                          f"connect this machine to the internet, or point {setting} at a local copy")
    size = _tree_bytes(path, follow=True)
    log.info("downloaded %s to %s (%s)", model, path, size_text(size))
    if report:
        report(FetchProgress(model, size, size, finished=True))
    return str(path)


def _listing(model: str, setting: str) -> list[tuple[str, int | None, str | None]]:
    """(file name, size, blob name in the cache) of every file of the model's main revision."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(model, files_metadata=True)
    except Exception as exc:
        raise _fetch_error(model, exc, setting) from exc
    files = []
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        size = lfs.size if lfs else sibling.size
        blob = lfs.sha256 if lfs else sibling.blob_id
        files.append((sibling.rfilename, size, blob))
    return files


def _fetch_error(model: str, exc: BaseException, setting: str) -> Exception:
    """What a failed fetch means: a model that does not exist is the configuration's fault;
    anything else (network, hub down) waits and resumes later."""
    if isinstance(exc, ConfigError | Unavailable):
        return exc
    name = type(exc).__name__
    if name in ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"):
        return ConfigError(
            f"{setting}: the Hugging Face hub has no model {model!r} that this machine may download ({name}); "
            "give the id of a model on the hub (organisation/name, e.g. Qwen/Qwen3-TTS-12Hz-1.7B-Base) or a "
            "local directory"
        )
    if name == "OfflineModeIsEnabled":
        return EngineError(
            f"{model} is not in the local Hugging Face cache (or only part of it), and HF_HUB_OFFLINE forbids "
            f"downloading it; unset HF_HUB_OFFLINE, or point {setting} at a local copy"
        )
    if isinstance(exc, OSError) and "No space left" in str(exc):
        return StorageFull(f"no space left on device while downloading {model}: {exc}")
    return Unavailable(
        f"{model} is not on this machine yet and could not be downloaded ({network_reason(exc) or f'{name}: {exc}'});"
        " it resumes where it "
        f"stopped once the hub answers (or point {setting} at a local copy)"
    )


def _configure_hub() -> None:
    """No tqdm bars (voxd reports progress itself; a service's log is no terminal), and plain
    HTTP unless the environment says otherwise: it resumes a partial file, Xet does not."""
    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    if "HF_HUB_DISABLE_XET" not in os.environ:
        constants.HF_HUB_DISABLE_XET = True


def _check_space(model: str, total: int | None, already: int) -> None:
    if not total:
        return
    root = cache_root()
    probe = next((p for p in (root, *root.parents) if p.exists()), None)
    if probe is None:
        return
    free = shutil.disk_usage(probe).free
    needed = max(0, total - already)
    if free < needed + SPARE_BYTES:
        raise StorageFull(f"{model} needs {size_text(needed)} more in {root}, which has {size_text(free)} free; "
                          "free some space there (or set HF_HOME to a larger disk); the job waits")


def _eta(progress: FetchProgress) -> str:
    if not progress.total or not progress.bytes_per_second:
        return ""
    left = max(0, progress.total - progress.done) / progress.bytes_per_second
    return f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"


def _on_disk(folder: Path, blobs: set[str] | None) -> int:
    """Bytes of the model in the cache, partial files included: of its own blobs when the
    hub named them (a folder may hold other revisions' blobs too), else of every blob."""
    root = folder / "blobs"
    if blobs is None:
        return _tree_bytes(root)
    total = 0
    for blob in blobs:
        for candidate in (root / blob, root / f"{blob}.incomplete"):
            try:
                total += candidate.stat().st_size
                break
            except OSError:
                continue
    return total


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
