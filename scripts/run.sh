#!/usr/bin/env bash
# The main job: set up, hash the bundled benign sample images, build a demo list from two of them in a
# throw-away store, and match all three (plus a rotated copy) against it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
hm=.venv/bin/hashmatch
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
export HASHMATCH_DB="$demo/demo.db"

echo "== hashmatch hash samples/images/"
$hm hash samples/images/

echo "== a demo list from two of the samples (CSV with NCMEC-style ids)"
{
    echo "hash,type,id,classification"
    $hm hash --json samples/images/bridge.jpg samples/images/wee.jpg | .venv/bin/python -c '
import json, sys
for n, line in enumerate(sys.stdin, start=1):
    record = json.loads(line)
    print(record["pdq"] + ",pdq,DEMO-" + str(n) + ",A1")
    print(record["md5"] + ",md5,DEMO-" + str(n) + ",A1")'
} > "$demo/demo.csv"
$hm lists import "$demo/demo.csv" --list demo --source local
$hm lists ls

echo "== hashmatch match (the third sample is not listed; the bridge also comes rotated 90 degrees)"
.venv/bin/python -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).rotate(90, expand=True).save(sys.argv[2])' \
    samples/images/bridge.jpg "$demo/bridge-rotated.png"
$hm match samples/images/ "$demo/bridge-rotated.png"
$hm match --json "$demo/bridge-rotated.png"
