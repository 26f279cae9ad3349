#!/usr/bin/env python3
"""The PyTorch peer for tools/bench-peer.sh: training steps of the same WRN-d-k (this
repository's tools/wrn_torch.WRN, the architecture wrn builds) with the recipe's optimiser
(SGD, Nesterov momentum 0.9, weight decay 5e-4) on synthetic CIFAR-sized data, timed the way
wrn bench times its steps: warm-up steps first, then each timed step ends when the device has
finished it (the loss is read back). Prints one JSON line:

  {"model": "WRN-16-4", "params": ..., "device": "cpu", "batch": 128, "threads": 2,
   "steps": 10, "step_ms": 1801.2, "img_per_s": 71.1, "peak_mem_gib": null, "tf32": 0, ...}

Usage: tools/torch_peer.py [--depth 16] [--k 4] [--batch 128] [--steps 10] [--warmup 3]
                           [--device cpu|cuda] [--threads N] [--tf32]
fp32 throughout; TF32 stays off on CUDA unless --tf32 (wrn computes in fp32).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.exit(f"torch_peer.py: PyTorch is not installed ({e}); on Debian: apt-get install "
             "python3-torch, run with /usr/bin/python3")
import wrn_torch  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--tf32", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = True
    model = wrn_torch.WRN(a.depth, a.k).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    # Random uint8 images through the recipe's normalisation, as wrn bench feeds its steps.
    g = torch.Generator().manual_seed(a.seed)
    img = torch.randint(0, 256, (a.batch, 3, 32, 32), generator=g, dtype=torch.uint8)
    x = wrn_torch.normalize(img, wrn_torch.RECIPE_META).to(dev)
    y = (torch.arange(a.batch) % 10).to(dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return float(loss)  # waits for the device, once per step

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], None
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    print(json.dumps({
        "model": f"WRN-{a.depth}-{a.k}", "params": sum(t.numel() for t in model.parameters()),
        "device": a.device, "batch": a.batch, "threads": a.threads, "steps": a.steps,
        "warmup": a.warmup, "tf32": int(a.tf32), "torch": torch.__version__,
        "step_ms": round(ms, 2), "img_per_s": round(a.batch / ms * 1e3, 1),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if dev.type == "cuda" else None, "loss": loss}))


if __name__ == "__main__":
    main()
