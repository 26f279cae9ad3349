#!/usr/bin/env python3
"""wrn's bottleneck ResNets against PyTorch, with the same random weights.

For torchvision's wide_resnet50_2 (as wrn-50-2, 64x64 inputs, batch 2, 1000 classes) and for
a pre-activation ResNet-164 defined here (He et al. 2016, bottlenecks, CIFAR, 10 classes,
32x32, batch 2): random weights and BN statistics are written as a safetensors file under the
PyTorch state-dict names (num_batches_tracked included, as torchvision saves it; wrn does not
read it), tests/torch_probe.c loads them in wrn (fp32) and computes the inference logits
(running statistics), then one training step's logits, mean cross-entropy, every parameter's
gradient and the updated running statistics. PyTorch computes the same in float64 (the
reference) and in float32 (to show what fp32 rounding alone gives). Each tensor must agree
with the float64 reference to

    max |wrn - ref| <= TOL * max |ref|      (per tensor, TOL below)

and the largest relative error of each kind is printed. The parameter counts of the
PyTorch models are checked against the figures test_models.c holds wrn to.

Needs PyTorch and torchvision (Debian: python3-torch, python3-torchvision); without them it
says so and exits 77, which ctest reports as skipped. Environment: WRN_TORCH_PROBE (the
probe binary), WRN_SOURCE_DIR (the source tree).
"""
import os
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
# fp32 against float64, relative to each tensor's largest magnitude. wrn accumulates in
# fp32 in a different order than PyTorch; through 50-164 layers of batch-norm with batch 2
# the measured errors stay near 1e-5 for logits and 1e-4 for gradients (printed below).
TOL = {"eval_logits": 1e-4, "logits": 1e-4, "loss": 1e-5, "grad": 2e-3, "running": 1e-4}
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
        torch_convert.to_safetensors(pth, wpath)
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
    opath = os.path.join(tmp, f"{model_name}.out.safetensors")
    r = subprocess.run([PROBE, model_name, str(classes), str(side), str(batch), wpath, ipath,
                        opath, "f32"], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"FAIL: torch_probe {model_name} exited {r.returncode}")
    ours, _ = wrn_torch.read_safetensors(opath)
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
    return {k: v.detach().double().numpy() for k, v in out.items()}


def compare(name, model, classes, side, batch, want_params, tmp, seed, arch=None):
    print(f"--- {name}: {classes} classes, {side}x{side}, batch {batch}")
    torch.manual_seed(seed)
    randomize(model, seed)
    params, x, labels, ours = probe(name, model, classes, side, batch, tmp, seed, arch)
    check(f"{name} parameter count", params == want_params,
          f"PyTorch {params:,}, expected {want_params:,}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ref = reference(model, x, labels, torch.float64)
    model.load_state_dict(state)
    ref32 = reference(model, x, labels, torch.float32)
    model.load_state_dict(state)
    missing = sorted(set(ref) - set(ours))
    check(f"{name}: wrn gives every tensor PyTorch has", not missing,
          f"missing {missing[:5]}" if missing else f"{len(ref)} tensors")
    worst = {}
    for k, r in ref.items():
        if k not in ours:
            continue
        kind = k.split(".")[0]
        o = ours[k].reshape(r.shape)
        scale = max(np.abs(r).max(), 1e-30)
        err = np.abs(o - r).max() / scale
        err32 = np.abs(ref32[k].reshape(r.shape) - r).max() / scale
        if err > TOL[kind]:
            check(f"{name} {k}", False, f"relative error {err:.3g} > {TOL[kind]:g} "
                                        f"(PyTorch fp32: {err32:.3g})")
        w = worst.get(kind)
        if w is None or err > w[0]:
            worst[kind] = (err, k, err32)
    for kind, (err, k, err32) in sorted(worst.items()):
        check(f"{name} {kind}", err <= TOL[kind],
              f"largest relative error {err:.3g} at {k} (allowed {TOL[kind]:g}; PyTorch fp32 "
              f"against float64 there: {err32:.3g})")
    print(f"    loss: wrn {ours['loss'][0]:.9g}, PyTorch float64 {ref['loss'][0]:.9g}")


def main():
    tmp = tempfile.mkdtemp(prefix="wrn-torch-models-")
    try:
        compare("preresnet-164", PreActResNet(164, 10), 10, 32, 2, 1703258, tmp, 1)
        # 1001 layers only for the count: the definition must give the figure wrn builds.
        n1001 = sum(p.numel() for p in PreActResNet(1001, 10).parameters())
        check("preresnet-1001 parameter count", n1001 == 10327706,
              f"PyTorch {n1001:,}, expected 10,327,706")
        wide = torchvision.models.wide_resnet50_2()
        compare("wrn-50-2", wide, 1000, 64, 2, 68883240, tmp, 2, "wide_resnet50_2")
        r50 = sum(p.numel() for p in torchvision.models.resnet50().parameters())
        check("resnet-50 parameter count", r50 == 25557032, f"torchvision {r50:,}")
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
