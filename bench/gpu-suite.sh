#!/usr/bin/env bash
# The GPU suite: what a CUDA machine can tell us that the CPU cannot.
#   bench/gpu-suite.sh OUTDIR [python]
# 1. the card, the driver and torch's CUDA build; 2. the tests marked gpu;
# 3. bench/decode_loop.py: voxd's decode loop (CUDA graphs included) against qwen_tts's,
#    code for code, on the tiny checkpoint in float32 and bfloat16;
# 4. bench/batching.py on the full-size random model (real 1.7B dimensions, fixed lengths),
#    voxd's loop then qwen_tts's: x real time, padding and peak memory by batch size,
#    generation and decode apart (and, with DECODE_PROBE=--decode-probe, the codec decoder alone;
#    with FORCE_OOM=SIZE, a first batch of SIZE that cannot fit, and how the render recovers);
# 5. bench/pipeline.py --full-size: the pipeline ratio (PIPELINE= skips it).
# Results land in OUTDIR as JSON, gathered by bench/gpu_report.py into OUTDIR/gpu-report.json:
# commit that as bench/results/gpu-<date>-<card>.json.
set -u
out=${1:?usage: bench/gpu-suite.sh OUTDIR [python]}
py=${2:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
quiet() { grep -v -e '^\s*$' -e 'SoX' -e 'sox' -e 'path variables' -e 'flash-attn' -e '\*\*\*\*' -e 'generation flags'; }
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
"$py" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'capability', torch.cuda.get_device_capability(), 'transformers', transformers.__version__)"
"$py" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -3
timeout 120 "$py" bench/decode_loop.py --out "$out/decode-loop-float32.json" 2>&1 | quiet
timeout 120 "$py" bench/decode_loop.py --dtype bfloat16 --out "$out/decode-loop-bfloat16.json" 2>&1 | quiet
"$py" bench/batching.py --full-size --loop "${LOOP:-both}" --sizes ${SIZES:-1 8 32 64 128 256} --batches 1 \
    --length-scale "${LENGTH_SCALE:-0.25}" ${FORCE_OOM:+--force-oom "$FORCE_OOM"} ${DECODE_PROBE:-} \
    --out "$out/batching.json" 2>&1 | quiet
# 5. the whole pipeline (voxd render: ingest, render, assembly) against the engine alone, at
#    the batch size voxd picks for this card: the pipeline ratio.
[ -n "${PIPELINE-1}" ] && timeout "${PIPELINE_TIMEOUT:-300}" "$py" bench/pipeline.py --full-size \
    --out "$out/pipeline.json" 2>&1 | quiet
# 6. one JSON with the summary first (device, batching, pipeline_ratio, forced_oom, identity)
"$py" bench/gpu_report.py "$out" --out "$out/gpu-report.json" 2>&1 | tail -20
