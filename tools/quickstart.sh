#!/usr/bin/env bash
# Installs what is missing, builds wrn, lists the OpenCL devices, and trains a small Wide
# ResNet on the CIFAR-10 sample shipped in data/cifar10-sample (2,000 training and 500 test
# images), ending with its test accuracy and where the log and checkpoints are.
# Builds in build/, the folder the README's examples and tools/test.sh use (the test suite
# is left out here: it needs cmocka, which tools/test.sh installs and turns back on).
# Idempotent: reuses build/; each run writes a new folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWRN_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
build/wrn devices --no-probe
exec build/wrn train --model wrn-10-1 --data data/cifar10-sample --epochs 15 --batch 64 \
  --epoch-step 10,13 --out "runs/quickstart-$(date +%Y%m%d-%H%M%S)" "$@"
