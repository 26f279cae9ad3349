#!/usr/bin/env bash
# Packs a self-contained bundle for running wrn on a remote NVIDIA machine that has the
# driver's libnvidia-opencl.so.1 but maybe no OpenCL ICD loader, no .icd file and no CLBlast.
#
#   tools/gpu-bundle.sh [BUILD_DIR [DEST]]     (defaults: build, .dev/gpu; run after a build)
#
# DEST (ignored by git through /.dev/) receives:
#   wrn, tests/test_*   the built command and unit-test binaries
#   bin/clinfo          this machine's clinfo, when installed (diagnostics only)
#   lib/                libOpenCL.so.1 (ocl-icd), libclblast.so.1, libcmocka.so.0 and every other
#                       shared library they need, except the glibc / libstdc++ / libgcc_s family
#   icd/nvidia.icd      "libnvidia-opencl.so.1" (run.sh rewrites it to an absolute path)
#   run.sh              tools/gpu-run.sh: the remote script (see its header)
#   bench.sh.example    a template for the optional benchmark hook bench.sh
#   MANIFEST.txt        git revision, build flags and sha256 of every file
# An existing DEST/bench.sh is kept. Remote use: carry ".dev/gpu", command "bash .dev/gpu/run.sh".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd) || { echo "gpu-bundle: no build folder ${1:-$ROOT/build}" >&2; exit 1; }
DEST=${2:-$ROOT/.dev/gpu}
MAX_MIB=${GPU_BUNDLE_MAX_MIB:-40}

die() { echo "gpu-bundle: $*" >&2; exit 1; }
[[ -x $BUILD/wrn ]] || die "$BUILD/wrn not found: build first (cmake --build $BUILD)"
compgen -G "$BUILD/tests/test_*" >/dev/null || die "no $BUILD/tests/test_* binaries (WRN_BUILD_TESTS=ON?)"

# Keep the lead's bench.sh; replace everything this script makes.
mkdir -p "$DEST"
rm -rf "${DEST:?}/wrn" "${DEST:?}/tests" "${DEST:?}/bin" "${DEST:?}/lib" "${DEST:?}/icd" \
  "${DEST:?}/run.sh" "${DEST:?}/bench.sh.example" "${DEST:?}/MANIFEST.txt"
mkdir -p "$DEST/tests" "$DEST/bin" "$DEST/lib" "$DEST/icd"

# Regular files only (cp -L): symbolic links may not survive the trip to the remote machine.
cp -L "$BUILD/wrn" "$DEST/wrn"
for t in "$BUILD"/tests/test_*; do
  [[ -f $t && -x $t ]] && cp -L "$t" "$DEST/tests/"
done
if command -v clinfo >/dev/null 2>&1; then cp -L "$(command -v clinfo)" "$DEST/bin/clinfo"; fi
install -m 0755 "$ROOT/tools/gpu-run.sh" "$DEST/run.sh"
echo "libnvidia-opencl.so.1" >"$DEST/icd/nvidia.icd"

# Libraries every Linux image with a C++ runtime has. Copying these (above all libc and the
# dynamic loader) would break the remote programs, so they are never bundled.
is_system_lib() {
  case "$1" in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | \
      libdl.so.* | librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnsl.so.* | \
      libBrokenLocale.so.* | libstdc++.so.* | libgcc_s.so.*) return 0 ;;
  esac
  return 1
}

# The ldd closure of every bundled ELF file (ldd is already transitive).
declare -A want=()
missing=0
for elf in "$DEST/wrn" "$DEST"/tests/test_* "$DEST"/bin/*; do
  [[ -f $elf ]] || continue
  while read -r name arrow path _; do
    [[ $arrow == "=>" ]] || continue
    is_system_lib "$name" && continue
    if [[ $path == "not" || ! -e $path ]]; then
      echo "gpu-bundle: $elf needs $name, which ldd cannot find here" >&2
      missing=1
      continue
    fi
    want[$name]=$path
  done < <(ldd "$elf")
done
[[ $missing == 0 ]] || die "unresolved libraries (see above)"
for need in libOpenCL.so.1 libclblast.so.1; do
  [[ -n ${want[$need]:-} ]] || die "$need is not among the binaries' libraries: unexpected link"
done
for name in "${!want[@]}"; do
  cp -L "${want[$name]}" "$DEST/lib/$name"
done
# Libraries of the bundled libraries (ldd on the binaries covers them, but check anyway).
for lib in "$DEST"/lib/*; do
  while read -r name arrow path _; do
    [[ $arrow == "=>" ]] || continue
    is_system_lib "$name" && continue
    [[ -e $DEST/lib/$name ]] || { cp -L "$path" "$DEST/lib/$name"; echo "gpu-bundle: added $name (needed by ${lib##*/})"; }
  done < <(ldd "$lib")
