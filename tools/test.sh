#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, runs the whole test suite
# (collecting the kernel builds it makes), compiles those kernels offline for AMD, NVIDIA and
# SPIR-V (tools/cl_offline.py), then builds the unit tests with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs them, and last runs each fuzz target of tests/fuzz for
# WRN_FUZZ_SECONDS (60) with clang's libFuzzer (tools/fuzz.sh).
# Idempotent: reuses build/ and build-asan/ when present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh --test
jobs=$(nproc)
t0=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWRN_WERROR=ON -DWRN_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
# The library appends every program and option string it builds to this file, so that the
# kernels are then compiled offline for AMD, NVIDIA and SPIR-V with exactly those options.
export WRN_DUMP_BUILDS=$PWD/build/cl-builds.txt
rm -f "$WRN_DUMP_BUILDS"
ctest --test-dir build --output-on-failure -j"$jobs" ${WRN_CTEST_ARGS:-}
unset WRN_DUMP_BUILDS
t1=$(date +%s)
echo "test.sh: suite passed in $((t1 - t0)) s; now the kernels offline for other GPUs"
python3 tools/cl_offline.py build/cl-builds.txt --jobs "$jobs" --json build/cl-offline.json
echo "test.sh: offline kernel compiles passed; now the other build types, warnings as errors"
bash tools/build-types.sh Release MinSizeRel Debug
t1=$(date +%s)
echo "test.sh: every build type is warning-free; now the sanitizer build of the unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWRN_WERROR=ON -DWRN_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# PoCL and the ICD loader keep some allocations until exit: suppress leaks from those
# libraries only (tests/lsan.supp), never globally.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
# new_delete_type_mismatch=0: clFFT 2.12 (Debian) deletes its plan actions through a base
# class pointer of another size inside clfftDestroyPlan; the check is off for that alone.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:new_delete_type_mismatch=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit
t2=$(date +%s)
echo "test.sh: sanitizer run passed in $((t2 - t1)) s; now each fuzz target for ${WRN_FUZZ_SECONDS:-60} s"
# The readers under libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer (clang).
bash tools/fuzz.sh "${WRN_FUZZ_SECONDS:-60}"
t3=$(date +%s)
echo "test.sh: fuzzing passed in $((t3 - t2)) s; total $((t3 - t0)) s"
