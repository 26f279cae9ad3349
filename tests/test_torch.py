#!/usr/bin/env python3
"""wrn <-> PyTorch through tools/wrn_torch.py, against the real wrn binary.

1. wrn trains a WRN-10-1 for a few steps on the bundled CIFAR-10 sample; PyTorch loads the
   checkpoint and must give the test loss and accuracy that wrn itself logged (full precision)
   and that wrn eval prints, to 1e-4 relative.
2. The other way: the PyTorch model takes one SGD step (weights and BN running statistics
   change), is written back as a wrn checkpoint, and wrn eval must give PyTorch's loss and
   accuracy for it to 1e-4 relative; wrn train --init starts from it.
3. The checkpoint records what reproduces the inputs (normalisation, scale, BN constants,
   image size), and wrn_torch refuses a checkpoint of another shape with a message.

Needs PyTorch (Debian: python3-torch); without it it says so and exits 77, which ctest reports
as skipped. Environment: WRN_CLI (the wrn binary), WRN_SOURCE_DIR (the source tree).
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
SRC = os.environ.get("WRN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(SRC, "tools"))

try:
    import torch
except ImportError as e:
    print(f"SKIP: PyTorch is not installed for {sys.executable} ({e}); "
          "on Debian: apt-get install python3-torch")
    sys.exit(SKIP)

import numpy as np  # noqa: E402
import wrn_torch  # noqa: E402

CLI = os.environ.get("WRN_CLI", "wrn")
SAMPLE = os.path.join(SRC, "data", "cifar10-sample")
TEST_N = 500
RTOL = 1e-4
failures = []


def check(what, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
    if not ok:
        failures.append(what)


def close(what, got, want, rtol=RTOL):
    ok = math.isfinite(got) and abs(got - want) <= rtol * abs(want)
    check(what, ok, f"PyTorch {got:.9g}, wrn {want:.9g}, relative difference "
                    f"{abs(got - want) / abs(want):.2e} (allowed {rtol:g})")


def wrn(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"FAIL: wrn {' '.join(args)} exited {r.returncode}")
    return r.stdout


def wrn_eval(ckpt):
    out = wrn("eval", "--checkpoint", ckpt, "--data", SAMPLE, "--test-limit", str(TEST_N))
    m = re.search(r"loss ([0-9.]+), accuracy ([0-9.]+)%", out)
    if not m:
        raise SystemExit(f"FAIL: no loss/accuracy in wrn eval's output:\n{out}")
    return float(m.group(1)), float(m.group(2))


def main():
    tmp = tempfile.mkdtemp(prefix="wrn-torch-")
    try:
        run = os.path.join(tmp, "run")
        # A few steps: 32 of batch 64 over 1,024 images, with dropout so the block has it.
        wrn("train", "--model", "wrn-10-1", "--data", SAMPLE, "--train-limit", "1024",
            "--test-limit", str(TEST_N), "--epochs", "2", "--batch", "64", "--dropout", "0.3",
            "--progress", "off", "--out", run)
        ckpt = os.path.join(run, "last.safetensors")
        with open(os.path.join(run, "log.jsonl")) as f:
            last = json.loads(f.read().splitlines()[-1])

        tensors, meta = wrn_torch.read_safetensors(ckpt)
        want = {"input_shape": "3,32,32", "input_scale": "255", "bn_eps": "1e-05",
            "bn_momentum": "0.1"}
        for k, v in want.items():
            check(f"metadata {k}", meta.get(k) == v, f"{meta.get(k)!r}")
        check("metadata input_mean", [float(x) for x in meta["input_mean"].split(",")] ==
              [125.3, 123.0, 113.9], meta.get("input_mean"))
        check("metadata input_std", [float(x) for x in meta["input_std"].split(",")] ==
              [63.0, 62.1, 66.7], meta.get("input_std"))

        # 1. wrn -> PyTorch.
        model, meta = wrn_torch.load(ckpt)
        images, labels = wrn_torch.read_cifar_test(SAMPLE, TEST_N)
        loss, acc = wrn_torch.evaluate(model, images, labels, meta)
        print(f"PyTorch on the wrn checkpoint: loss {loss:.6f}, accuracy {acc:.2f}%")
        check("the run learned something", acc > 15.0, f"{acc:.2f}% (chance 10%)")
        close("test loss vs wrn's log", loss, last["test_loss"])
        close("test accuracy vs wrn's log", acc, last["test_acc"])
        e_loss, e_acc = wrn_eval(ckpt)
        close("test loss vs wrn eval", loss, e_loss)
        close("test accuracy vs wrn eval", acc, e_acc)

        # 2. PyTorch -> wrn: one SGD step in training mode changes weights and BN statistics.
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        x = wrn_torch.normalize(images[:64], meta)
        y = torch.as_tensor(labels[:64])
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        model.eval()
        loss2, acc2 = wrn_torch.evaluate(model, images, labels, meta)
        check("the step changed the model", abs(loss2 - loss) > 1e-6, f"{loss:.6f} -> {loss2:.6f}")
        back = os.path.join(tmp, "from_torch.safetensors")
        wrn_torch.save(model, back)
        e_loss2, e_acc2 = wrn_eval(back)
        close("wrn eval of the PyTorch model: loss", loss2, e_loss2)
        close("wrn eval of the PyTorch model: accuracy", acc2, e_acc2)
        # The running statistics went across too (wrn eval uses them).
        t2, _ = wrn_torch.read_safetensors(back)
        rv = model.group1.block0.bn0.running_var.detach().numpy()
        check("running_var written", np.array_equal(t2["group1.block0.bn0.running_var"], rv))
        check("conv names without .weight", "group1.block0.convdim" in t2 and
              "conv0" in t2 and "conv0.weight" not in t2)
        # ... and wrn train starts from it.
        wrn("train", "--model", "wrn-10-1", "--data", SAMPLE, "--train-limit", "128",
            "--test-limit", "64", "--epochs", "1", "--batch", "64", "--progress", "off",
            "--init", back, "--out", os.path.join(tmp, "init"))
        check("wrn train --init from the PyTorch model", True)

        # The command line, both ways.
        pt = os.path.join(tmp, "m.pt")
        assert wrn_torch.main(["to-torch", back, pt]) == 0
        again = os.path.join(tmp, "again.safetensors")
        assert wrn_torch.main(["to-wrn", pt, again]) == 0
        t3, m3 = wrn_torch.read_safetensors(again)
        check("to-torch then to-wrn keeps every tensor",
              sorted(t3) == sorted(k for k in t2) and
              all(np.array_equal(t3[k], t2[k]) for k in t2), f"{len(t3)} tensors")
        check("to-wrn keeps the model", m3.get("--model") == "wrn-10-1")

        # 3. A checkpoint of another model is refused with the tensor named.
        other = os.path.join(tmp, "other.safetensors")
        t2["group1.block0.convdim"] = np.zeros((32, 8, 1, 1), np.float32)
        wrn_torch.write_safetensors(other, t2, {"--model": "wrn-10-1", "--classes": "10"})
        try:
            wrn_torch.load(other)
            check("a wrong shape is refused", False)
        except ValueError as err:
            check("a wrong shape is refused", "group1.block0.convdim" in str(err), str(err))
        check("wrn_torch.py eval exits 1 on a missing file",
              wrn_torch.main(["eval", os.path.join(tmp, "none"), "--data", SAMPLE]) == 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
