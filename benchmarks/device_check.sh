#!/usr/bin/env bash
# The GPU checks, in one run, on a machine with an NVIDIA GPU and no network (the device tool's H200: Python
# 3.12 with numpy, cupy-cuda13x, pillow, opencv, numba, grpcio, protobuf, pytest, pytest-benchmark; no faiss).
# Everything else travels as wheels in .whl/ (scripts/fetch_device_wheels.sh). Under 5 minutes; results
# go to $OUT (JSON, Markdown, logs):
#   device.txt         nvidia-smi, the device the self-test chose and why
#   nvrtc.txt          every kernel compiled and loaded by CuPy (NVRTC) for this machine's GPU
#   gpu-tests.log/xml  tests/test_gpu_device.py: hashes and searches on the GPU against the CPU and the references
#   gpu-bench.json/md  benchmarks/test_bench_gpu.py with its bars (benchmarks/summarize_gpu.py)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out/device}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
status=0
{
    nvidia-smi -L
    $PYTHON -c 'from hashing.device import select_device; c = select_device("auto"); print(c.device.value, "-", c.reason)'
} > "$OUT/device.txt" 2>&1 || status=1
$PYTHON -m kernels.nvrtc_check --cupy > "$OUT/nvrtc.txt" 2>&1 || status=1
timeout 150 $PYTHON -m pytest -q -p no:cacheprovider -rs tests/test_gpu_device.py --junitxml="$OUT/gpu-tests.xml" \
    > "$OUT/gpu-tests.log" 2>&1 || status=1
timeout 240 $PYTHON -m pytest -q -p no:cacheprovider -rs benchmarks/test_bench_gpu.py --benchmark-enable \
    --benchmark-json="$OUT/gpu-bench.json" > "$OUT/gpu-bench.log" 2>&1 || status=1
if [ -s "$OUT/gpu-bench.json" ]; then
    $PYTHON -m benchmarks.summarize_gpu "$OUT/gpu-bench.json" --markdown "$OUT/gpu-bench.md" || status=1
else
    echo "No GPU benchmark report: every benchmark skipped or pytest stopped early (see gpu-bench.log)." \
        > "$OUT/gpu-bench.md"
    status=1
fi
cat "$OUT/device.txt" "$OUT/gpu-bench.md" 2>/dev/null
tail -n 3 "$OUT/gpu-tests.log" 2>/dev/null
exit $status
