#!/usr/bin/env bash
# The GPU suite: what a CUDA machine can tell us that the CPU cannot.
#   bench/gpu-suite.sh OUTDIR [python]
# 1. the card, the driver and torch's CUDA build; 2. the tests marked gpu;
# 3. bench/batching.py on the full-size random model (real 1.7B dimensions, fixed lengths):
#    x real time, padding and peak memory by batch size, generation and decode apart,
#    and the codec decoder alone by batch and frames.
# Results land in OUTDIR as JSON; bench/results/gpu-<date>.json is assembled from them.
set -u
out=${1:?usage: bench/gpu-suite.sh OUTDIR [python]}
py=${2:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
"$py" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'capability', torch.cuda.get_device_capability(), 'transformers', transformers.__version__)"
"$py" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -3
"$py" bench/batching.py --full-size --sizes ${SIZES:-1 2 8 32 64 128} --batches 1 \
    --length-scale "${LENGTH_SCALE:-0.25}" --decode-probe --out "$out/batching-eager.json" 2>&1 \
    | grep -v -e '^\s*$' -e 'SoX' -e 'sox' -e 'path variables' -e 'flash-attn' -e '\*\*\*\*'
