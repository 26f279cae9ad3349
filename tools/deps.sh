#!/usr/bin/env bash
# Installs what wrn needs on Debian 12, only what is missing, and says what it installs
# (Open MPI for multi-process training and its tests).
# Usage: tools/deps.sh [--test]   (--test adds what the test suite and CI's checks need:
# cmocka; PyTorch and torchvision for the interop tests; rsvg-convert for PNG plots; clang,
# libclc, llvm-spirv and spirv-tools for the offline kernel compiles of tools/cl_offline.py;
# libclang-rt-14-dev for clang's libFuzzer, tools/fuzz.sh). libmatio-dev (the SVHN reader)
# and libturbojpeg0-dev (image folders) are optional for the build but installed here.
set -euo pipefail
pkgs=(cmake gcc make pkg-config ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1
      pocl-opencl-icd libclblast-dev libclfft-dev clinfo libmatio-dev libturbojpeg0-dev
      libopenmpi-dev openmpi-bin)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(libcmocka-dev python3-torch python3-torchvision librsvg2-bin binutils clang-14 llvm-14
         libclc-14 llvm-spirv-14 spirv-tools libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "deps: all present (${pkgs[*]})"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
