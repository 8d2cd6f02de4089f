#!/usr/bin/env bash
# The GPU suite: what a CUDA machine can tell us that the CPU cannot.
#   bench/gpu-suite.sh OUTDIR [python]
#   bench/gpu-suite.sh --dry-run OUTDIR [python]   # no GPU: every python command below parses its
#                                                  # arguments (and pytest collects), nothing runs
# 1. the card, the driver and torch's CUDA build; 2. the tests marked gpu (the decode loop's CUDA
#    graphs among them);
# 3. bench/decode_loop.py: voxd's decode loop (CUDA graphs included) against qwen_tts's,
#    code for code, on the tiny checkpoint in float32 and bfloat16;
# 4. bench/batching.py on the full-size random model (real 1.7B dimensions), two rows of lengths:
#    real ones (batching.json: each item ends within 20% of what its text predicts, LENGTH_SCALE=1,
#    15-30 s chunks; voxd's loop, LOOP=both adds qwen_tts's) and the short ones of the earlier
#    suites (batching-short.json: a quarter of that, SHORT_SCALE=0.25; voxd's loop then qwen_tts's,
#    SHORT_LOOP; SHORT= skips it): x real time, the wall time by phase (graph capture, prefill,
#    frames, codec decode, gaps), padding and peak memory by batch size, generation and decode
#    apart (and, with DECODE_PROBE=--decode-probe, the codec decoder alone; with FORCE_OOM=SIZE, a
#    first batch of SIZE that cannot fit, and how the render recovers);
# 5. bench/pipeline.py --full-size: the pipeline ratio (PIPELINE= skips it).
# Results land in OUTDIR as JSON, gathered by bench/gpu_report.py into OUTDIR/gpu-report.json:
# commit that as bench/results/gpu-<date>-<card>.json.
# Each script's --smoke runs it on the CPU in seconds (tests/test_bench.py runs them all).
set -u
dry=
if [ "${1:-}" = "--dry-run" ]; then
    dry=1
    shift
fi
out=${1:?usage: bench/gpu-suite.sh [--dry-run] OUTDIR [python]}
py=${2:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
quiet() { grep -v -e '^\s*$' -e 'SoX' -e 'sox' -e 'path variables' -e 'flash-attn' -e '\*\*\*\*' -e 'generation flags'; }
failures=$(mktemp)  # with --dry-run, the commands that failed (the pipes below run in subshells)
trap 'rm -f "$failures"' EXIT
# run_py SECONDS ARGS...: "$py" ARGS under `timeout SECONDS` (0: no limit); with --dry-run, the
# same command line parsed by its script's own argparse parser and nothing more (the script runs
# up to its parse_args and stops there; OUTDIR stays empty), pytest only collecting.
run_py() {
    local limit=$1
    shift
    if [ -z "$dry" ]; then
        if [ "$limit" = 0 ]; then "$py" "$@"; else timeout "$limit" "$py" "$@"; fi
        return
    fi
    if [ "$1" = "-m" ]; then
        if "$py" "$@" --collect-only -q >/dev/null 2>&1; then
            echo "dry run: $* collects"
        else
            echo "dry run: $* does not collect" >&2
            echo "$*" >>"$failures"
        fi
        return
    fi
    "$py" - "$@" <<'EOF' || echo "$*" >>"$failures"
import argparse
import runpy
import sys

script, argv = sys.argv[1], sys.argv[2:]
real = argparse.ArgumentParser.parse_args


def parse_only(self, args=None, namespace=None):
    parsed = real(self, args, namespace)  # a bad argument exits 2 here, with argparse's message
    print(f"dry run: {script} {' '.join(argv)}: {vars(parsed)}")
    raise SystemExit(0)


argparse.ArgumentParser.parse_args = parse_only
sys.argv = [script, *argv]
sys.path.insert(0, script.rpartition("/")[0] or ".")  # as when run as a script: its folder first
runpy.run_path(script, run_name="__main__")
raise SystemExit(f"dry run: {script} never parsed its arguments")
EOF
}
if [ -z "$dry" ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
    "$py" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'capability', torch.cuda.get_device_capability(), 'transformers', transformers.__version__)"
fi
run_py 0 -m pytest -q -m gpu -p no:cacheprovider tests/tts/test_gpu.py tests/tts/test_qwen_loop.py tests/tts/test_qwen.py tests/tts/test_qwen_decode.py 2>&1 | tail -3
run_py 120 bench/decode_loop.py --out "$out/decode-loop-float32.json" 2>&1 | quiet
run_py 120 bench/decode_loop.py --dtype bfloat16 --out "$out/decode-loop-bfloat16.json" 2>&1 | quiet
run_py 0 bench/batching.py --full-size --loop "${LOOP:-voxd}" --sizes ${SIZES:-1 8 32 64 128 256} --batches 1 \
    --length-scale "${LENGTH_SCALE:-1.0}" ${FORCE_OOM:+--force-oom "$FORCE_OOM"} ${DECODE_PROBE:-} \
    --out "$out/batching.json" 2>&1 | quiet
[ -n "${SHORT-1}" ] && run_py 0 bench/batching.py --full-size --loop "${SHORT_LOOP:-both}" \
    --sizes ${SIZES:-1 8 32 64 128 256} --batches 1 --length-scale "${SHORT_SCALE:-0.25}" \
    --out "$out/batching-short.json" 2>&1 | quiet
# 5. the whole pipeline (voxd render: ingest, render, assembly) against the engine alone, at
#    the batch size voxd picks for this card: the pipeline ratio.
[ -n "${PIPELINE-1}" ] && run_py "${PIPELINE_TIMEOUT:-300}" bench/pipeline.py --full-size \
    --out "$out/pipeline.json" 2>&1 | quiet
# 6. one JSON with the summary first (device, batching with each row's phases, pipeline_ratio,
#    forced_oom, identity)
run_py 0 bench/gpu_report.py "$out" --out "$out/gpu-report.json" 2>&1 | tail -20
if [ -s "$failures" ]; then
    echo "dry run: these commands do not parse:" >&2
    cat "$failures" >&2
    exit 1
fi
exit 0
