"""Every benchmark in bench/ in its ``--smoke`` mode: it runs end to end and writes sane numbers.

Each script runs as a person runs it (``python bench/NAME.py --smoke --out X.json`` from the
repository root, in a subprocess), then its JSON is read back and held to what the smoke
input implies: the counts of the book it was given, positive times, the same audio for
the same chunks. The GPU scripts' smoke modes run on the CPU with the tiny random-weight
checkpoint (tests/tiny_qwen.py); bench/gpu-suite.sh is checked by its ``--dry-run``, which
parses every python command line it would run. A smoke run must never write to the
committed bench/results/.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
HELPERS = {"report", "rss"}  # modules the scripts import, not benchmarks
SUITE_NAMES = {"batching": "batching.json", "decode_loop": "decode-loop-float32.json",
               "pipeline-full-size": "pipeline.json"}  # as bench/gpu-suite.sh names its results


def _bench_report():
    spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SMOKE_CHAPTERS: list[tuple[str, list[str]]] = _bench_report().SMOKE_CHAPTERS
SMOKE_PARAGRAPHS = sum(len(paragraphs) for _, paragraphs in SMOKE_CHAPTERS)
SMOKE_CHARACTERS = sum(len(p) for _, paragraphs in SMOKE_CHAPTERS for p in paragraphs)
# Every paragraph of the smoke book is one short sentence, and the titles are spoken: a chunk each.
SMOKE_CHUNKS = len(SMOKE_CHAPTERS) + SMOKE_PARAGRAPHS


def run_bench(args: list[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the repository root, no voxd settings from the environment, one torch thread."""
    config = tmp_path / "voxd.toml"
    config.write_text("")  # nothing from ~/.config/voxd or /etc/voxd
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    env.update(VOXD_CONFIG=str(config), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def smoke(name: str, tmp_path: Path, *extra: str, timeout: float = 180) -> dict:
    """Run bench/NAME.py --smoke --out X.json and return the JSON it wrote."""
    out = tmp_path / "x.json"
    run_bench([f"bench/{name}.py", "--smoke", *extra, "--out", str(out)], tmp_path, timeout)
    assert out.is_file(), f"bench/{name}.py --smoke wrote no {out}"
    return json.loads(out.read_text(encoding="utf-8"))


def positive(*values: object) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values)


# -- the checks, one per script --------------------------------------------------------------


def check_assemble(doc: dict, tmp_path: Path) -> None:
    [row] = doc["results"]
    assert doc["smoke"] and row["hours"] == 0.015 and row["chapters"] == doc["chapters"] == 3
    # 54 s of audio asked, in whole chunks of 4-20 s, with pauses: at least that, not much more
    assert 54 <= row["audio_seconds"] <= 54 + 3 * 22, row
    assert row["chunks"] >= 3
    assert positive(row["wall_seconds"], row["x_real_time"], row["m4b_mb"], row["setup_seconds"])
    assert row["x_real_time"] == pytest.approx(row["audio_seconds"] / row["wall_seconds"], rel=0.05)


