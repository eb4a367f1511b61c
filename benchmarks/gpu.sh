#!/usr/bin/env bash
# The device checks of issue 14, in a few minutes on one GPU: run from the repository root.
#
#   bash benchmarks/gpu.sh [OUT_DIR]
#
# 1. Philox noise on CUDA equals the CPU draw (tests/test_noise.py, its CUDA test is skipped without a GPU).
# 2. The throughput benchmark on cuda: sample vs the plain torch loop vs diffusers, the fraction of the
#    measured matmul limit, the exact laws vs plain numpy (CPU), Philox eager vs compiled vs torch.randn.
# 3. One large check: verify.linear at d = 3072 with 10^6 samples on cuda (float32 sampling, float64 law).
# 4. The same check sharded over the visible GPUs with torchrun (NCCL), if there are two or more.
set -euo pipefail
OUT=${1:-${OUT:-benchmarks/gpu-out}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python -m pytest -q tests/test_noise.py 2>&1 | tail -3 | tee "$OUT/noise-tests.txt"
timeout 300 python benchmarks/limits.py --device cuda --repeats 3 --compile 2>&1 | tee "$OUT/limits.txt"
timeout 420 python -m verify.linear --dim 3072 --samples 1000000 --device cuda --dtype float32 --no-probe \
    --json "$OUT/linear-3072.json" 2>&1 | tee "$OUT/linear-3072.txt" || true   # exit 1 (FAIL) is recorded, not fatal
GPUS=$(nvidia-smi -L | wc -l)
if [ "$GPUS" -ge 2 ]; then
    timeout 420 torchrun --standalone --nproc-per-node "$GPUS" -m verify.linear --dim 3072 --samples 1000000 \
        --device cuda --dtype float32 --no-probe 2>&1 | tee "$OUT/linear-3072-torchrun.txt" || true
fi
