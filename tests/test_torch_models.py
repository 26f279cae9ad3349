#!/usr/bin/env python3
"""wrn's bottleneck ResNets against PyTorch, with the same random weights.

For torchvision's wide_resnet50_2 (as wrn-50-2, 64x64 inputs, batch 2, 1000 classes) and for
a pre-activation ResNet-164 defined here (He et al. 2016, bottlenecks, CIFAR, 10 classes,
32x32, batch 2): random weights and BN statistics are written as a safetensors file under the
PyTorch state-dict names (num_batches_tracked included, as torchvision saves it; wrn does not
read it), tests/torch_probe.c loads them in wrn (fp32) and computes the inference logits
(running statistics), then one training step's logits, mean cross-entropy, every parameter's
gradient and the updated running statistics, once in fp32 and once in float64. PyTorch
computes the same in float64 (the reference) and in float32 (what fp32 rounding alone
gives). Each tensor is compared as

    max |wrn - ref| / max |ref|      (per tensor; the bounds at TOL64, TOL, FP32_MARGIN)

and the largest error of each kind is printed. The parameter counts of the
PyTorch models are checked against the figures test_models.c holds wrn to.

Needs PyTorch and torchvision (Debian: python3-torch, python3-torchvision); without them it
says so and exits 77, which ctest reports as skipped. Environment: WRN_TORCH_PROBE (the
probe binary), WRN_SOURCE_DIR (the source tree).
"""
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
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: PyTorch is not installed for {sys.executable} ({e}); "
          "on Debian: apt-get install python3-torch")
    sys.exit(SKIP)
try:
    import torchvision
except ImportError as e:
    print(f"SKIP: torchvision is not installed for {sys.executable} ({e}); "
          "on Debian: apt-get install python3-torchvision")
    sys.exit(SKIP)

import numpy as np  # noqa: E402
import torch_convert  # noqa: E402
import wrn_torch  # noqa: E402

PROBE = os.environ.get("WRN_TORCH_PROBE", "torch_probe")
CLI = os.environ.get("WRN_CLI")
# Errors are relative to each tensor's largest magnitude. wrn in float64 against PyTorch in
# float64 must agree to TOL64 for every tensor: the same arithmetic up to summation order.
# wrn in fp32 against the float64 reference must be within TOL[kind] or FP32_MARGIN times
# PyTorch's own fp32 error for that tensor, whichever is larger. The fp32 gradients are held
# to that together (the norm of all errors over the norm of all gradients): one tensor's
# gradient can move by several percent in either fp32 computation when a pre-activation next
# to 0 lands on the other side of a ReLU (PyTorch's fp32 gradients of preresnet-164 are up
# to 25% off its float64 ones in single tensors), which the float64 check rules out.
TOL64 = 1e-8
# Measured over seeds (wrn fp32 / PyTorch fp32 against float64): logits up to 1.7e-4 /
# 6.6e-5, loss 8e-6 / 2e-6, running statistics 1.5e-4 / 5e-5, all gradients together
# 2.3-2.6% / 0.2-2.6% (wrn-50-2) and 4.5-5.8% / 3.0-3.3% (preresnet-164).
TOL = {"eval_logits": 1e-4, "logits": 5e-4, "loss": 5e-5, "grad": 0.1, "running": 5e-4}
FP32_MARGIN = 5
failures = []


def check(what, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
    if not ok:
        failures.append(what)


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride), BN-ReLU-conv1x1 (x4), plus the identity or a
    1x1 projection of the pre-activated input."""

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        if stride != 1 or c_in != 4 * planes:
            self.shortcut = nn.Conv2d(c_in, 4 * planes, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        sc = self.shortcut(o) if hasattr(self, "shortcut") else x
        y = self.conv1(o)
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + sc


class PreActResNet(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 9
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        c_in = 16
        for g in range(1, 4):
            planes = 16 << (g - 1)
            blocks = []
            for i in range(n):
                blocks.append(PreActBottleneck(c_in, planes, 2 if g > 1 and i == 0 else 1))
                c_in = 4 * planes
            setattr(self, f"layer{g}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(c_in)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def randomize(model, seed):
    """Weights as PyTorch initialises them, BN affine parameters and running statistics away
    from 1 / 0, all rounded to float32 so that both sides start from the same values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.float().double())