def check_batching(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["device"].startswith("cpu") and doc["lengths"] == "text"
    assert doc["length_scale"] == 0.1 and doc["length_spread"] == 0.2 and doc["chunks"] == 4
    rows = doc["results"]
    assert [(r["loop"], r["batch_size"]) for r in rows] == [("voxd", 1), ("voxd", 2), ("qwen_tts", 1), ("qwen_tts", 2)]
    assert "errors" not in doc
    for r in rows:
        assert r["chunks"] == 4 and r["batches"] == 4 // r["batch_size"], r
        assert positive(r["wall_seconds"], r["audio_seconds"], r["x_real_time"]), r
        assert len(r["phases"]) >= r["batches"] and all(b["decode_seconds"] >= 0 for b in r["phases"]), r
        assert 0.0 <= r["padding_waste"] < 1.0 and r["out_of_memory"] == 0
        split = r["phase_seconds"]  # the wall time by phase, summed over the batches
        assert split["decode"] == pytest.approx(sum(b["decode_seconds"] for b in r["phases"]), abs=0.01)
        if r["loop"] == "voxd":  # its loop times each phase of generation
            assert split["frames"] > 0 and split["prefill"] > 0 and split["capture"] == 0.0  # no graphs on a CPU
            assert split["gaps"] >= 0 and 0 < split["frames_share"] < 1
            parts = sum(split[k] for k in ("capture", "prefill", "frames", "decode", "gaps"))
            assert parts == pytest.approx(r["wall_seconds"], abs=0.01)
        else:
            assert split["frames"] is None and split["gaps"] is None
            assert split["generation_and_gaps"] + split["decode"] == pytest.approx(r["wall_seconds"], abs=0.01)
    assert all(r["padding_waste"] == 0.0 for r in rows if r["batch_size"] == 1)
    # the same chunks, each held to the frames its text predicts: the same audio at every size, in both loops
    assert max(r["audio_seconds"] for r in rows) - min(r["audio_seconds"] for r in rows) < 0.1
    meta = doc["full_size_meta"]  # the real 1.7B dimensions, built on the meta device
    assert meta["talker_params"] > 1.5e9 and meta["codec_decoder_params"] > 1e8
    assert doc["memory_table"] and all(r["1.7B"] >= 1 and r["0.6B"] >= r["1.7B"] for r in doc["memory_table"])


def check_cache(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["book"] == "smoke.epub" and doc["repeat"] == 1
    rows = {(r["kind"], r["format"]): r for r in doc["formats"]}
    assert set(rows) == {(k, f) for k in ("espeak", "synthetic") for f in ("float32", "flac16")}
    assert rows["espeak", "float32"]["chunks"] == rows["espeak", "flac16"]["chunks"] == SMOKE_CHUNKS
    for (kind, fmt), r in rows.items():
        assert positive(r["audio_seconds"], r["bytes"], r["gb_per_hour"], r["put_seconds_per_hour"],
                        r["get_seconds_per_hour"], r["lookup_seconds_per_hour"]), r
        if fmt == "float32":
            assert r["max_error"] == 0.0
        else:  # 16-bit FLAC: half a step of 16 bits at most, and far smaller than float32
            assert r["max_error"] <= 2**-15 and r["snr_db"] > 60
            assert r["bytes"] < rows[kind, "float32"]["bytes"] / 2
    assert rows["synthetic", "float32"]["audio_seconds"] >= 15  # --smoke: 0.25 minutes of each kind
    assert [r["format"] for r in doc["espeak_end_to_end"]] == ["float32", "flac16"]
    for r in doc["espeak_end_to_end"]:
        assert positive(r["audio_seconds"], r["render_seconds_per_hour"], r["resume_seconds_per_hour"],
                        r["assemble_seconds_per_hour"]), r
        assert r["audio_seconds"] == pytest.approx(rows["espeak", "float32"]["audio_seconds"], abs=0.2)


def check_cancel(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["hours_asked"] == 0.1 and doc["into_seconds"] == 0
    assert doc["chunks"] > 0 and 0.05 <= doc["audio_hours_rendered"] <= 0.2
    assert positive(doc["render_seconds"], doc["cancel_to_next_job_seconds"], doc["sigterm_to_exit_seconds"],
                    doc["espeak_chars_per_second"])
    assert doc["cancel_to_next_job_seconds"] < 60 and doc["sigterm_to_exit_seconds"] < 60
    assert doc["sigterm_exit_code"] == 0 and doc["long_job_after_sigterm"] == "queued"
    only_the_next_book = {"audiobooks": ["voxd bench/The Next Book/The Next Book.m4b"], "temp_files": [],
                          "empty_folders": []}
    assert doc["after_cancel"] == only_the_next_book
    assert doc["after_sigterm"] == only_the_next_book


def check_decode_loop(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["device"] == "cpu" and doc["dtype"] == "float32" and doc["texts"] == 2
    variants = doc["variants"]
    assert set(variants) == {"qwen_tts", "voxd (exact shapes)", "voxd (static shapes)"}
    reference = variants["qwen_tts"]["frames"]
    assert len(reference) == 2 and all(f > 0 for f in reference)
    for name, v in variants.items():
        assert positive(v["seconds"]), name
        if name != "qwen_tts":  # on the CPU voxd's loop speaks qwen_tts's codes exactly
            assert v["identical"] and v["frames"] == reference, (name, v)
            assert v["frames_matching"] == f"{sum(reference)}/{sum(reference)}"
    refill = doc["refill"]  # half the rows, refilled: the same takes with fewer padded frames
    lockstep, refilled = refill["lockstep"], refill["refill"]
    assert refill["identical"] and refill["items"] == 8
    assert lockstep["rows"] == 8 and refilled["rows"] == 4 and refilled["refills"] == 4
    assert lockstep["item_frames"] == refilled["item_frames"] > 0
    assert refilled["padded_frames"] < lockstep["padded_frames"]
    at_lengths = doc["refill_at_lengths"]  # each item held to a length of its own
    assert at_lengths["identical"] and at_lengths["refill"]["item_frames"] == sum(at_lengths["lengths"])
    assert at_lengths["refill"]["padded_frames"] < at_lengths["lockstep"]["padded_frames"]


def check_extract(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["repeat"] == 1
    rows = doc["results"]
    assert [r["file"] for r in rows] == ["smoke.epub", "smoke.pdf", "smoke.json"]
    for r in rows:
        assert r["ok"], r
        assert r["title"] == "A Smoke Test" and r["chapters"] == len(SMOKE_CHAPTERS), r
        assert r["paragraphs"] == SMOKE_PARAGRAPHS and r["characters"] == SMOKE_CHARACTERS, r
        assert positive(r["seconds"], r["rss_peak_mib"], r["bytes"]) and r["py_peak_mib"] >= 0, r


def check_gil(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["audio_seconds"] == 5.0 and doc["repeat"] == 1
    assert positive(doc["encoder_alone_x_real_time"], doc["loop_rounds_per_second_alone"],
                    doc["encoder_thread_x_real_time"], doc["encoder_process_x_real_time"])
    for case in ("thread", "process"):
        assert 0 < doc[f"loop_speed_beside_encoder_{case}"] < 3, doc


def check_pipeline(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["engine"] == "espeak" and doc["title"] == "A Smoke Test"
    assert doc["engine_speed"] == 20 and doc["engine_waits_launching"]
    _check_pipeline_run(doc)


def check_pipeline_full_size(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["full_size"] and doc["engine"] == "qwen"
    assert doc["lengths"] == "text" and doc["length_scale"] == 0.1 and "Qwen3-TTS-tiny" in doc["model_id"]
    _check_pipeline_run(doc)


def _check_pipeline_run(doc: dict) -> None:
    assert doc["chapters"] == len(SMOKE_CHAPTERS) and doc["chunks"] == SMOKE_CHUNKS
    assert doc["batch_size"] >= 1 and len(doc["runs"]) == 1
    best = doc["best"]
    assert positive(best["pipeline_seconds"], best["engine_alone_seconds"], best["ratio"], best["audio_seconds"],
                    best["m4b_bytes"], best["engine_seconds_in_pipeline"], best["engine_seconds_alone"])
    assert best["ratio"] == pytest.approx(best["pipeline_seconds"] / best["engine_alone_seconds"], rel=0.05)
    phases = best["phases_seconds"]
    assert set(phases) == {"read_speech", "render", "finish"}
    # each phase was timed inside convert(): a name it no longer calls would stay at zero
    assert positive(phases["read_speech"], phases["render"], phases["finish"]), phases
    assert sum(phases.values()) <= best["pipeline_seconds"] + 0.01


def check_remote(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["server_speed"] == 50
    assert [r["servers"] for r in doc["runs"]] == [1, 2]
    for r in doc["runs"]:
        assert r["chunks"] == 24 and len(r["windows_at_end"]) == r["servers"], r
        assert positive(r["audio_seconds"], r["wall_seconds"], r["x_real_time"], r["ratio_to_linear"]), r
        assert r["audio_seconds"] == doc["runs"][0]["audio_seconds"]  # the same chunks through each fleet
    assert doc["runs"][0]["ratio_to_linear"] == 1.0
    pipeline = doc["pipeline"]
    assert pipeline["chunks"] == SMOKE_CHUNKS and Path(pipeline["book"]).name == "smoke.epub"
    assert positive(pipeline["audio_seconds"], pipeline["render_alone_seconds"], pipeline["pipeline_seconds"],
                    pipeline["ratio"])


def check_serve(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"] and doc["device"] == "cpu" and doc["batch_size"] == 4
    assert [r["clients"] for r in doc["runs"]] == [1, 2]
    for r in doc["runs"]:
        assert r["requests"] == 4 and 1 <= r["batches"] <= 4, r
        assert positive(r["wall_seconds"], r["requests_per_second"], r["audio_seconds"], r["x_real_time"],
                        r["mean_latency_seconds"]), r
    assert doc["runs"][0]["batches"] == 4  # one client, one request at a time: nothing to batch
    # greedy decoding: the same four texts make the same audio however they are batched
    assert doc["runs"][0]["audio_seconds"] == pytest.approx(doc["runs"][1]["audio_seconds"], abs=0.2)
    memory = doc["memory"]
    assert memory["requests"] == 4 and memory["characters"] == 4096 and memory["engine"] == "espeak"
    assert positive(memory["start_mb"], memory["peak_mb"], memory["idle_after_mb"], memory["wall_seconds"])
    assert memory["peak_mb"] >= memory["start_mb"]
    assert memory["idle_growth_mb"] == pytest.approx(memory["idle_after_mb"] - memory["start_mb"], abs=0.2)


def check_lexicon(doc: dict, tmp_path: Path) -> None:
    assert doc["smoke"]
    without, with_ = doc["results"]
    assert (without["case"], without["entries"], with_["case"], with_["entries"]) == (
        "without lexicon", 0, "with lexicon", 1000)
    assert without["lexicon_entries"] == 0 and with_["lexicon_entries"] == 1000
    assert without["book_chars"] == with_["book_chars"] == 10_000
    # the same book: the lexicon's entries, longer than the words they replace, made it longer
    assert with_["spoken_chars"] > without["spoken_chars"] and with_["chunks"] >= without["chunks"]
    assert positive(without["plan_seconds"], with_["plan_seconds"], with_["us_per_char"])


def check_speech(doc: dict, tmp_path: Path) -> None:
    books = doc["books"]
    assert set(books) == {"smoke.epub", "smoke.pdf"}
    for name, sides in books.items():
        assert sides["before"] == sides["after"], name  # --before is this very checkout
        after = sides["after"]
        assert after["chapters"] == len(SMOKE_CHAPTERS) + 1, after  # and a chapter of notes
        assert after["paragraphs"] == SMOKE_PARAGRAPHS + 2 and after["chunks"] >= SMOKE_CHUNKS + 2, after
        assert after["skipped_sections"] == 0 and after["flagged_chunks"] >= 1, after
        assert after["fragment_paragraphs"] == 1, after  # the figure's labels, "0 10 20 x"
        assert after["holes"] == 0 and after["code_mentions"] == 0, after  # its web address is said by its host
    assert doc["totals"]["after"]["chunks"] == sum(b["after"]["chunks"] for b in books.values())


def check_piper_engine(doc: dict, tmp_path: Path) -> None:
    assert doc["benchmark"] == "piper" and doc["book"] == "smoke" and doc["chunks"] == SMOKE_CHUNKS
    assert [r["workers"] for r in doc["engine"]] == [1, 2]
    for r in doc["engine"]:
        assert r["chunks"] == SMOKE_CHUNKS and r["batch_size"] >= 1, r
        assert positive(r["audio_seconds"], r["wall_seconds"], r["x_real_time"], r["audio_per_cpu_second"],
                        r["peak_rss_mb"]), r
    [row] = doc["pace"]
    assert row["words"] >= sum(len(p.split()) for _, ps in SMOKE_CHAPTERS for p in ps), row  # and the titles
    assert positive(row["audio_seconds"], row["words_per_minute"]), row
    whole = doc["pipeline"]
    assert positive(whole["render_seconds"], whole["engine_alone_seconds"], whole["ratio"], whole["book_seconds"])
    assert whole["ratio"] == pytest.approx(whole["render_seconds"] / whole["engine_alone_seconds"], rel=0.05)


def check_verify(doc: dict, tmp_path: Path) -> None:
    assert doc["benchmark"] == "verify" and doc["smoke"] and doc["model"] == "tiny.en"
    [row] = doc["engines"]
    assert row["engine"] == "piper" and row["chunks"] == 3
    assert positive(row["audio_seconds"], row["audio_per_cpu_second"])
    assert 0 <= row["false_failure_share"] <= 1 and row["false_failures"] == len(row["false"])
    assert set(row["faults"]) == {"other", "cut", "silence"}
    for kind, fault in row["faults"].items():
        assert fault["takes"] == 3 and fault["caught"] + len(fault["missed"]) == 3, kind
    assert row["faults"]["silence"]["caught"] == 3  # silence is caught from the samples, whatever was heard
    [cost] = doc["render"]
    assert cost["engine"] == "piper" and positive(cost["seconds_off"], cost["seconds_all"], cost["audio_seconds"])
    assert cost["ratio"] == pytest.approx(cost["seconds_all"] / cost["seconds_off"], rel=0.01)
    # every chunk of the book was heard: the chapter titles are too short to judge by ear
    assert cost["checked"] + cost["flagged"] + cost["not_checked"] == SMOKE_CHUNKS
    assert cost["not_checked"] == len(SMOKE_CHAPTERS)


def check_gpu_report(doc: dict, tmp_path: Path) -> None:
    committed = json.loads((BENCH / "results" / doc["smoke"]["fixture"]).read_text(encoding="utf-8"))
    assert doc["smoke"]["differs"] == [] and doc["smoke"]["runs"] == len(committed["runs"]) > 1
    for key in ("device", "batching", "pipeline_ratio", "forced_oom", "decode_loop_identical", "memory_model",
                "decode_probe", "runs"):
        assert doc[key] == committed[key], key
    assert doc["batching"] and doc["pipeline_ratio"] > 0


# name: (extra arguments, check, timeout in seconds). gpu_report last: it also summarises what
# batching, decode_loop and pipeline --full-size wrote before it, when they ran in this test run.
CASES: dict[str, tuple[tuple[str, ...], Callable[[dict, Path], None], float]] = {
    "assemble": ((), check_assemble, 120),
    "batching": ((), check_batching, 240),
    "cache": ((), check_cache, 120),
    "cancel": ((), check_cancel, 240),
    "decode_loop": ((), check_decode_loop, 180),
    "extract": ((), check_extract, 120),
    "gil": ((), check_gil, 120),
    "pipeline": (("--speed", "20", "--launches"), check_pipeline, 180),
    "pipeline-full-size": (("--full-size",), check_pipeline_full_size, 240),
    "remote": ((), check_remote, 180),
    "serve": ((), check_serve, 240),
    "speech": (("--before", str(ROOT)), check_speech, 120),
    "lexicon": ((), check_lexicon, 120),
    "piper_engine": ((), check_piper_engine, 180),
    "verify": ((), check_verify, 240),
    "gpu_report": ((), check_gpu_report, 60),
}


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the GPU suite's scripts' smoke results gather, named as bench/gpu-suite.sh names them."""
    return tmp_path_factory.mktemp("gpu-suite")


@pytest.fixture(autouse=True)
def results_untouched() -> Iterator[None]:
    """No smoke run writes to the committed results."""
    def snapshot() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (BENCH / "results").iterdir()}

    before = snapshot()
    yield
    assert snapshot() == before, "a smoke run wrote to bench/results/"


def test_every_bench_script_has_a_smoke_test() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py")} - HELPERS
    tested = {name.removesuffix("-full-size") for name in CASES}
    assert scripts == tested, f"bench/ scripts without a smoke test here: {sorted(scripts - tested)}"
    for name in scripts:
        doc = (BENCH / f"{name}.py").read_text(encoding="utf-8").split('"""')[1]
        assert "--smoke" in doc, f"bench/{name}.py's docstring does not show --smoke"


@pytest.mark.parametrize("case", list(CASES))
def test_smoke(case: str, tmp_path: Path, suite_dir: Path) -> None:
    extra, check, timeout = CASES[case]
    script = case.removesuffix("-full-size")
    doc = smoke(script, tmp_path, *extra, timeout=timeout)
    check(doc, tmp_path)
    if case in SUITE_NAMES:
        shutil.copy(tmp_path / "x.json", suite_dir / SUITE_NAMES[case])
    if case == "gpu_report" and all((suite_dir / n).is_file() for n in SUITE_NAMES.values()):
        check_gpu_report_of_smoke_runs(suite_dir, tmp_path)


def check_gpu_report_of_smoke_runs(suite_dir: Path, tmp_path: Path) -> None:
    """bench/gpu_report.py on what this test run's smoke runs of the suite's scripts wrote."""
    out = tmp_path / "suite-report.json"
    run_bench(["bench/gpu_report.py", str(suite_dir), "--out", str(out)], tmp_path, 60)
    report = json.loads(out.read_text(encoding="utf-8"))
    batching = json.loads((suite_dir / "batching.json").read_text(encoding="utf-8"))
    pipeline = json.loads((suite_dir / "pipeline.json").read_text(encoding="utf-8"))
    assert [(r["loop"], r["batch_size"], r["x_real_time"]) for r in report["batching"]] == [
        (r["loop"], r["batch_size"], r["x_real_time"]) for r in batching["results"]]
    assert report["pipeline_ratio"] == pipeline["best"]["ratio"]
    assert report["decode_loop_identical"] == {"float32 on cpu": {"voxd (exact shapes)": "identical, 22/22 frames",
                                                                  "voxd (static shapes)": "identical, 22/22 frames"}}
    assert report["device"] == []  # a CPU is no card
    assert set(report["runs"]) == set(SUITE_NAMES.values())


def test_gpu_suite_dry_run_parses_every_command(tmp_path: Path) -> None:
    """bench/gpu-suite.sh --dry-run: each python command line it runs parses (pytest collects), no GPU."""
    out = tmp_path / "suite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    done = subprocess.run(["bash", "bench/gpu-suite.sh", "--dry-run", str(out), sys.executable], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("dry run: ")]
    assert any("tests/tts/test_qwen.py tests/tts/test_qwen_decode.py collects" in line for line in lines), done.stdout
    scripts = [line.split()[2] for line in lines if line.split()[2].startswith("bench/")]
    assert scripts == ["bench/decode_loop.py", "bench/decode_loop.py", "bench/batching.py", "bench/batching.py",
                       "bench/pipeline.py", "bench/gpu_report.py"], done.stdout
    # real lengths first, then the short row of the earlier suites
    scales = [line.split("'length_scale': ")[1].split(",")[0] for line in lines if "bench/batching.py" in line]
    assert scales == ["1.0", "0.25"], done.stdout
    assert not any(out.iterdir()), "a dry run wrote results"

    # and a command line that does not parse fails the dry run
    bad = subprocess.run(["bash", "bench/gpu-suite.sh", "--dry-run", str(out), sys.executable], cwd=ROOT,
                         env={**env, "SIZES": "1 many"}, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 1 and "bench/batching.py" in bad.stderr and "--sizes 1 many" in bad.stderr, bad.stderr
