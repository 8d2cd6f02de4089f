"""Whether torch can use an NVIDIA GPU: the diagnosis over real-looking nvidia-smi outputs and
torch facts (tests/nvidia: an H200 captured for real, the other machines written in the same
formats), nvidia-smi itself run as a program, and the refusal of a silent CPU fall-back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import NVIDIA, fake_nvidia_smi
from voxd.errors import GpuUnusable, Unavailable
from voxd.tts import cuda_check
from voxd.tts.cuda_check import (
    SmiFacts,
    TorchFacts,
    diagnose,
    gather_proc,
    gather_smi,
    parse_proc_version,
    parse_smi_header,
    parse_smi_query,
    physical_card,
    report_lines,
    resolve_device,
    supports,
    torch_build_for,
)

CU130 = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
TOO_OLD = ("CUDA initialization: The NVIDIA driver on your system is too old (found version 12020). Please update "
           "your GPU driver by downloading and installing a new version from the URL: "
           "http://www.nvidia.com/Download/index.aspx Alternatively, go to: https://pytorch.org to install a PyTorch "
           "version that has been compiled with your version of the CUDA driver.")


def smi(machine: str, *, nocap: bool = False) -> SmiFacts:
    driver, cuda = parse_smi_header((NVIDIA / f"{machine}-smi.txt").read_text())
    if nocap:
        fields = tuple(f for f in cuda_check.QUERY_FIELDS if f != "compute_cap")
        cards = parse_smi_query((NVIDIA / f"{machine}-query-nocap.csv").read_text(), fields)
    else:
        cards = parse_smi_query((NVIDIA / f"{machine}-query.csv").read_text())
    return SmiFacts(found=True, cards=tuple(cards), driver=driver, driver_cuda=cuda)


def h200_torch() -> TorchFacts:
    said = json.loads((NVIDIA / "h200-torch.json").read_text())
    return TorchFacts(version=said["version"], cuda=said["cuda"], available=said["available"],
                      arch_list=tuple(said["flags"].split()), device_count=said["count"])


def cu130(available: bool, count: int = 0, said: str = "") -> TorchFacts:
    return TorchFacts(version="2.11.0+cu130", cuda="13.0", available=available, arch_list=CU130,
                      device_count=count, said=said)


# -- parsing what the real tools print ----------------------------------------------------


def test_parses_a_real_h200s_nvidia_smi_and_proc_version():
    assert parse_smi_header((NVIDIA / "h200-smi.txt").read_text()) == ("580.159.04", "13.0")
    [card] = parse_smi_query((NVIDIA / "h200-query.csv").read_text())
    assert (card.index, card.name, card.compute_capability) == (0, "NVIDIA H200", (9, 0))
    assert card.uuid.startswith("GPU-6379d5aa") and card.memory_total_mib == 143771
    assert parse_proc_version((NVIDIA / "h200-proc-version.txt").read_text()) == "580.159.04"
    assert parse_proc_version((NVIDIA / "rtx3090-535-proc-version.txt").read_text()) == "535.183.01"
    assert parse_smi_header((NVIDIA / "gtx1080-470-smi.txt").read_text()) == ("470.256.02", "11.4")


def test_supports_follows_cubin_and_ptx_compatibility():
    assert supports(CU130, (9, 0)) and supports(CU130, (8, 9)) and supports(CU130, (12, 1))
    assert not supports(CU130, (6, 1)) and not supports(CU130, (7, 0))
    assert supports(("sm_80",), (8, 6)) and not supports(("sm_86",), (8, 0))
    assert supports(("compute_70",), (8, 0))  # PTX is compiled by the driver for newer cards
    assert not supports(("sm_90a",), (10, 0)) and supports(("sm_90a",), (9, 0))


def test_the_torch_build_a_card_or_driver_needs():
    assert torch_build_for((6, 1), "13.0") == "12.6"  # Pascal: only the CUDA 12.6 build still has it
    assert torch_build_for((7, 0), "13.0") == "12.8"  # Volta: the 12.x builds
    assert torch_build_for((8, 6), "12.2") == "12.6"  # a 535 driver: a 12.x build, the oldest
    assert torch_build_for((8, 6), "12.8") == "12.8"
    assert torch_build_for((3, 5), "13.0") is None  # Kepler: no current build


def test_cuda_visible_devices_maps_torchs_index_to_nvidia_smis_card():
    cards = smi("two-cards").cards
    assert physical_card(cards, 1, None).name == "NVIDIA RTX A6000"
    assert physical_card(cards, 0, "1").name == "NVIDIA RTX A6000"
    assert physical_card(cards, 0, "GPU-b2e41f07").name == "NVIDIA GeForce RTX 4090"
    assert physical_card(cards, 1, "1") is None


# -- the diagnosis, case by case -------------------------------------------------------------


def test_h200_with_its_torch_is_usable():
    found = diagnose(smi("h200"), proc_present=True, torch=h200_torch(), device="auto")
    assert found.hardware and found.usable and found.device == "cuda:0" and not found.problems
    assert found.card is not None and found.card.name == "NVIDIA H200"


def test_a_driver_older_than_torchs_cuda_build_is_named_with_what_to_install():
    found = diagnose(smi("rtx3090-535"), proc_present=True, torch=cu130(False, said=TOO_OLD), device="auto")
    assert found.hardware and not found.usable
    text = found.message()
    assert "535.183.01 supports CUDA up to 12.2" in text and "built for CUDA 13.0" in text
    assert "580 or newer" in text
    assert "--index-url https://download.pytorch.org/whl/cu126" in text and "torch==2.11.0 " in text
    assert 'device = "cpu"' in text


def test_an_old_card_this_torch_build_has_no_kernels_for():
    for machine, capability, build in (("gtx1080ti-580", "6.1", "cu126"), ("v100-580", "7.0", "cu128")):
        found = diagnose(smi(machine), proc_present=True, torch=cu130(True, 1), device="auto")
        assert not found.usable, machine
        text = found.message()
        assert f"compute capability {capability}" in text and "sm_75 to sm_120" in text
        assert f"https://download.pytorch.org/whl/{build}" in text


def test_a_470_driver_whose_nvidia_smi_cannot_say_the_compute_capability():
    facts = smi("gtx1080-470", nocap=True)
    assert facts.cards[0].compute_capability is None and facts.cards[0].name == "NVIDIA GeForce GTX 1080"
    found = diagnose(facts, proc_present=True, torch=cu130(False), device="auto")
    assert not found.usable
    text = found.message()
    assert "supports CUDA up to 11.4" in text and "580 or newer" in text
    assert "index-url" not in text  # no torch build of today runs on a CUDA 11 driver


def test_a_cpu_only_torch_build_on_a_gpu_machine():
    cpu_torch = TorchFacts(version="2.11.0+cpu", cuda=None, available=False, arch_list=())
    found = diagnose(smi("h200"), proc_present=True, torch=cpu_torch, device="auto")
    assert not found.usable and "CPU-only build" in found.message()
    assert "torch==2.11.0 torchaudio==2.11.0" in found.message()


def test_a_driver_installed_but_not_loaded_counts_as_hardware():
    facts = SmiFacts(found=True, error=(NVIDIA / "not-loaded.txt").read_text())
    found = diagnose(facts, proc_present=False, torch=cu130(False), device="auto")
    assert found.hardware and not found.usable
    assert "not loaded" in found.message() and "couldn't communicate" in found.message()


def test_no_nvidia_hardware_means_the_cpu_for_auto():
    found = diagnose(SmiFacts(), proc_present=False, torch=cu130(False), device="auto")
    assert not found.hardware and found.device == "cpu" and not found.problems


def test_torch_that_sees_a_gpu_is_hardware_even_without_nvidia_smi_or_proc():
    found = diagnose(SmiFacts(), proc_present=False, torch=cu130(True, 1), device="auto")
    assert found.hardware and found.usable and found.device == "cuda:0"


def test_the_configured_card_is_the_one_checked():
    facts = smi("two-cards")
    found = diagnose(facts, proc_present=True, torch=cu130(True, 2), device="cuda:1")
    assert found.usable and found.card is not None and found.card.name == "NVIDIA RTX A6000"
    missing = diagnose(facts, proc_present=True, torch=cu130(True, 2), device="cuda:2")
    assert not missing.usable and "no such card" in missing.message() and "cuda:0, cuda:1" in missing.message()


def test_device_cpu_is_never_a_problem():
    found = diagnose(smi("rtx3090-535"), proc_present=True, torch=cu130(False), device="cpu")
    assert found.hardware and not found.problems


def test_doctor_lines_say_the_versions_the_capability_and_the_verdict():
    found = diagnose(smi("gtx1080ti-580"), proc_present=True, torch=cu130(True, 1), device="auto")
    lines = {label: (text, ok) for label, text, ok in
             report_lines(found, smi("gtx1080ti-580"), cu130(True, 1), proc_driver=None, device="auto")}
    assert lines["torch"][0].startswith("2.11.0+cu130, built for CUDA 13.0, kernels for sm_75 to sm_120")
    assert lines["driver"][0] == "NVIDIA 580.95.05, supports CUDA up to 13.0"
    assert lines["gpu 0"] == ("NVIDIA GeForce GTX 1080 Ti, compute capability 6.1: NOT supported by this torch build",
                              False)
    assert lines["device"][1] is False
    ok = diagnose(smi("h200"), proc_present=True, torch=h200_torch(), device="auto")
    lines = {label: (text, ok) for label, text, ok in
             report_lines(ok, smi("h200"), h200_torch(), proc_driver=None, device="auto")}
    assert lines["gpu 0"] == ("NVIDIA H200, compute capability 9.0: supported by this torch build", True)
    assert lines["device"] == ("auto -> cuda:0: torch can use it", True)


# -- nvidia-smi run as a program, /proc read from disk ------------------------------------------


def test_gather_runs_nvidia_smi_and_falls_back_for_an_old_one(tmp_path):
    exe = fake_nvidia_smi(tmp_path / "new", "two-cards")
    facts = gather_smi(str(exe))
    assert facts.driver == "580.95.05" and facts.driver_cuda == "13.0"
    assert [c.compute_capability for c in facts.cards] == [(8, 9), (8, 6)]
    old = gather_smi(str(fake_nvidia_smi(tmp_path / "old", "gtx1080-470", no_compute_cap=True)))
    assert old.driver_cuda == "11.4" and [c.name for c in old.cards] == ["NVIDIA GeForce GTX 1080"]
    assert old.cards[0].compute_capability is None and old.cards[0].memory_free_mib == 7815
    broken = gather_smi(str(fake_nvidia_smi(tmp_path / "broken", None, fails_with="not-loaded.txt")))
    assert broken.found and not broken.cards and "couldn't communicate" in (broken.error or "")


def test_gather_proc_reads_the_version_file(tmp_path):
    assert gather_proc(tmp_path / "absent") == (False, None)
    (tmp_path / "nvidia").mkdir()
    (tmp_path / "nvidia" / "version").write_text((NVIDIA / "h200-proc-version.txt").read_text())
    assert gather_proc(tmp_path / "nvidia") == (True, "580.159.04")


def _with_smi(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_auto_refuses_the_cpu_when_a_gpu_is_there_but_torch_cannot_use_it(tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine's torch can use its GPU: nothing to refuse")
    fake_nvidia_smi(tmp_path, "rtx3090-535")
    _with_smi(monkeypatch, tmp_path)
    with pytest.raises(GpuUnusable) as caught:
        resolve_device(torch, "auto")
    assert isinstance(caught.value, Unavailable)  # the job waits; nothing is wrong with the book
    text = str(caught.value)
    assert "535.183.01 supports CUDA up to 12.2" in text and 'device = "cpu"' in text
    assert resolve_device(torch, "cpu") == "cpu"  # said on purpose: allowed


def test_auto_is_the_cpu_on_a_machine_without_nvidia_hardware(tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available() or gather_proc()[0]:
        pytest.skip("this machine has NVIDIA hardware")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no nvidia-smi anywhere
    assert resolve_device(torch, "auto") == "cpu"
    with pytest.raises(GpuUnusable, match="no NVIDIA GPU"):
        resolve_device(torch, "cuda:0")