def probe(model_name, model, classes, side, batch, tmp, seed, arch):
    params = sum(p.numel() for p in model.parameters())
    wpath = os.path.join(tmp, f"{model_name}.safetensors")
    if arch:
        # The way a torchvision checkpoint reaches wrn: torch.save, then tools/torch_convert.py;
        # and back: the converted file must load strictly into torchvision's model again.
        pth = os.path.join(tmp, f"{model_name}.pth")
        torch.save(model.state_dict(), pth)
        torch_convert.to_safetensors(pth, wpath, model_name)
        back = os.path.join(tmp, f"{model_name}.back.pth")
        torch_convert.to_pth(wpath, back, arch)
        again = torch.load(back)
        same = all(torch.equal(again[k].float(), v.float()) for k, v in model.state_dict().items()
                   if not k.endswith("num_batches_tracked"))
        check(f"{model_name}: .pth -> safetensors -> .pth keeps every tensor",
              same and set(again) == set(model.state_dict()))
    else:
        state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        weights = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v)
                   for k, v in state.items()}
        wrn_torch.write_safetensors(wpath, weights)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(batch, 3, side, side)).astype(np.float32).astype(np.float64)
    labels = rng.integers(0, classes, size=batch).astype(np.int32)
    ipath = os.path.join(tmp, f"{model_name}.input.safetensors")
    wrn_torch.write_safetensors(ipath, {"x": x, "labels": labels})
    ours = {}
    for prec in ("f32", "f64"):
        opath = os.path.join(tmp, f"{model_name}.out.{prec}.safetensors")
        r = subprocess.run([PROBE, model_name, str(classes), str(side), str(batch), wpath, ipath,
                            opath, prec], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            raise SystemExit(f"FAIL: torch_probe {model_name} {prec} exited {r.returncode}")
        ours[prec], _ = wrn_torch.read_safetensors(opath)
    return params, x, labels, ours


def reference(model, x, labels, dtype):
    """Inference logits, then one training step: logits, loss, grads, running statistics."""
    m = model.to(dtype)
    xt = torch.from_numpy(x).to(dtype)
    yt = torch.from_numpy(labels).long()
    m.eval()
    with torch.no_grad():
        eval_logits = m(xt)
    m.train()
    m.zero_grad()
    logits = m(xt)
    loss = F.cross_entropy(logits, yt)
    loss.backward()
    out = {"eval_logits": eval_logits, "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad
    for k, b in m.named_buffers():
        if not k.endswith("num_batches_tracked"):
            out["running." + k] = b
    # Copies: the model's own tensors change when it is reloaded for the next precision.
    return {k: v.detach().double().numpy().copy() for k, v in out.items()}


def compare(name, make, classes, side, batch, want_params, tmp, seed, arch=None):
    print(f"--- {name}: {classes} classes, {side}x{side}, batch {batch}")
    torch.manual_seed(seed)  # the same weights on every run
    model = make()
    randomize(model, seed)
    params, x, labels, ours = probe(name, model, classes, side, batch, tmp, seed, arch)
    check(f"{name} parameter count", params == want_params,
          f"PyTorch {params:,}, expected {want_params:,}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ref = reference(model, x, labels, torch.float64)
    model.load_state_dict(state)
    ref32 = reference(model, x, labels, torch.float32)
    model.load_state_dict(state)
    missing = sorted(set(ref) - set(ours["f32"]))
    check(f"{name}: wrn gives every tensor PyTorch has", not missing,
          f"missing {missing[:5]}" if missing else f"{len(ref)} tensors")
    worst = {}
    sums = [0.0, 0.0, 0.0]  # squared fp32 gradient errors: wrn, PyTorch; squared reference
    for k, r in ref.items():
        if k not in ours["f32"]:
            continue
        kind = k.split(".")[0]
        scale = max(np.abs(r).max(), 1e-30)
        e64 = np.abs(ours["f64"][k].reshape(r.shape) - r).max() / scale
        e32 = np.abs(ours["f32"][k].reshape(r.shape) - r).max() / scale
        t32 = np.abs(ref32[k].reshape(r.shape) - r).max() / scale
        if kind == "grad":  # fp32 gradients: judged together below
            d32 = ours["f32"][k].reshape(r.shape) - r
            sums[0] += float((d32 * d32).sum())
            sums[1] += float(((ref32[k].reshape(r.shape) - r) ** 2).sum())
            sums[2] += float((r * r).sum())
        allowed = float("inf") if kind == "grad" else max(TOL[kind], FP32_MARGIN * t32)
        if e64 > TOL64 or e32 > allowed:
            check(f"{name} {k}", False, f"relative error in float64 {e64:.3g} (allowed "
                  f"{TOL64:g}), in fp32 {e32:.3g} (allowed {allowed:.3g}; PyTorch fp32: {t32:.3g})")
        w = worst.setdefault(kind, [0, "", 0, "", 0])
        if e64 > w[0]:
            w[0], w[1] = e64, k
        if e32 > w[2]:
            w[2], w[3], w[4] = e32, k, t32
    for kind, (e64, k64, e32, k32, t32) in sorted(worst.items()):
        check(f"{name} {kind}", True,
              f"float64: largest relative error {e64:.3g} ({k64}); fp32: {e32:.3g} ({k32}; "
              f"PyTorch's fp32 there: {t32:.3g})")
    g32, t32 = (sums[0] / sums[2]) ** 0.5, (sums[1] / sums[2]) ** 0.5
    allowed = max(TOL["grad"], FP32_MARGIN * t32)
    check(f"{name} fp32 gradients together", g32 <= allowed,
          f"|wrn - ref| / |ref| over all {sum(k.startswith('grad.') for k in ref)} gradient "
          f"tensors {g32:.3g} (allowed {allowed:.3g}; PyTorch fp32: {t32:.3g})")
    print(f"    loss: wrn fp32 {ours['f32']['loss'][0]:.9g}, float64 {ours['f64']['loss'][0]:.12g}; "
          f"PyTorch float64 {ref['loss'][0]:.12g}")


def eval_converted(tmp):
    """torchvision weights through tools/torch_convert.py --model into wrn eval on an image
    folder, against torchvision's own Resize + CenterCrop + Normalize on the same files."""
    from PIL import Image
    import torchvision.transforms as T
    torch.manual_seed(3)
    model = torchvision.models.wide_resnet50_2()
    randomize(model, 3)
    model.eval()
    pth, st = os.path.join(tmp, "tv.pth"), os.path.join(tmp, "tv.safetensors")
    torch.save(model.state_dict(), pth)
    torch_convert.to_safetensors(pth, st, "wrn-50-2", image_size=64)
    data = os.path.join(tmp, "imagenet")
    os.makedirs(os.path.join(data, "train"))
    classes = [f"n{i:08d}" for i in range(1000)]
    for c in classes:
        os.makedirs(os.path.join(data, "val", c))
    rng = np.random.default_rng(4)
    files = []
    for k, c in enumerate((classes[7], classes[500])):
        y, x = np.mgrid[0:90, 0:120]
        img = np.stack([x * 2, y * 2, (x + y) % 256], -1) + rng.normal(0, 8, (90, 120, 3))
        path = os.path.join(data, "val", c, f"img{k}.JPEG")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=95)
        files.append((path, classes.index(c)))
    r = subprocess.run([CLI, "eval", "--checkpoint", st, "--data", data, "--batch", "2"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        check("wrn eval of converted torchvision weights", False, f"exit {r.returncode}")
        return
    m = re.search(r"loss ([0-9.]+), accuracy", r.stdout)
    tf = T.Compose([T.Resize(73), T.CenterCrop(64), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    x = torch.stack([tf(Image.open(f).convert("RGB")) for f, _ in files])
    with torch.no_grad():
        ref = F.cross_entropy(model(x), torch.tensor([c for _, c in files])).item()
    got = float(m.group(1)) if m else float("nan")
    # The two resamplers differ by a level or two per pixel; the loss by well under 1%.
    check("wrn eval of torchvision weights (converted, image folder) against torchvision",
          abs(got - ref) <= 0.01 * abs(ref), f"wrn {got:.4f}, torchvision {ref:.4f}")


def main():
    tmp = tempfile.mkdtemp(prefix="wrn-torch-models-")
    try:
        compare("preresnet-164", lambda: PreActResNet(164, 10), 10, 32, 2, 1703258, tmp, 1)
        # 1001 layers only for the count: the definition must give the figure wrn builds.
        n1001 = sum(p.numel() for p in PreActResNet(1001, 10).parameters())
        check("preresnet-1001 parameter count", n1001 == 10327706,
              f"PyTorch {n1001:,}, expected 10,327,706")
        compare("wrn-50-2", torchvision.models.wide_resnet50_2, 1000, 64, 2, 68883240, tmp, 2,
                "wide_resnet50_2")
        if CLI:
            eval_converted(tmp)
        else:
            print("note: WRN_CLI is not set; the wrn eval check is not run")
        r50 = sum(p.numel() for p in torchvision.models.resnet50().parameters())
        check("resnet-50 parameter count", r50 == 25557032, f"torchvision {r50:,}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
