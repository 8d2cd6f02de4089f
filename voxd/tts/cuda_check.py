"""Whether torch can use this machine's NVIDIA GPU, and if not, why and what to install.

The torch wheel voxd installs is built for one CUDA version (13.0 for torch 2.11's
default Linux wheel, which needs the 580 driver or newer) and for a set of GPU
architectures (sm_75, Turing, and newer). On a machine whose driver is older, or
whose card is a Pascal or Volta one, ``torch.cuda.is_available()`` is false (or the
first kernel fails), and ``device = "auto"`` would quietly run the 1.7B model on the
CPU in float32: hours per chapter, with nothing in the log to say why. So:

* When NVIDIA hardware is present (``/proc/driver/nvidia``, or ``nvidia-smi`` listing
  a card or failing to reach its driver) but torch cannot use it, :func:`resolve_device`
  refuses ``device = "auto"`` with :class:`GpuUnusable`, which names the reason and what
  to install; ``device = "cpu"`` in the config is the way to render on the CPU anyway.
* The daemon says the same once at start-up, and ``voxd doctor`` prints the facts.

Gathering the facts is I/O (nvidia-smi, /proc, importing torch); :func:`diagnose` is
a pure function of them, so every case can be tested with real-looking outputs on a
machine without a GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GpuUnusable

#: Where the NVIDIA kernel module shows itself when it is loaded.
PROC_NVIDIA = Path("/proc/driver/nvidia")
#: The nvidia-smi query voxd reads: one CSV line per card.
QUERY_FIELDS = ("index", "uuid", "name", "compute_cap", "memory.total", "memory.free", "driver_version")
#: The oldest Linux driver for each CUDA major version (minor-version compatibility:
#: a build for any 12.x runs on a 525 driver, one for 13.x on a 580 driver).
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
#: The CUDA builds PyTorch publishes for each release and the kernels each carries
#: (torch.cuda.PYTORCH_RELEASES_CODE_CC of torch 2.11): which build a card or a driver needs.
TORCH_BUILDS: dict[str, tuple[str, ...]] = {
    "12.6": ("sm_50", "sm_60", "sm_70", "sm_80", "sm_86", "sm_90"),
    "12.8": ("sm_70", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
    "13.0": ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_110", "sm_120"),
}
TORCH_INDEX = "https://download.pytorch.org/whl/cu{tag}"
_CPU_WAY_OUT = 'set [qwen] device = "cpu" to render on the CPU on purpose (many times slower)'


@dataclass(frozen=True, slots=True)
class SmiCard:
    """One card as nvidia-smi lists it (physical order, whatever CUDA_VISIBLE_DEVICES says)."""

    index: int
    uuid: str
    name: str
    compute_capability: tuple[int, int] | None  # None where this nvidia-smi cannot say
    memory_total_mib: int | None
    memory_free_mib: int | None

    @property
    def capability(self) -> str:
        cc = self.compute_capability
        return f"{cc[0]}.{cc[1]}" if cc else "unknown"


@dataclass(frozen=True, slots=True)
class SmiFacts:
    """What nvidia-smi said: ``found`` is whether it is installed at all."""

    found: bool = False
    cards: tuple[SmiCard, ...] = ()
    driver: str | None = None
    driver_cuda: str | None = None  # the newest CUDA the driver supports ("CUDA Version" in its header)
    error: str | None = None  # its own words when it failed


@dataclass(frozen=True, slots=True)
class TorchFacts:
    """What the installed torch says about CUDA, gathered without needing a working GPU."""

    version: str
    cuda: str | None  # the CUDA version torch was built for; None for a CPU-only build
    available: bool
    arch_list: tuple[str, ...]  # e.g. ("sm_75", "sm_80", ...): the kernels compiled in
    device_count: int = 0
    said: str = ""  # torch's own warnings while looking (a driver too old, an unsupported card)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Whether the configured device can run Qwen3-TTS, and if not why, in words."""

    hardware: bool  # NVIDIA hardware is on this machine
    usable: bool  # torch can run kernels on the configured card
    device: str  # what "auto" resolves to ("cuda:0" or "cpu"), or the configured device
    card: SmiCard | None = None  # the configured card, as nvidia-smi lists it
    problems: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())  # facts worth saying that are not problems

    def message(self) -> str:
        """The reason and the way out, as one paragraph for the log or an error."""
        reasons = "; ".join(self.problems) or "torch cannot use it"
        ways = "; or ".join((*self.advice, _CPU_WAY_OUT))
        return f"an NVIDIA GPU is on this machine but torch cannot use it: {reasons}. To fix it: {ways}"


