#!/usr/bin/env python3
"""Portability evidence without the hardware: compiles every OpenCL program of cl/ with each
option string the library really builds it with, offline, for GPUs this machine does not
have, and prints what each kernel uses on AMD GPUs.

The option strings come from the library itself: host/program.c appends "<program>\\t<options>"
to the file named by WRN_DUMP_BUILDS for every program it builds, so running the unit tests
with that variable set (tools/test.sh does) collects every combination they exercise.

The table gives per kernel and target the vector and scalar registers, spilled registers,
static local memory (LDS; __local buffers passed as arguments come on top) and scratch bytes
per work-item (spills and private arrays), and with ptxas the NVIDIA registers and spill
stores.

Targets, each as OpenCL C 1.2 with Debian's clang 14 and libclc for the built-in functions:
  gfx1030   AMD RDNA2 (amdgcn--amdhsa, -nogpulib), a code object read back for its resources
  gfx90a    AMD CDNA2 (the same; its VGPR count includes the AGPRs of its unified file)
  nvptx64   NVIDIA PTX (nvptx64--nvidiacl); with ptxas on PATH also registers and spills
  spirv     SPIR-V through llvm-spirv-14, validated by spirv-val. Emitted at -O0: llvm-spirv 14
            mistranslates the structured loops that clang's optimiser makes (spirv-val then
            rejects them), and drivers optimise SPIR-V themselves.

A compile error or an invalid SPIR-V module fails the run (exit 1) with the compiler's
message, the program, the options and the target. Register spills and scratch use are
reported (marked SPILLS) but do not fail it.

Usage: tools/cl_offline.py BUILDS [--cl-dir DIR] [--targets gfx1030,gfx90a,nvptx64,spirv]
                           [--jobs N] [--json FILE]
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

CLANG = "clang-14"
READELF = "llvm-readelf-14"
LLVM_SPIRV = "llvm-spirv-14"
SPIRV_VAL = "spirv-val"
LIBCLC = "/usr/lib/clc"
AMD = {"gfx1030": "gfx1030", "gfx90a": "gfx90a"}
ALL_TARGETS = ["gfx1030", "gfx90a", "nvptx64", "spirv"]
COMMON = ["-x", "cl", "-Xclang", "-finclude-default-header", "-Werror=implicit-function-declaration"]


def read_builds(path, programs):
    """The distinct (program, options) pairs in a WRN_DUMP_BUILDS file, in first-seen order."""
    seen, out = set(), []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            name, sep, opts = line.partition("\t")
            if not sep or name not in programs:
                sys.exit(f"cl_offline: {path} line {n}: not '<program>\\t<options>' for a "
                         f"program of cl/: {line!r}")
            if (name, opts) not in seen:
                seen.add((name, opts))
                out.append((name, opts))
    return out


def full_source(cl_dir, name):
    """What host/program.c compiles: cl/common.h, a #line marker, then cl/<name>.cl."""
    with open(os.path.join(cl_dir, "common.h")) as f:
        common = f.read()
    with open(os.path.join(cl_dir, f"{name}.cl")) as f:
        body = f.read()
    return f'{common}\n#line 1 "{name}.cl"\n{body}'


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def amd_resources(obj):
    """{kernel: {key: value}} from an AMD code object's metadata note."""
    rc, text = run([READELF, "--notes", obj])
    if rc:
        raise RuntimeError(f"{READELF} --notes {obj}: {text}")
    kernels, cur = {}, None
    for line in text.splitlines():
        if re.match(r"^  - ", line):
            cur = {}
        m = re.match(r"^    \.(\w+):\s+(.*)$", line)
        if m and cur is not None:
            cur[m.group(1)] = m.group(2).strip()
            if m.group(1) == "name":
                kernels[m.group(2).strip()] = cur
    return kernels


