#!/usr/bin/env bash
# Runs wrn on a remote NVIDIA machine from the bundle that tools/gpu-bundle.sh writes to
# .dev/gpu/ (this file is copied there as run.sh). From the repository root:
#
#   bash .dev/gpu/run.sh
#
# It uses only the bundle and the machine's NVIDIA driver: the bundled ocl-icd loader
# (LD_LIBRARY_PATH=.dev/gpu/lib first), an .icd folder naming libnvidia-opencl.so.1 by absolute
# path when it can be found (OCL_ICD_VENDORS), WRN_DEVICE=gpu, XDG_CACHE_HOME=/tmp/wrncache.
# Steps, each under `timeout` (a failing or hanging step never stops the script): nvidia-smi,
# environment and library diagnostics, clinfo, `wrn devices`, every unit test on the GPU, then the
# hook .dev/gpu/bench.sh when it exists (see bench.sh.example).
# Output: all of it on stdout and in $OUT/gpu.log; $OUT/summary.txt holds one tab-separated line
# per step (step, exit code, seconds, note); $OUT/clinfo.txt the full clinfo. OUT defaults to
# /tmp/wrn-gpu-out. Exit code: 0 when every step succeeded, else 1.
#
# Environment knobs:
#   WRN_GPU_BUDGET=500       seconds for the whole script: each timeout is cut to the time left,
#                            and once it is spent the remaining steps are skipped (and listed)
#   WRN_GPU_TESTS="conv bn"  only these unit tests (names without test_); "none" skips them
#   WRN_GPU_TEST_TIMEOUT=60  per test binary
#   WRN_GPU_BENCH=FILE       the hook (default .dev/gpu/bench.sh); WRN_GPU_BENCH_TIMEOUT=300.
#                            While a hook exists, tests start only if its timeout still fits.
#   WRN_GPU_BENCH_FIRST=1    run the hook before the unit tests
#   WRN_GPU_DEVICE=gpu       the WRN_DEVICE / WRN_TEST_DEVICE selector
#   GPU_BUNDLE_DRYRUN=1      rehearsal on a machine without NVIDIA: device cpu, ICD folder
#                            GPU_BUNDLE_VENDORS (default: a copy of /etc/OpenCL/vendors)
set -u

BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BUNDLE/../.." && pwd)
cd "$ROOT" || exit 1

now_ms() { date +%s%3N; }
log() { if [[ ${WRN_GPU_IN_STEP:-0} == 1 ]]; then echo "$*"; else echo "$*" | tee -a "$LOG"; fi; }
left_s() { echo $((BUDGET - ($(now_ms) - START_MS) / 1000)); }
STDBUF=()
command -v stdbuf >/dev/null 2>&1 && STDBUF=(stdbuf -oL -eL)

FAILED=0
# step NAME TIMEOUT CMD... : runs CMD (stdin /dev/null, stdout+stderr logged) under a timeout cut to
# the budget left, appends "NAME rc seconds note" to summary.txt and returns CMD's exit code.
step() {
  local name=$1 t=$2 left rc t0 ms note=""
  shift 2
  left=$(left_s)
  if ((left < 5)); then
    log "### [$name] skipped: the budget of ${BUDGET}s is spent"
    printf '%s\tskip\t0\tbudget spent\n' "$name" >>"$SUMMARY"
    return 0
  fi
  if ((t > left)); then t=$left note="timeout cut to ${t}s"; fi
  log "### [$name] $(date -u +%H:%M:%S) timeout ${t}s, ${left}s of budget left: $*"
  t0=$(now_ms)
  if [[ ${WRN_GPU_IN_STEP:-0} == 1 ]]; then
    # Nested (inside the bench hook): the outer step logs; --foreground keeps this command in
    # the outer timeout's process group so that it is killed with it.
    timeout --foreground -k 5 "$t" "${STDBUF[@]}" "$@" </dev/null 2>&1
    rc=$?
  else
    WRN_GPU_IN_STEP=1 timeout -k 5 "$t" "${STDBUF[@]}" "$@" </dev/null 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
  fi
  ms=$(($(now_ms) - t0))
  case $rc in
    124) note="${note:+$note; }timed out" ;;
    137) note="${note:+$note; }killed (timeout -k or out of memory)" ;;
    127) note="${note:+$note; }command not found" ;;
  esac
  printf '%s\t%s\t%d.%03d\t%s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) "$note" >>"$SUMMARY"
  log "### [$name] rc=$rc in $((ms / 1000)).$((ms % 1000 / 100))s${note:+ ($note)}"
  ((rc == 0)) || FAILED=$((FAILED + 1))
  return "$rc"
}