# -- parsing -----------------------------------------------------------------------------


def parse_smi_header(text: str) -> tuple[str | None, str | None]:
    """(driver version, newest CUDA version it supports) from plain ``nvidia-smi`` output."""
    driver = re.search(r"Driver Version:\s*([\d.]+)", text)
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", text)
    return (driver.group(1) if driver else None), (cuda.group(1) if cuda else None)


def parse_smi_query(text: str, fields: tuple[str, ...] = QUERY_FIELDS) -> list[SmiCard]:
    """The cards of ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits``."""
    cards = []
    for line in text.splitlines():
        values = [v.strip() for v in line.split(",")]
        if len(values) != len(fields) or not values[0].isdigit():
            continue
        row = dict(zip(fields, values))
        cards.append(SmiCard(
            index=int(row["index"]),
            uuid=row.get("uuid", ""),
            name=row.get("name", "?"),
            compute_capability=_capability(row.get("compute_cap", "")),
            memory_total_mib=_int(row.get("memory.total", "")),
            memory_free_mib=_int(row.get("memory.free", "")),
        ))
    return cards


def parse_proc_version(text: str) -> str | None:
    """The driver version from ``/proc/driver/nvidia/version`` ("... Kernel Module  580.159.04 ...")."""
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def _capability(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text or ""))


# -- the diagnosis -------------------------------------------------------------------------


def supports(arch_list: tuple[str, ...] | list[str], capability: tuple[int, int]) -> bool:
    """Whether a torch build with kernels ``arch_list`` runs on a card of ``capability``.

    A cubin for sm_XY runs on cards of the same major version and a minor of Y or
    more (sm_80 code runs on an 8.6 card); PTX for compute_XY is compiled by the
    driver for any card of XY or newer. "a"/"f" variants (sm_90a) run on their own
    version only.
    """
    major, minor = capability
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+?)(\d)([af]?)", arch.strip())
        if not match:
            continue
        kind, arch_major, arch_minor, variant = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
        if variant:
            fits = (arch_major, arch_minor) == (major, minor)
        elif kind == "sm":
            fits = arch_major == major and arch_minor <= minor
        else:
            fits = (arch_major, arch_minor) <= (major, minor)
        if fits:
            return True
    return False


def device_index(device: str) -> int | None:
    """The CUDA index ``device`` names (auto and cuda are 0); None for cpu and mps."""
    device = device.strip().lower()
    if device in ("auto", "cuda"):
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    return None


def physical_card(cards: tuple[SmiCard, ...], index: int, visible: str | None) -> SmiCard | None:
    """The nvidia-smi card behind torch's device ``index``: nvidia-smi counts every card,
    torch only those CUDA_VISIBLE_DEVICES (``visible``) lets it see, in that order."""
    if visible is None or not visible.strip():
        chosen: str | int = index
    else:
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if index >= len(entries):
            return None
        chosen = int(entries[index]) if entries[index].isdigit() else entries[index]
    for card in cards:
        if (isinstance(chosen, int) and card.index == chosen) or (
            isinstance(chosen, str) and card.uuid and card.uuid.startswith(chosen)
        ):
            return card
    return None