def ptxas_resources(ptx, arch):
    """{kernel: {registers, spill_stores, smem}} from ptxas -v, or None without ptxas."""
    if not shutil.which("ptxas"):
        return None
    rc, text = run(["ptxas", f"-arch={arch}", "-v", ptx, "-o", os.devnull])
    if rc:
        raise RuntimeError(f"ptxas -arch={arch} {ptx}:\n{text}")
    out, cur = {}, None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            cur = out.setdefault(m.group(1), {})
        m = re.search(r"Function properties for (\w+)", line)
        if m:
            cur = out.setdefault(m.group(1), {})
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes spill stores", line)
        if m:
            cur["spill_stores"] = int(m.group(1))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["registers"] = int(m.group(1))
        m = re.search(r"(\d+) bytes smem", line)
        if m:
            cur["smem"] = int(m.group(1))
    return out


def compile_one(job):
    """Compiles one (program, options, target); returns a result dict (error set on failure)."""
    name, opts, target, src, work, nv_arch = job
    base = os.path.join(work, f"{name}-{abs(hash(opts)) % 10**8}-{target}")
    flags = shlex.split(opts)
    res = {"program": name, "options": opts, "target": target, "error": None, "warnings": "",
           "kernels": {}}
    try:
        if target in AMD:
            cmd = [CLANG, *COMMON, *flags, "-target", "amdgcn--amdhsa", f"-mcpu={AMD[target]}",
                   "-nogpulib", "-Xclang", "-mlink-builtin-bitcode", "-Xclang",
                   f"{LIBCLC}/amdgcn--amdhsa.bc", "-O2", "-c", src, "-o", base + ".o"]
            rc, text = run(cmd)
            if rc:
                raise RuntimeError(text)
            res["warnings"] = text
            res["kernels"] = amd_resources(base + ".o")
        elif target == "nvptx64":
            cmd = [CLANG, *COMMON, *flags, "-target", "nvptx64--nvidiacl", "-nogpulib",
                   "-Xclang", "-mlink-builtin-bitcode", "-Xclang",
                   f"{LIBCLC}/nvptx64--nvidiacl.bc", "-O2", "-S", src, "-o", base + ".ptx"]
            rc, text = run(cmd)
            if rc:
                raise RuntimeError(text)
            res["warnings"] = text
            with open(base + ".ptx") as f:
                entries = re.findall(r"\.entry\s+(\w+)", f.read())
            ptx = ptxas_resources(base + ".ptx", nv_arch)
            res["kernels"] = {k: (ptx or {}).get(k, {}) for k in entries}
            res["ptxas"] = ptx is not None
        else:
            cmd = [CLANG, *COMMON, *flags, "-target", "spir64", "-O0", "-emit-llvm", "-c", src,
                   "-o", base + ".bc"]
            rc, text = run(cmd)
            if rc:
                raise RuntimeError(text)
            res["warnings"] = text
            rc, text = run([LLVM_SPIRV, base + ".bc", "-o", base + ".spv"])
            if rc:
                raise RuntimeError(f"{LLVM_SPIRV}: {text}")
            rc, text = run([SPIRV_VAL, base + ".spv"])
            if rc:
                raise RuntimeError(f"{SPIRV_VAL}: {text}")
            rc, text = run(["spirv-dis", base + ".spv"]) if shutil.which("spirv-dis") else (1, "")
            res["kernels"] = {k: {} for k in re.findall(r'OpEntryPoint Kernel %\w+ "(\w+)"', text)}
    except (RuntimeError, OSError) as e:
        res["error"] = str(e)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("builds", help="a WRN_DUMP_BUILDS file")
    p.add_argument("--cl-dir", default=os.path.join(os.path.dirname(__file__), "..", "cl"))
    p.add_argument("--targets", default=",".join(ALL_TARGETS))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--nvidia-arch", default="sm_90", help="ptxas target when ptxas is present")
    p.add_argument("--json", help="also write every result to this file")
    a = p.parse_args()
    targets = a.targets.split(",")
    for t in targets:
        if t not in ALL_TARGETS:
            sys.exit(f"cl_offline: unknown target '{t}' (known: {', '.join(ALL_TARGETS)})")
    tools = [CLANG] + ([READELF] if any(t in AMD for t in targets) else []) + \
        ([LLVM_SPIRV, SPIRV_VAL] if "spirv" in targets else [])
    missing = [t for t in tools if not shutil.which(t)]
    if missing or not os.path.isdir(LIBCLC):
        sys.exit(f"cl_offline: missing {', '.join(missing + ([LIBCLC] if not os.path.isdir(LIBCLC) else []))}"
                 "; install them with tools/deps.sh --test")
    programs = sorted(f[:-3] for f in os.listdir(a.cl_dir) if f.endswith(".cl"))
    builds = read_builds(a.builds, set(programs))
    never = [n for n in programs if n not in {b[0] for b in builds}]
    if never:
        sys.exit(f"cl_offline: {a.builds} has no build of {', '.join(f'cl/{n}.cl' for n in never)}:"
                 " the unit tests that ran did not build every program")
    work = tempfile.mkdtemp(prefix="wrn-cl-offline-")
    try:
        jobs = []
        for name, opts in builds:
            src = os.path.join(work, f"{name}.cl")
            with open(src, "w") as f:
                f.write(full_source(a.cl_dir, name))
            jobs += [(name, opts, t, src, work, a.nvidia_arch) for t in targets]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            results = list(ex.map(compile_one, jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, builds, targets)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    errors = [r for r in results if r["error"]]
    for r in errors:
        print(f"\nERROR: cl/{r['program']}.cl with '{r['options']}' for {r['target']}:\n"
              f"{r['error']}", file=sys.stderr)
    n_k = sum(len(r["kernels"]) for r in results if not r["error"])
    print(f"\ncl_offline: {len(builds)} program builds x {len(targets)} targets = {len(results)} "
          f"compiles, {n_k} kernels; {len(errors)} failed")
    return 1 if errors else 0


def report(results, builds, targets):
    by = {(r["program"], r["options"], r["target"]): r for r in results}
    warned = [r for r in results if r["warnings"] and not r["error"]]
    for r in warned:
        print(f"warnings: cl/{r['program']}.cl with '{r['options']}' for {r['target']}:\n"
              f"{r['warnings']}\n")
    amd = [t for t in targets if t in AMD]
    for name, opts in builds:
        print(f"\ncl/{name}.cl  {opts}")
        for t in targets:
            r = by[(name, opts, t)]
            status = "FAILED" if r["error"] else "ok"
            extra = f", {len(r['kernels'])} kernels" if not r["error"] else ""
            print(f"  {t:8s} {status}{extra}")
        if not amd:
            continue
        head = f"  {'kernel':26s}" + "".join(
            f" | {t}: {'VGPR':>4s} {'SGPR':>4s} {'spills':>6s} {'LDS B':>6s} {'scratch':>7s}"
            for t in amd)
        nv = by.get((name, opts, "nvptx64"))
        show_nv = nv and nv.get("ptxas") and not nv["error"]
        if show_nv:
            head += f" | nvptx: {'regs':>4s} {'spill B':>7s}"
        print(head)
        kernels = []
        for t in amd:
            for k in by[(name, opts, t)]["kernels"]:
                if k not in kernels:
                    kernels.append(k)
        for k in kernels:
            line, spills = f"  {k:26s}", False
            for t in amd:
                d = by[(name, opts, t)]["kernels"].get(k, {})
                scratch = int(d.get("private_segment_fixed_size", 0))
                sp = int(d.get("vgpr_spill_count", 0)) + int(d.get("sgpr_spill_count", 0))
                spills |= sp > 0 or scratch > 0
                line += (f" | {t}: {d.get('vgpr_count', '?'):>4s} {d.get('sgpr_count', '?'):>4s} "
                         f"{sp:>6d} {d.get('group_segment_fixed_size', '?'):>6s} {scratch:>7d}")
            if show_nv:
                d = nv["kernels"].get(k, {})
                line += f" | nvptx: {d.get('registers', '?'):>4} {d.get('spill_stores', 0):>7}"
                spills |= d.get("spill_stores", 0) > 0
            print(line + ("  SPILLS" if spills else ""))


if __name__ == "__main__":
    sys.exit(main())
