#!/usr/bin/env bash
# Side-by-side training throughput: wrn bench against the PyTorch peer (tools/torch_peer.py:
# the same WRN-d-k and optimiser, Debian's python3-torch) on the same machine, same threads,
# one after the other, ROUNDS times each. Usage:
#   tools/bench-peer.sh BUILD_DIR [DEPTH K BATCH STEPS ROUNDS]
# e.g. tools/bench-peer.sh build 16 4 128 3 2
# PyTorch runs 10 steps after 3 warm-up steps (its first steps are slow); wrn runs STEPS after
# its own warm-up and one more step. PYTHON overrides the interpreter (default /usr/bin/python3,
# where Debian installs PyTorch).
# Prints one line per run and the ratio of medians (ours / PyTorch images per second).
set -euo pipefail
build=${1:?build dir}
depth=${2:-16}; k=${3:-4}; batch=${4:-128}; steps=${5:-3}; rounds=${6:-2}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
threads=$(nproc)
ours=(); theirs=()
json=$(mktemp /tmp/wrn-bench-peer-XXXXXX.json)
trap 'rm -f "$json" "$json.tmp"' EXIT
for r in $(seq "$rounds"); do
  t=$(OMP_NUM_THREADS=$threads "$py" "$here/torch_peer.py" --depth "$depth" --k "$k" \
        --batch "$batch" --steps 10 --warmup 3 --threads "$threads" | tail -1 |
      sed -n 's/.*"img_per_s": \([0-9.]*\).*/\1/p')
  [[ -n "$t" ]] || { echo "bench-peer: the PyTorch peer printed no img_per_s" >&2; exit 1; }
  "$build/wrn" bench --model "wrn-$depth-$k" --batch "$batch" --steps "$steps" --warmup 1 \
    --profile-steps 0 --json "$json" >/dev/null 2>&1
  o=$(tr ',' '\n' <"$json" | sed -n 's/.*"images_per_s":\([0-9.e+]*\).*/\1/p' | head -1)
  echo "round $r: wrn-$depth-$k batch $batch: PyTorch $t img/s, wrn $o img/s (WRN_GEMM=${WRN_GEMM:-auto})"
  theirs+=("$t"); ours+=("$o")
done
"$py" - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]; t = [float(x) for x in sys.argv[2].split()]
print(f"median: wrn {statistics.median(o):.1f} img/s, PyTorch {statistics.median(t):.1f} img/s, "
      f"ratio {statistics.median(o) / statistics.median(t):.3f}")
PY