def diagnose(
    smi: SmiFacts,
    *,
    proc_present: bool,
    proc_driver: str | None = None,
    torch: TorchFacts | None,
    device: str = "auto",
    visible: str | None = None,
) -> Diagnosis:
    """Whether ``device`` (the ``[qwen] device`` setting) can run on this machine, and why not.

    ``smi``: what nvidia-smi said; ``proc_present``/``proc_driver``: whether
    /proc/driver/nvidia exists and the driver version it names; ``torch``: what the
    installed torch says (None: not installed); ``visible``: CUDA_VISIBLE_DEVICES.
    """
    not_loaded = bool(smi.error) and "communicate with the NVIDIA driver" in (smi.error or "")
    hardware = proc_present or bool(smi.cards) or not_loaded or bool(torch and torch.available)
    index = device_index(device)
    if device.strip().lower() == "cpu" or (index is None and device.strip().lower() != "auto"):
        return Diagnosis(hardware=hardware, usable=False, device=device)
    if not hardware:
        if device.strip().lower() == "auto":
            return Diagnosis(hardware=False, usable=False, device="cpu")
        return Diagnosis(hardware=False, usable=False, device=device,
                         problems=("no NVIDIA GPU on this machine (no /proc/driver/nvidia, no nvidia-smi)",),
                         advice=("install the NVIDIA driver",))
    assert index is not None
    cuda_device = f"cuda:{index}"
    driver = smi.driver or proc_driver
    card = physical_card(smi.cards, index, visible)
    problems: list[str] = []
    advice: list[str] = []
    notes: list[str] = []
    if not_loaded:
        problems.append(f"the NVIDIA driver is not loaded (nvidia-smi: {_first_line(smi.error)})")
        advice.append("reboot after a driver or kernel update, or reinstall the NVIDIA driver")
    if torch is None:
        problems.append("torch is not installed")
        advice.append("install voxd with its dependencies (pip install voxd brings torch)")
        return Diagnosis(hardware, False, cuda_device, card, tuple(problems), tuple(advice))
    if torch.cuda is None:
        problems.append(f"torch {torch.version} is a CPU-only build")
        advice.append(f"install a CUDA build of torch: pip install --force-reinstall torch=={_plain(torch.version)} "
                      f"torchaudio=={_plain(torch.version)} (PyPI's Linux wheels are CUDA builds)")
        return Diagnosis(hardware, False, cuda_device, card, tuple(problems), tuple(advice))
    torch_major = _version(torch.cuda)[:1]
    driver_cuda = smi.driver_cuda
    capability = card.compute_capability if card is not None else None
    if driver_cuda and torch_major and _version(driver_cuda)[:1] < torch_major:
        need = MIN_DRIVER.get(torch_major[0])
        problems.append(f"the NVIDIA driver {driver or '?'} supports CUDA up to {driver_cuda}, and torch "
                        f"{torch.version} was built for CUDA {torch.cuda}"
                        + (f", which needs driver {need} or newer" if need else ""))
        advice.append(f"update the NVIDIA driver to {need.split('.')[0] if need else 'a newer one'} or newer")
        build = torch_build_for(capability, driver_cuda)
        if build:
            advice.append(_install(torch.version, build, "runs on this driver"))
    elif driver_cuda and _version(driver_cuda)[:2] < _version(torch.cuda)[:2]:
        notes.append(f"driver {driver} supports CUDA {driver_cuda}, torch was built for {torch.cuda}: "
                     "it runs through CUDA's minor-version compatibility")
    if card is None and smi.cards:
        problems.append(f"qwen.device is {device!r}, but there is no such card "
                        f"(nvidia-smi lists {len(smi.cards)}" + (f", CUDA_VISIBLE_DEVICES={visible}" if visible else "")
                        + ")")
        advice.append("set [qwen] device to one of " + ", ".join(f"cuda:{i}" for i in range(len(smi.cards))))
    if card is not None and capability and torch.arch_list and not supports(torch.arch_list, capability):
        problems.append(f"the {card.name} has compute capability {card.capability}, and this torch build "
                        f"({torch.version}) has kernels for {_arch_span(torch.arch_list)} only")
        build = torch_build_for(capability, driver_cuda)
        if build:
            advice.append(_install(torch.version, build, f"has kernels for compute capability {card.capability}"))
        else:
            advice.append(f"no current torch build has kernels for compute capability {card.capability}")
    if not problems and not torch.available:
        said = f" ({_first_line(torch.said)})" if torch.said else ""
        problems.append(f"torch {torch.version} cannot initialise CUDA{said}")
        advice.append("check that voxd's user may open /dev/nvidia* (groups video and render), and that "
                      "CUDA_VISIBLE_DEVICES does not hide the card")
    if not problems and index >= torch.device_count:
        problems.append(f"qwen.device is {device!r}, but torch sees {torch.device_count} CUDA device(s)")
        advice.append("set [qwen] device to one torch sees (cuda:0 is the first)")
    usable = not problems
    return Diagnosis(hardware, usable, cuda_device, card, tuple(problems), tuple(advice), tuple(notes))


