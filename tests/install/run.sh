#!/usr/bin/env bash
# Installs the build in BUILD_DIR to a temporary prefix, then builds tests/install/consumer.c
# against it the two ways a user would, and runs each program:
#   pkg-config: `pkg-config --cflags --libs wrn` (links libwrn.so), and the static archive with
#               the private dependencies from `pkg-config --static --libs wrn`;
#   CMake:      find_package(wrn) with wrn::wrn and wrn::wrn_static.
# Checks that the shared programs need libwrn.so.<soversion> and the static ones do not, and
# that the installed tree still works after it is moved (both descriptions are relocatable).
# Usage: tests/install/run.sh BUILD_DIR LIBDIR   (LIBDIR: CMAKE_INSTALL_LIBDIR, e.g. lib)
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd); libdir=${2:?install libdir}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/wrn-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
fail() { echo "install test: $*" >&2; exit 1; }
needs_libwrn() { readelf -d "$1" | grep -q 'NEEDED.*\[libwrn\.so'; }

cmake --install "$build" --prefix "$tmp/first" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
# Moving the prefix after installing must not break anything.
mv "$tmp/first" "$tmp/prefix"
prefix=$tmp/prefix
for f in "$libdir/libwrn.a" "$libdir/pkgconfig/wrn.pc" "$libdir/cmake/wrn/wrnConfig.cmake" \
         include/wrn/wrn.h include/wrn/wrn_net.h include/wrn/wrn_models.h include/wrn/wrn_io.h \
         bin/wrn; do
  [[ -e "$prefix/$f" ]] || fail "$prefix/$f was not installed"
done
soname=$(readelf -d "$prefix/$libdir/libwrn.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ "$soname" == libwrn.so.* ]] || fail "libwrn.so has no soname (got '$soname')"
[[ -e "$prefix/$libdir/$soname" ]] || fail "the soname $soname is not installed"
echo "install test: installed to $prefix; libwrn.so has soname $soname"

export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
pc_prefix=$(realpath -m "$(pkg-config --variable=prefix wrn)")
[[ "$pc_prefix" == "$(realpath "$prefix")" ]] || fail "wrn.pc says prefix $pc_prefix, not $prefix"
# Shared: plain pkg-config.
"$cc" -std=c11 -o "$tmp/pc_shared" "$here/consumer.c" $(pkg-config --cflags --libs wrn) -lm
needs_libwrn "$tmp/pc_shared" || fail "pc_shared does not link libwrn.so"
# Static: the archive, preferred by the linker, and the private dependencies pkg-config lists
# with --static (--as-needed drops the libwrn.so that its -lwrn would add too).
"$cc" -std=c11 -o "$tmp/pc_static" "$here/consumer.c" $(pkg-config --cflags wrn) \
  -Wl,--as-needed -Wl,-Bstatic -lwrn -Wl,-Bdynamic $(pkg-config --static --libs wrn) -lm
needs_libwrn "$tmp/pc_static" && fail "pc_static links libwrn.so instead of libwrn.a"
LD_LIBRARY_PATH="$prefix/$libdir" "$tmp/pc_shared"
"$tmp/pc_static"

# CMake package.
cmake -S "$here" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  >"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log"; fail "configuring the find_package consumer failed"; }
cmake --build "$tmp/cm" >>"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log"; fail "building it failed"; }
needs_libwrn "$tmp/cm/consumer_shared" || fail "wrn::wrn does not link libwrn.so"
needs_libwrn "$tmp/cm/consumer_static" && fail "wrn::wrn_static links libwrn.so"
"$tmp/cm/consumer_shared"
"$tmp/cm/consumer_static"
echo "install test: pkg-config and find_package consumers, shared and static, all ran"
