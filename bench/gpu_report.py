"""One JSON for one GPU run: bench/gpu-suite.sh's result files, gathered and summarised.

    python3 bench/gpu_report.py OUTDIR [MORE_DIRS...] --out bench/results/gpu-DATE-CARD.json
    python3 bench/gpu_report.py --smoke --out /tmp/gpu-report.json   # a committed run, summarised again

OUTDIR holds what the suite wrote (batching*.json, decode-loop-*.json, pipeline.json,
decode-probe.json); every file found is kept whole under ``runs``, and the summary
a reader looks for first sits at the top: ``device`` (the CUDA device name),
``batching`` (``{loop, length_scale, batch_size, x_real_time, padding_waste,
peak_vram_gb, phase_seconds}`` per size and length: the suite's real lengths and
its short ones are two rows; ``phase_seconds`` splits the wall time into graph
capture, prefill, frames, codec decode and gaps, bench/report.py's
``phase_split``), ``pipeline_ratio`` (the whole ``voxd render`` over the engine alone),
``forced_oom`` (how a first batch too large to fit was recovered) and
``decode_loop_identical`` (voxd's loop against qwen_tts's, code for code).
Where files from more than one card are given, each row names its card.

``--smoke`` needs no GPU and no suite run: it lays out the result files kept
under ``runs`` in a committed report (``bench/results/gpu-2026-11-26-h100.json``:
three folders, two cards) as the suite wrote them, summarises them again, and
fails unless the summary is the committed one. Folders given with it are
summarised as usual (e.g. the suite's scripts' own ``--smoke`` outputs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from report import machine, phase_line, phase_split, write  # bench/report.py

SMOKE_FIXTURE = Path(__file__).resolve().parent / "results" / "gpu-2026-11-26-h100.json"
_MACHINE_KEYS = ("created", "python", "platform", "cpus")


def gather(dirs: list[Path]) -> dict:
    runs: dict[str, dict] = {}
    for folder in dirs:
        for path in sorted(folder.glob("*.json")):
            runs[f"{folder.name}/{path.name}" if len(dirs) > 1 else path.name] = json.loads(path.read_text())
    summary: dict = {"device": None, "batching": [], "pipeline_ratio": None, "forced_oom": None,
                     "decode_loop_identical": {}, "memory_model": {}, "decode_probe": None}
    devices = []
    for run in runs.values():
        device = run.get("device")
        if device and device not in devices and not str(device).startswith("cpu"):
            devices.append(device)
        for row in run.get("results", []):
            if "x_real_time" in row and "batch_size" in row:
                summary["batching"].append({
                    "device": device, "loop": row.get("loop"), "length_scale": run.get("length_scale"),
                    "batch_size": row["batch_size"],
                    "x_real_time": row["x_real_time"], "padding_waste": row.get("padding_waste"),
                    "peak_vram_gb": round(row.get("peak_memory_mib", 0.0) / 1024, 2),
                    "ms_per_frame": [b["ms_per_frame"] for b in row.get("phases", []) if "ms_per_frame" in b],
                    "phase_seconds": phase_split(row),
                })
        if "best" in run and "ratio" in run["best"]:
            summary["pipeline_ratio"] = run["best"]["ratio"]
        if run.get("forced_oom"):
            summary["forced_oom"] = {"device": device, **run["forced_oom"]}
        for loop, model in run.get("memory_model", {}).items():
            summary["memory_model"][f"{loop} on {device}"] = model
        if run.get("decode_probe"):
            summary["decode_probe"] = {"device": device, "rows": run["decode_probe"]}
        if isinstance(run.get("variants"), dict):
            summary["decode_loop_identical"][f"{run.get('dtype')} on {device}"] = {
                variant: f"{'identical' if v['identical'] else 'differs'}, {v['frames_matching']} frames"
                for variant, v in run["variants"].items() if "identical" in v
            }
    summary["device"] = devices[0] if len(devices) == 1 else devices
    return {**machine(), **summary, "runs": runs}


def lay_out(committed: dict, root: Path) -> list[Path]:
    """Write a report's ``runs`` back into the folders they were gathered from; return those folders."""
    dirs: list[Path] = []
    for name, run in committed["runs"].items():
        folder, _, file = name.rpartition("/")
        path = root / (folder or "suite") / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run), encoding="utf-8")
        if path.parent not in dirs:
            dirs.append(path.parent)
    return dirs


def smoke(fixture: Path = SMOKE_FIXTURE) -> dict:
    """Summarise a committed report's runs again; the summary must be the committed one."""
    committed = json.loads(fixture.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="voxd-gpu-report-") as tmp:
        report = gather(lay_out(committed, Path(tmp)))
    differs = sorted(k for k in set(report) | set(committed)
                     if k not in _MACHINE_KEYS and report.get(k) != committed.get(k))
    report["smoke"] = {"fixture": fixture.name, "runs": len(committed["runs"]), "differs": differs}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", type=Path, nargs="*", help="folders bench/gpu-suite.sh wrote")
    parser.add_argument("--smoke", action="store_true",
                        help="without folders: summarise a committed report's runs again and compare")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.dirs:
        report = gather(args.dirs)
    elif args.smoke:
        report = smoke()
    else:
        parser.error("name the folders bench/gpu-suite.sh wrote (or --smoke)")
    write(args.out, report)
    for row in report["batching"]:
        print(f"{row['device']}  {row['loop']:>8} x{row['length_scale']} {row['batch_size']:>5} "
              f"{row['x_real_time']:>8.2f}x {row['peak_vram_gb']:>7.2f} GB  {phase_line(row['phase_seconds'])}")
    print(f"pipeline ratio: {report['pipeline_ratio']}")
    if report.get("smoke", {}).get("differs"):
        print(f"--smoke: the summary of {SMOKE_FIXTURE.name}'s runs is not the committed one: "
              f"{', '.join(report['smoke']['differs'])} differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