done

# The loader must be ocl-icd (run.sh relies on its OCL_ICD_VENDORS = a folder of .icd files).
loader_pkg=$(dpkg -S "$(readlink -f "${want[libOpenCL.so.1]}")" 2>/dev/null | cut -d: -f1 || true)
if ! grep -q "OCL_ICD_PLATFORM_SORT" "$DEST/lib/libOpenCL.so.1"; then
  die "${want[libOpenCL.so.1]} does not look like the ocl-icd loader (install ocl-icd-libopencl1)"
fi

cat >"$DEST/bench.sh.example" <<'EOF'
# Template for .dev/gpu/bench.sh: run.sh sources bench.sh (bash, cwd = repository root) inside
# one step with a 300 s timeout (WRN_GPU_BENCH_TIMEOUT), after the unit tests. Available:
#   step NAME TIMEOUT CMD...   runs CMD with a timeout (cut to the time left), logs it, adds a
#                              line to summary.txt; returns CMD's exit code; never stops the script
#   $WRN (the wrn binary), $OUT (comes back: at most 8 files in all, each <= 16 MiB, of which
#   gpu.log, summary.txt and clinfo.txt are 3), $BUNDLE, $ROOT, $LOG, and WRN_DEVICE=gpu,
#   XDG_CACHE_HOME=/tmp/wrncache. Keep the steps' timeouts within the hook's 300 s.
step bench-wrn-16-4 120 "$WRN" bench --model wrn-16-4 --batch 128 --steps 10 --json "$OUT/bench-16-4.json"
step bench-wrn-28-10 170 "$WRN" bench --model wrn-28-10 --batch 128 --steps 10 --json "$OUT/bench-28-10.json"
EOF

{
  echo "made       $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ($(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1))"
  echo "git        $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' +uncommitted changes')"
  echo "build      $BUILD ($(grep -E '^CMAKE_BUILD_TYPE:' "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || true); $(grep -E '^WRN_WERROR:' "$BUILD/CMakeCache.txt" 2>/dev/null || true))"
  echo "loader     ${want[libOpenCL.so.1]} (${loader_pkg:-package unknown})"
  echo "newest glibc symbol needed: $(cd "$DEST" && for f in wrn tests/* bin/* lib/*; do [[ -f $f ]] && objdump -T "$f" 2>/dev/null; done | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
  echo "newest libstdc++ symbol needed: $(cd "$DEST" && for f in lib/*; do objdump -T "$f" 2>/dev/null; done | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)"
  echo
  (cd "$DEST" && find . -type f ! -name MANIFEST.txt ! -name bench.sh | LC_ALL=C sort | xargs sha256sum)
} >"$DEST/MANIFEST.txt"

bytes=$(du -sb "$DEST" | cut -f1)
echo "gpu-bundle: $DEST"
(cd "$DEST" && ls -l wrn run.sh icd/* lib/* bin/* 2>/dev/null | awk '{printf "  %10d  %s\n", $5, $NF}')
echo "  $(ls "$DEST"/tests | wc -l) test binaries: $(cd "$DEST/tests" && echo *)"
sed -n '1,6p' "$DEST/MANIFEST.txt" | sed 's/^/  /'
awk -v b="$bytes" 'BEGIN { printf "gpu-bundle: size %.2f MiB (%d bytes)\n", b / 1048576, b }'
((bytes < MAX_MIB * 1048576)) || die "bundle is over $MAX_MIB MiB"
echo "gpu-bundle: remote use: carry [\".dev/gpu\"], command: bash .dev/gpu/run.sh"