def torch_build_for(capability: tuple[int, int] | None, driver_cuda: str | None) -> str | None:
    """The newest CUDA build of torch (a key of :data:`TORCH_BUILDS`) that has kernels for a
    card of ``capability`` and runs on a driver for ``driver_cuda`` (same CUDA major
    version or older: minor-version compatibility covers the rest); None when none does."""
    fits = []
    for cuda, arches in TORCH_BUILDS.items():
        if capability is not None and not supports(arches, capability):
            continue
        if driver_cuda and _version(cuda)[:1] > _version(driver_cuda)[:1]:
            continue
        fits.append(cuda)
    if not fits:
        return None
    within = [c for c in fits if not driver_cuda or _version(c)[:2] <= _version(driver_cuda)[:2]]
    return max(within or [min(fits, key=_version)], key=_version)


def _install(version: str, cuda: str, why: str) -> str:
    plain = _plain(version)
    tag = cuda.replace(".", "")
    return (f"install torch's CUDA {cuda} build, which {why}: pip install --force-reinstall "
            f"torch=={plain} torchaudio=={plain} --index-url {TORCH_INDEX.format(tag=tag)}")


def _plain(version: str) -> str:
    return version.split("+", 1)[0]


def _arch_span(arch_list: tuple[str, ...]) -> str:
    sm = sorted((a for a in arch_list if a.startswith("sm_")), key=_version)
    if not sm:
        return ", ".join(arch_list)
    return f"{sm[0]} to {sm[-1]}" if len(sm) > 1 else sm[0]


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


# -- gathering the facts -----------------------------------------------------------------


def gather_smi(executable: str | None = None, timeout: float = 15.0) -> SmiFacts:
    """Ask nvidia-smi (found on PATH unless given) for the driver and the cards."""
    exe = executable or shutil.which("nvidia-smi")
    if exe is None:
        return SmiFacts()
    plain, error = _run([exe], timeout)
    if plain is None:
        return SmiFacts(found=True, error=error)
    driver, driver_cuda = parse_smi_header(plain)
    fields: tuple[str, ...] = QUERY_FIELDS
    query, _ = _run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"], timeout)
    if query is None:  # an nvidia-smi from before compute_cap could be asked for
        fields = tuple(f for f in QUERY_FIELDS if f != "compute_cap")
        query, _ = _run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"], timeout)
    cards = tuple(parse_smi_query(query or "", fields))
    return SmiFacts(found=True, cards=cards, driver=driver, driver_cuda=driver_cuda)


