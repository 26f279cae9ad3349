#!/usr/bin/env bash
# tools/cl_offline.py on a made-up cl/ folder: a good program compiles for every target and
# its AMD resources are read back; a program with an error fails the run with the compiler's
# message, the program and the target; a dump naming a program that does not exist, or a
# cl/ program that no build names, is refused. Exits 77 (skipped) without the compilers.
set -uo pipefail
src=${WRN_SOURCE_DIR:?}
py=${WRN_PYTHON:-python3}
for t in clang-14 llvm-readelf-14 llvm-spirv-14 spirv-val; do
  command -v "$t" >/dev/null || { echo "SKIP: $t is not installed (tools/deps.sh --test)"; exit 77; }
done
[[ -d /usr/lib/clc ]] || { echo "SKIP: libclc-14 is not installed (tools/deps.sh --test)"; exit 77; }
tmp=$(mktemp -d /tmp/wrn-cl-offline-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$tmp/cl"
cp "$src/cl/common.h" "$tmp/cl/"
cat >"$tmp/cl/good.cl" <<'CL'
__kernel void scale(__global real *y, const real a, const uint n) {
  uint i = get_global_id(0);
  if (i < n) y[i] = a * y[i];
}
CL
printf 'good\t-cl-std=CL1.2 -DREAL=float\n' >"$tmp/builds"
"$py" "$src/tools/cl_offline.py" "$tmp/builds" --cl-dir "$tmp/cl" --jobs 2 >"$tmp/out" 2>&1 ||
  { cat "$tmp/out"; fail "a good program did not compile"; }
grep -q "4 compiles, 4 kernels; 0 failed" "$tmp/out" || { cat "$tmp/out"; fail "summary"; }
grep -Eq "^  scale +\| gfx1030: +[0-9]+ +[0-9]+ +0 +0 +0 \| gfx90a:" "$tmp/out" ||
  { cat "$tmp/out"; fail "no AMD resources for the kernel"; }
# An error: an undeclared name. Fails, naming the program, the target and the problem.
cat >"$tmp/cl/bad.cl" <<'CL'
__kernel void broken(__global real *y) { y[0] = undeclared_thing; }
CL
printf 'bad\t-cl-std=CL1.2 -DREAL=float\n' >>"$tmp/builds"
"$py" "$src/tools/cl_offline.py" "$tmp/builds" --cl-dir "$tmp/cl" --jobs 2 >"$tmp/out" 2>&1 &&
  fail "a program with an error passed"
grep -q "ERROR: cl/bad.cl with '-cl-std=CL1.2 -DREAL=float' for gfx1030" "$tmp/out" ||
  { cat "$tmp/out"; fail "the error does not name the program and target"; }
grep -q "undeclared_thing" "$tmp/out" || { cat "$tmp/out"; fail "no compiler message"; }
# A cl/ program that no build names.
printf 'good\t-cl-std=CL1.2 -DREAL=float\n' >"$tmp/builds"
"$py" "$src/tools/cl_offline.py" "$tmp/builds" --cl-dir "$tmp/cl" >"$tmp/out" 2>&1 &&
  fail "a program never built passed"
grep -q "no build of cl/bad.cl" "$tmp/out" || { cat "$tmp/out"; fail "message"; }
printf 'nosuch\t-DREAL=float\n' >"$tmp/builds"
"$py" "$src/tools/cl_offline.py" "$tmp/builds" --cl-dir "$tmp/cl" >"$tmp/out" 2>&1 &&
  fail "an unknown program passed"
grep -q "line 1" "$tmp/out" || { cat "$tmp/out"; fail "message"; }
echo "cl_offline: good, bad, never-built and unknown programs handled"
