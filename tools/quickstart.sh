#!/usr/bin/env bash
# Installs what is missing, builds wrn, lists the OpenCL devices, and trains a small Wide
# ResNet on the CIFAR-10 sample shipped in data/cifar10-sample (2,000 training and 500 test
# images), ending with its test accuracy and where the log and checkpoints are.
# Idempotent: reuses build-release/; each run writes a new folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DWRN_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)"
build-release/wrn devices --no-probe
exec build-release/wrn train --model wrn-10-1 --data data/cifar10-sample --epochs 15 --batch 64 \
  --epoch-step 10,13 --out "runs/quickstart-$(date +%Y%m%d-%H%M%S)" "$@"
