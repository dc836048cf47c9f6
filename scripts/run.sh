#!/usr/bin/env bash
# The main job: set up, then hash the bundled benign sample images (PDQ hex, quality, path; then JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/hashmatch hash samples/images/
.venv/bin/hashmatch hash --json --dihedral samples/images/bridge.jpg
