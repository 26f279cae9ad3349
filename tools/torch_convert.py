#!/usr/bin/env python3
"""torchvision checkpoints <-> wrn safetensors files, for resnet-50 and wrn-50-2.

wrn builds torchvision's ResNets (``--model resnet-50``, ``--model wrn-50-2`` =
``wide_resnet50_2``) under torchvision's state-dict names (``conv1.weight``, ``bn1.*``,
``layer1.0.conv2.weight``, ``layer1.0.downsample.1.running_var``, ..., ``fc.bias``), so a
conversion only changes the container:

    tools/torch_convert.py to-safetensors wide_resnet50_2-9ba9bcbe.pth wrn50_2.safetensors \
            [--model wrn-50-2]
        a torch.save'd state dict (or {"state_dict": ...}, or a whole model) -> safetensors
        (float32); with --model it carries the metadata wrn eval needs (model, classes,
        image size, ImageNet mean/std): wrn eval --checkpoint wrn50_2.safetensors --data DIR
    tools/torch_convert.py to-pth runs/x/best.safetensors model.pth [--arch wide_resnet50_2]
        a wrn checkpoint -> a state dict for torchvision's model (momentum.* dropped,
        num_batches_tracked added as 0); with --arch it is loaded into the torchvision model
        (strict) first, so a mismatch is reported here, not later

BN's ``num_batches_tracked`` counters are left out of the safetensors file: wrn keeps a fixed
BN momentum (0.1, torchvision's default) and does not read them. Needs PyTorch (Debian:
python3-torch); --arch needs torchvision (python3-torchvision).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wrn_torch  # noqa: E402


def _torch():
    try:
        import torch
    except ImportError as e:
        raise SystemExit(f"torch_convert: PyTorch is needed ({e}); on Debian: "
                         "apt-get install python3-torch")
    return torch


def to_safetensors(src, dst, model=None, image_size=224):
    torch = _torch()
    obj = torch.load(src, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise SystemExit(f"torch_convert: {src} holds a {type(obj).__name__}, not a state dict")
    out, skipped = {}, 0
    for k, v in obj.items():
        k = k[len("module."):] if k.startswith("module.") else k  # DataParallel checkpoints
        if k.endswith("num_batches_tracked"):
            skipped += 1
            continue
        if not hasattr(v, "numpy") or not v.is_floating_point():
            raise SystemExit(f"torch_convert: {src}: tensor '{k}' is not floating point")
        out[k] = v.detach().cpu().float().numpy()
    meta = {"source": os.path.basename(src)}
    if model:
        # What wrn eval / wrn train --init read to rebuild the network.
        fc = out.get("fc.weight")
        meta.update({"--model": model, "--classes": str(fc.shape[0] if fc is not None else 1000),
                     "--dropout": "0", "--image-size": str(image_size),
                     "input_mean": "123.675,116.28,103.53", "input_std": "58.395,57.12,57.375",
                     "input_scale": "255"})
    wrn_torch.write_safetensors(dst, out, meta)
    print(f"{dst}: {len(out)} tensors, {sum(a.size for a in out.values()):,} values "
          f"({skipped} num_batches_tracked left out)")


def to_pth(src, dst, arch):
    torch = _torch()
    tensors, _ = wrn_torch.read_safetensors(src)
    state = {}
    for k, v in sorted(tensors.items()):
        if k.startswith("momentum."):
            continue
        state[k] = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
        if k.endswith(".running_var"):
            state[k[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
    if arch:
        try:
            import torchvision
        except ImportError as e:
            raise SystemExit(f"torch_convert: --arch needs torchvision ({e}); on Debian: "
                             "apt-get install python3-torchvision")
        if not hasattr(torchvision.models, arch):
            raise SystemExit(f"torch_convert: torchvision has no model '{arch}'")
        fc = state.get("fc.weight")
        model = getattr(torchvision.models, arch)(num_classes=fc.shape[0] if fc is not None else 1000)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise SystemExit(f"torch_convert: {src} does not fit torchvision's {arch}: {e}")
    torch.save(state, dst)
    print(f"{dst}: {len(state)} tensors")


def main(argv=None):
    p = argparse.ArgumentParser(prog="torch_convert.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("to-safetensors", help="torchvision .pth -> safetensors")
    a.add_argument("src")
    a.add_argument("dst")
    a.add_argument("--model", help="record the wrn model (wrn-50-2, resnet-50) so that wrn eval "
                   "takes the file as a checkpoint")
    a.add_argument("--image-size", type=int, default=224)
    b = sub.add_parser("to-pth", help="wrn safetensors -> torchvision state dict")
    b.add_argument("src")
    b.add_argument("dst")
    b.add_argument("--arch", help="torchvision model to check against (wide_resnet50_2, resnet50)")
    args = p.parse_args(argv)
    if args.cmd == "to-safetensors":
        to_safetensors(args.src, args.dst, args.model, args.image_size)
    else:
        to_pth(args.src, args.dst, args.arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