# The NVIDIA OpenCL driver library: ld.so cache first, then the usual folders, then a search.
find_nv_opencl() {
  local p d
  p=$(timeout 10 ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 .*x86-64/ { print $NF; exit }')
  if [[ -n $p && -e $p ]]; then echo "$p"; return 0; fi
  for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 \
    /usr/local/nvidia/lib /usr/lib /usr/local/cuda/compat /usr/local/cuda/lib64; do
    if [[ -e $d/libnvidia-opencl.so.1 ]]; then echo "$d/libnvidia-opencl.so.1"; return 0; fi
  done
  p=$(timeout 20 find /usr /lib /lib64 /opt -name 'libnvidia-opencl.so*' \( -type f -o -type l \) 2>/dev/null | sort | head -1)
  [[ -n $p ]] && echo "$p"
}

# ------------------------------------------------------------------ set-up (once)
if [[ ${WRN_GPU_SETUP:-0} != 1 ]]; then
  OUT=${OUT:-/tmp/wrn-gpu-out}
  mkdir -p "$OUT" || exit 1
  LOG=$OUT/gpu.log
  SUMMARY=$OUT/summary.txt
  : >"$LOG"
  printf 'step\trc\tseconds\tnote\n' >"$SUMMARY"
  START_MS=$(now_ms)
  BUDGET=${WRN_GPU_BUDGET:-500}
  chmod +x "$BUNDLE/wrn" "$BUNDLE"/tests/* "$BUNDLE"/bin/* 2>/dev/null
  log "wrn-gpu: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), bundle $BUNDLE, OUT=$OUT, budget ${BUDGET}s"
  [[ -f $BUNDLE/MANIFEST.txt ]] && log "$(sed -n '1,4p' "$BUNDLE/MANIFEST.txt" | sed 's/^/  /')"

  NV_OPENCL="" NV_DIR=""
  if [[ ${GPU_BUNDLE_DRYRUN:-0} == 1 ]]; then
    VENDORS=${GPU_BUNDLE_VENDORS:-}
    if [[ -z $VENDORS ]]; then
      VENDORS=$(mktemp -d /tmp/wrn-icd.XXXXXX)
      cp /etc/OpenCL/vendors/*.icd "$VENDORS"/ 2>/dev/null
    fi
    DEVICE=${WRN_GPU_DEVICE:-cpu}
    CACHE=/tmp/wrncache-dryrun
    log "wrn-gpu: DRY RUN: ICD folder $VENDORS, device $DEVICE"
  else
    VENDORS=$BUNDLE/icd
    DEVICE=${WRN_GPU_DEVICE:-gpu}
    CACHE=/tmp/wrncache
    NV_OPENCL=$(find_nv_opencl)
    if [[ -n $NV_OPENCL ]]; then
      # Outside the ld.so cache, its folder (which holds its libcuda.so.1) goes last on the path.
      timeout 10 ldconfig -p 2>/dev/null | grep -qF "=> $NV_OPENCL" || NV_DIR=$(dirname "$NV_OPENCL")
      # An absolute path works whether or not the folder is in the loader's search path.
      if ! { mkdir -p "$VENDORS" && echo "$NV_OPENCL" >"$VENDORS/nvidia.icd"; } 2>/dev/null; then
        VENDORS=$(mktemp -d /tmp/wrn-icd.XXXXXX)
        echo "$NV_OPENCL" >"$VENDORS/nvidia.icd"
      fi
      log "wrn-gpu: NVIDIA OpenCL driver: $NV_OPENCL"
    else
      mkdir -p "$VENDORS" 2>/dev/null && echo "libnvidia-opencl.so.1" >"$VENDORS/nvidia.icd"
      log "wrn-gpu: WARNING: libnvidia-opencl.so.1 not found (ldconfig -p, usual folders, find); the .icd names it bare"
    fi
  fi
  OCL_ICD_VENDORS=$VENDORS
  LD_LIBRARY_PATH=$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}${NV_DIR:+:$NV_DIR}
  WRN_DEVICE=$DEVICE
  WRN_TEST_DEVICE=$DEVICE
  XDG_CACHE_HOME=$CACHE
  WRN_SOURCE_DIR=$ROOT
  WRN_CLI=$BUNDLE/wrn
  WRN=$BUNDLE/wrn
  WRN_GPU_SETUP=1
  WRN_GPU_NV_OPENCL=$NV_OPENCL
  export OCL_ICD_VENDORS LD_LIBRARY_PATH WRN_DEVICE WRN_TEST_DEVICE XDG_CACHE_HOME WRN_SOURCE_DIR \
    WRN_CLI WRN WRN_GPU_SETUP WRN_GPU_NV_OPENCL OUT LOG SUMMARY START_MS BUDGET BUNDLE ROOT
  log "wrn-gpu: OCL_ICD_VENDORS=$OCL_ICD_VENDORS ($(cat "$OCL_ICD_VENDORS"/*.icd 2>/dev/null | tr '\n' ' '))"
  log "wrn-gpu: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  log "wrn-gpu: WRN_DEVICE=$WRN_DEVICE XDG_CACHE_HOME=$XDG_CACHE_HOME"
fi

# ------------------------------------------------------------------ sub-commands (run as steps)
case "${1:-}" in
  --diag)
    echo "kernel  $(uname -srm)"
    echo "os      $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")"
    echo "glibc   $(ldd --version 2>/dev/null | head -1)"
    echo "nproc   $(nproc)   memory $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "--- /etc/OpenCL/vendors (not used: OCL_ICD_VENDORS overrides it)"
    ls -la /etc/OpenCL/vendors 2>&1 | sed 's/^/  /'
    for f in /etc/OpenCL/vendors/*.icd; do [[ -f $f ]] && echo "  $f: $(cat "$f")"; done
    echo "--- ldconfig -p: OpenCL, CUDA driver, CLBlast"
    timeout 10 ldconfig -p 2>&1 | grep -iE 'libOpenCL|nvidia-opencl|libcuda\.so|nvidia-ptxjit|nvidia-compiler|clblast' | sed 's/^/  /'
    echo "--- ldd $WRN (with the bundle's LD_LIBRARY_PATH)"
    ldd "$WRN" 2>&1 | sed 's/^/  /'
    if [[ -n ${WRN_GPU_NV_OPENCL:-} ]]; then
      echo "--- ldd $WRN_GPU_NV_OPENCL"
      ls -la "$WRN_GPU_NV_OPENCL" 2>&1 | sed 's/^/  /'
      ldd "$WRN_GPU_NV_OPENCL" 2>&1 | sed 's/^/  /'
    fi
    echo "--- /dev/nvidia*"
    ls -la /dev/nvidia* 2>&1 | head -20 | sed 's/^/  /'
    exit 0
    ;;
  --clinfo)
    "$BUNDLE/bin/clinfo" -l
    rc=$?
    "$BUNDLE/bin/clinfo" >"$OUT/clinfo.txt" 2>&1
    full=$?
    echo "(full clinfo: $OUT/clinfo.txt, $(wc -l <"$OUT/clinfo.txt") lines, exit code $full)"
    exit $rc
    ;;
  --lddebug)
    # Why the loader found no NVIDIA platform: the dynamic loader's view of the dlopen calls.
    LD_DEBUG=libs "$WRN" devices 2>&1 | grep -iE 'nvidia|cuda|opencl|error|cannot|not found' |
      grep -vE 'trying file=|search path=|search cache=' | head -60
    # dlopen's own message for the driver library (python3 is on the CUDA images).
    lib=${WRN_GPU_NV_OPENCL:-libnvidia-opencl.so.1}
    if command -v python3 >/dev/null 2>&1; then
      python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1]); print("dlopen", sys.argv[1], "works")' "$lib" 2>&1 | tail -3
    fi
    exit 0
    ;;
  --bench)
    BENCH=${WRN_GPU_BENCH:-$BUNDLE/bench.sh}
    # shellcheck disable=SC1090
    source "$BENCH"
    exit $?
    ;;
esac

# ------------------------------------------------------------------ the run
BENCH=${WRN_GPU_BENCH:-$BUNDLE/bench.sh}
BENCH_T=${WRN_GPU_BENCH_TIMEOUT:-300}
TEST_T=${WRN_GPU_TEST_TIMEOUT:-60}
RESERVE=0
[[ -f $BENCH && ${WRN_GPU_BENCH_FIRST:-0} != 1 ]] && RESERVE=$BENCH_T

run_bench() {
  if [[ -f $BENCH ]]; then
    step bench "$BENCH_T" bash "$BUNDLE/run.sh" --bench
  else
    log "### [bench] no $BENCH: nothing to run"
    printf 'bench\tskip\t0\tno bench.sh\n' >>"$SUMMARY"
  fi
}

run_tests() {
  local sel=${WRN_GPU_TESTS:-} bin name scratch t left
  if [[ $sel == none ]]; then
    log "### [tests] skipped (WRN_GPU_TESTS=none)"
    return
  fi
  scratch=$(mktemp -d /tmp/wrn-tests.XXXXXX)
  for bin in "$BUNDLE"/tests/test_*; do
    [[ -f $bin ]] || continue
    name=${bin##*/}
    if [[ -n $sel && " $sel " != *" ${name#test_} "* && " $sel " != *" $name "* ]]; then continue; fi
    left=$(($(left_s) - RESERVE))
    if ((left < 10)); then
      log "### [$name] skipped: the time left is kept for bench.sh"
      printf '%s\tskip\t0\tkept for bench\n' "$name" >>"$SUMMARY"
      continue
    fi
    t=$TEST_T
    ((t > left)) && t=$left
    step "$name" "$t" bash -c 'cd "$1" && exec "$2"' _ "$scratch" "$bin"
  done
  rm -rf "$scratch"
}

