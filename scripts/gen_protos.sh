#!/usr/bin/env bash
# Regenerate grpc_api/generated from grpc_api/protos (needs grpcio-tools, a dev dependency). The generated
# modules are committed, so running the server needs grpcio and protobuf only.
set -euo pipefail
cd "$(dirname "$0")/.."
out=grpc_api/generated
rm -rf "$out/hashmatch"
.venv/bin/python -m grpc_tools.protoc -I grpc_api/protos --python_out="$out" --pyi_out="$out" \
    --grpc_python_out="$out" grpc_api/protos/hashmatch/v1/hashmatch.proto
# protoc writes imports relative to the proto root; make them absolute within this project.
sed -i 's/^from hashmatch\.v1 import/from grpc_api.generated.hashmatch.v1 import/' "$out/hashmatch/v1/hashmatch_pb2_grpc.py"
touch "$out/__init__.py" "$out/hashmatch/__init__.py" "$out/hashmatch/v1/__init__.py"
