#!/usr/bin/env bash
# Create .venv and install hashmatch with its test/dev extras. Idempotent: reinstalls only when
# pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.hashmatch-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setting up .venv (log: .venv/setup.log) ..."
    if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[dev]"; } \
        > .venv/setup.log 2>&1; then
        tail -n 40 .venv/setup.log
        echo "setup failed; the whole log is .venv/setup.log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
