#!/usr/bin/env bash
# Wheels the GPU machine lacks (it has no network), for benchmarks/device_check.sh: into .whl/ (git-ignored),
# for CPython 3.12 on x86-64. The device tool carries .whl along when asked (carry: [".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
    platforms+=(--platform "$tag")
done
.venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl simplejpeg