def _run(argv: list[str], timeout: float) -> tuple[str | None, str | None]:
    """(stdout, None) on success, (None, what it said) on failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, str(exc)
    if done.returncode != 0:
        return None, (done.stdout + "\n" + done.stderr).strip() or f"exit code {done.returncode}"
    return done.stdout, None


def gather_proc(root: Path = PROC_NVIDIA) -> tuple[bool, str | None]:
    """(whether the NVIDIA kernel module is loaded, the driver version it names)."""
    if not root.exists():
        return False, None
    try:
        return True, parse_proc_version((root / "version").read_text(errors="replace"))
    except OSError:
        return True, None


def gather_torch(torch: Any | None = None) -> TorchFacts | None:
    """What torch says, importing it unless given; None when it is not installed.

    ``get_arch_list()`` is empty while CUDA is unavailable, so the compiled-in arch
    flags are read directly where this torch has them."""
    if torch is None:
        try:
            import torch as imported
        except ImportError:
            return None
        torch = imported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            available = bool(torch.cuda.is_available())
            count = int(torch.cuda.device_count()) if available else 0
        except Exception as exc:  # a broken driver can raise here
            available, count = False, 0
            warnings.warn(str(exc), RuntimeWarning, stacklevel=1)
    flags = ""
    try:
        flags = str(torch._C._cuda_getArchFlags() or "")
    except Exception:
        try:
            flags = " ".join(torch.cuda.get_arch_list())
        except Exception:
            flags = ""
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    return TorchFacts(
        version=str(torch.__version__), cuda=str(cuda) if cuda else None, available=available,
        arch_list=tuple(flags.split()), device_count=count,
        said=" ".join(str(w.message).strip() for w in caught),
    )


def torch_facts_unimported() -> TorchFacts | None:
    """torch's version and CUDA build as its own ``torch/version.py`` states them, and the
    kernels PyTorch ships for that CUDA version (:data:`TORCH_BUILDS`), without importing
    torch (seconds and hundreds of megabytes: not for start-up). Whether CUDA initialises is
    not known this way: it is taken to, and ``available`` says so (the render checks for real).
    None when torch is not installed. (The same where torch is loaded already: one answer
    for a machine, whichever process asks.)"""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(errors="replace")
    except OSError:
        return None
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    cuda_version = cuda.group(1) if cuda else None
    arches = TORCH_BUILDS.get(".".join(cuda_version.split(".")[:2]), ()) if cuda_version else ()
    # device_count: not known either; the cards nvidia-smi lists decide which exist
    return TorchFacts(version=version.group(1) if version else "?", cuda=cuda_version, available=True,
                      arch_list=arches, device_count=64)


def check(device: str, torch: Any | None = None) -> Diagnosis:
    """Gather the facts of this machine and diagnose ``device``."""
    smi = gather_smi()
    proc_present, proc_driver = gather_proc()
    hardware_hint = proc_present or smi.found
    facts = gather_torch(torch) if (hardware_hint or torch is not None) else None
    return diagnose(smi, proc_present=proc_present, proc_driver=proc_driver, torch=facts, device=device,
                    visible=os.environ.get("CUDA_VISIBLE_DEVICES"))


def resolve_device(torch: Any, device: str) -> str:
    """The torch device for the ``[qwen] device`` setting, refusing a silent CPU fall-back.

    "auto" is cuda:0 when torch can use it, the CPU when there is no NVIDIA hardware,
    and :class:`GpuUnusable` when there is hardware torch cannot use. "cuda[:N]"
    that torch cannot use is :class:`GpuUnusable` too, with the reason; "cpu" and
    "mps" are taken as they are.
    """
    wanted = device.strip().lower()
    if wanted in ("cpu", "mps"):
        return wanted
    if device_index(wanted) is None:
        raise ConfigError(f"qwen.device must be auto, cpu, cuda or cuda:N, not {device!r}")
    found = check(wanted, torch)
    if found.usable:
        return found.device
    if wanted == "auto" and not found.hardware:
        return "cpu"
    if not found.hardware:
        raise GpuUnusable(f"qwen.device is {device!r} but this machine has no NVIDIA GPU; "
                          'set [qwen] device = "auto" or "cpu"')
    raise GpuUnusable(f'qwen.device is "{device}": ' + found.message())


def report(device: str, torch: Any | None = None) -> list[tuple[str, str, bool | None]]:
    """``voxd doctor``'s lines about CUDA: (label, text, ok), ok None for a plain fact."""
    smi = gather_smi()
    proc_present, proc_driver = gather_proc()
    facts = gather_torch(torch)
    found = diagnose(smi, proc_present=proc_present, proc_driver=proc_driver, torch=facts, device=device,
                     visible=os.environ.get("CUDA_VISIBLE_DEVICES"))
    return report_lines(found, smi, facts, proc_driver=proc_driver, device=device)


