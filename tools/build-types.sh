#!/usr/bin/env bash
# Builds the library, the command and the tests in every CMake build type (Release, Debug,
# RelWithDebInfo, MinSizeRel) with warnings as errors, each in build-types/<type>/, and says
# which failed: optimisation levels differ in what gcc can prove (-Wmaybe-uninitialized at -O3
# only, say), so a warning-free default build is not enough.
# Usage: tools/build-types.sh [TYPE...]
set -uo pipefail
cd "$(dirname "$0")/.."
types=("$@")
((${#types[@]})) || types=(Release Debug RelWithDebInfo MinSizeRel)
jobs=$(nproc)
mkdir -p build-types
failed=()
for t in "${types[@]}"; do
  d=build-types/$t
  if cmake -S . -B "$d" -DCMAKE_BUILD_TYPE="$t" -DWRN_WERROR=ON -DWRN_BUILD_TESTS=ON >"$d.log" 2>&1 &&
     cmake --build "$d" -j"$jobs" >>"$d.log" 2>&1; then
    echo "build-types: $t: no warnings"
  else
    echo "build-types: $t: FAILED (log: $d.log)"
    grep -E "(warning|error):" "$d.log" | sort -u | head -20
    failed+=("$t")
  fi
done
((${#failed[@]} == 0)) || { echo "build-types: failed: ${failed[*]}"; exit 1; }