if command -v nvidia-smi >/dev/null 2>&1; then
  step nvidia-smi 20 nvidia-smi -L
  step nvidia-smi-query 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,power.limit --format=csv
else
  step nvidia-smi 5 nvidia-smi -L
fi
step env 30 bash "$BUNDLE/run.sh" --diag
[[ -x $BUNDLE/bin/clinfo ]] && step clinfo 30 bash "$BUNDLE/run.sh" --clinfo
off=$(stat -c %s "$LOG")
step wrn-devices 60 "$WRN" devices
devices_rc=$?
if [[ ${GPU_BUNDLE_DRYRUN:-0} != 1 ]] && { ((devices_rc != 0)) || ! tail -c +$((off + 1)) "$LOG" | grep -qi nvidia; }; then
  log "wrn-gpu: WARNING: wrn devices shows no NVIDIA device; the loader's view follows"
  step ld-debug 30 bash "$BUNDLE/run.sh" --lddebug
fi

if [[ ${WRN_GPU_BENCH_FIRST:-0} == 1 ]]; then
  run_bench
  run_tests
else
  run_tests
  run_bench
fi

total=$((($(now_ms) - START_MS) / 1000))
log ""
log "=== summary ($SUMMARY), ${total}s in all, $FAILED step(s) failed"
log "$(column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY")"
printf 'total\t%s\t%d\t%d failed\n' "$((FAILED > 0))" "$total" "$FAILED" >>"$SUMMARY"
((FAILED == 0))