def report_lines(found: Diagnosis, smi: SmiFacts, facts: TorchFacts | None, *, proc_driver: str | None,
                 device: str) -> list[tuple[str, str, bool | None]]:
    """The doctor's lines for a diagnosis (pure, so tests can read them for any case)."""
    lines: list[tuple[str, str, bool | None]] = []
    cpu_chosen = device.strip().lower() == "cpu"
    if facts is None:
        lines.append(("torch", 'not installed (needed for engine = "qwen")', False))
    else:
        built = f"built for CUDA {facts.cuda}" if facts.cuda else "a CPU-only build"
        kernels = f", kernels for {_arch_span(facts.arch_list)}" if facts.arch_list else ""
        lines.append(("torch", f"{facts.version}, {built}{kernels}", None))
    driver = smi.driver or proc_driver
    if driver:
        lines.append(("driver", f"NVIDIA {driver}" + (f", supports CUDA up to {smi.driver_cuda}" if smi.driver_cuda
                                                       else ""), None))
    elif smi.error:
        lines.append(("driver", f"nvidia-smi failed: {_first_line(smi.error)}", cpu_chosen))
    elif not found.hardware:
        lines.append(("gpu", "no NVIDIA GPU on this machine: Qwen3-TTS runs on the CPU, very slowly", None))
    for card in smi.cards:
        if facts is not None and facts.arch_list and card.compute_capability:
            ok = supports(facts.arch_list, card.compute_capability)
            verdict = "supported by this torch build" if ok else "NOT supported by this torch build"
        else:
            ok, verdict = None, "support unknown"
        lines.append((f"gpu {card.index}", f"{card.name}, compute capability {card.capability}: {verdict}",
                      ok if (ok is False and not cpu_chosen) else (None if ok is None else True)))
    if found.hardware and not cpu_chosen:
        if found.usable:
            lines.append(("device", f"{device} -> {found.device}: torch can use it", True))
        else:
            lines.append(("device", f"{device}: " + found.message(), False))
    elif cpu_chosen:
        lines.append(("device", 'cpu (set in [qwen] device): Qwen3-TTS runs on the CPU, on purpose', None))
    for note in found.notes:
        lines.append(("note", note, None))
    return lines


def log_startup(device: str, log: Any) -> Diagnosis | None:
    """Say once, at start-up, what Qwen3-TTS will run on, and why not the GPU if it cannot.

    Run in a thread of its own: it imports torch, which start-up must not wait for."""
    try:
        found = check(device)
    except Exception as exc:  # a look at the GPU is never a reason to stop
        log.warning("could not check the GPU: %s: %s", type(exc).__name__, exc)
        return None
    wanted = device.strip().lower()
    if wanted == "cpu":
        log.info('Qwen3-TTS runs on the CPU ([qwen] device = "cpu"%s)',
                 ", although an NVIDIA GPU is here" if found.hardware else "")
    elif found.usable:
        card = found.card
        facts = gather_torch()
        what = f"{card.name}, compute capability {card.capability}" if card else found.device
        log.info("Qwen3-TTS runs on %s (%s), torch %s built for CUDA %s", found.device, what,
                 facts.version if facts else "?", facts.cuda if facts else "?")
    elif found.hardware:
        log.error("%s. Until then books wait in the queue.", found.message())
    else:
        log.warning("no NVIDIA GPU on this machine: Qwen3-TTS runs on the CPU, many times slower than on a GPU")
    return found
