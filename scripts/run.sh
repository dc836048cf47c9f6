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

echo "== the same through the gRPC service: hashmatch serve, on a loopback port, with an API token"
token=$($hm tokens add demo-platform 2>/dev/null)
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$hm serve --address "127.0.0.1:$port" 2> "$demo/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$demo"' EXIT
for _ in $(seq 1 100); do grep -q "hashmatch serving" "$demo/server.log" 2>/dev/null && break; sleep 0.1; done
$hm match --server "127.0.0.1:$port" --token "$token" samples/images/ "$demo/bridge-rotated.png"
echo "(run it yourself: hashmatch tokens add NAME; hashmatch serve; hashmatch match --server 127.0.0.1:50051 --token TOKEN FILES)"
