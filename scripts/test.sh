#!/usr/bin/env bash
# The test suite: set up, then lint (ruff), types (mypy), and pytest (unit, conformance, property, CLI,
# and every benchmark once as a smoke test with timing disabled).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/python -m pytest "$@"
