#!/usr/bin/env python3
"""wrn checkpoints in PyTorch, and PyTorch models as wrn checkpoints.

A wrn checkpoint is a safetensors file holding a WRN-d-k under the names of the PyTorch port
of Zagoruyko & Komodakis (2016) -- ``conv0``, ``group{g}.block{i}.{bn0,conv0,bn1,conv1,convdim}``,
``bn``, ``fc`` -- where a convolution's weight has no ``.weight`` suffix, BN layers carry
``.weight``, ``.bias``, ``.running_mean`` and ``.running_var``, and ``momentum.<name>`` tensors
hold the optimiser state. Its ``__metadata__`` holds the model (``--model wrn-28-10``,
``--classes``, ``--dropout``) and how its inputs were made: ``input_shape`` ("3,32,32"),
``input_mean`` and ``input_std`` (per channel, RGB) on the ``input_scale`` (255) pixel scale,
``bn_eps`` and ``bn_momentum``.

This module builds an ``nn.Module`` (:class:`WRN`) whose ``state_dict`` names are the wrn names
with ``.weight`` on the convolutions, so the two convert by adding or removing that suffix:

    import wrn_torch
    model, meta = wrn_torch.load("runs/x/best.safetensors")   # eval() mode, float32, CPU
    x = wrn_torch.normalize(images_uint8_nchw, meta)          # the inputs wrn trained on
    logits = model(x)
    wrn_torch.save(model, "tuned.safetensors")                # then: wrn train --init tuned.safetensors

It needs only PyTorch and NumPy (Debian: python3-torch). As a command:

    tools/wrn_torch.py eval CKPT --data DIR [--test-limit N] [--batch N]
        test loss and accuracy of a wrn checkpoint computed by PyTorch (compare: wrn eval)
    tools/wrn_torch.py to-torch CKPT OUT.pt
        a torch.save file {"state_dict": ..., "wrn_meta": {...}}
    tools/wrn_torch.py to-wrn IN.pt OUT.safetensors [--model wrn-D-K --classes N --dropout P]
        a state_dict (or a to-torch file) as a wrn checkpoint for wrn train --init / wrn eval
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the module can still read and write safetensors files
    torch = None
    _TORCH_ERROR = e

# The recipe's values, used when a checkpoint predates the metadata that records them.
RECIPE_META = {
    "input_shape": "3,32,32",
    "input_mean": "125.3,123,113.9",
    "input_std": "63,62.1,66.7",
    "input_scale": "255",
    "bn_eps": "1e-05",
    "bn_momentum": "0.1",
}

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "U8": np.uint8}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


# ------------------------------------------------------------------ safetensors

def read_safetensors(path):
    """Returns ({name: numpy array}, {metadata key: value}) of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a safetensors file")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > len(data) - 8:
        raise ValueError(f"{path}: header length {hlen} runs past the end of the file")
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + hlen:]
    tensors = {}
    for name, d in header.items():
        if d["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {d['dtype']}, not supported here")
        b, e = d["data_offsets"]
        dt = np.dtype(_DTYPES[d["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(body[b:e], dtype=dt).reshape(d["shape"]).copy()
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: numpy array} and string metadata as safetensors, atomically (a temporary
    file in the same folder, then renamed over path)."""
    header, offset, chunks = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype not in _NAMES:
            raise ValueError(f"tensor {name}: dtype {a.dtype} is not supported")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------ the network

def parse_model(name):
    """"wrn-28-10" -> (28, 10)."""
    m = re.fullmatch(r"[wW][rR][nN]-(\d+)-(\d+)", name)
    if not m or (int(m.group(1)) - 4) % 6 or int(m.group(1)) < 10:
        raise ValueError(f"model '{name}' is not wrn-D-K with D = 6N + 4 >= 10")
    return int(m.group(1)), int(m.group(2))


def _floats(text, n):
    v = [float(x) for x in text.split(",")]
    if len(v) != n:
        raise ValueError(f"'{text}': expected {n} comma-separated numbers")
    return v


if torch is not None:
    class Block(nn.Module):
        """Pre-activation block: o = relu(bn0(x)); y = conv0(o); y = relu(bn1(y)); dropout;
        y = conv1(y); out = y + (convdim(o) if the width changes, else x)."""

        def __init__(self, c_in, c_out, stride, dropout, eps, momentum):
            super().__init__()
            self.bn0 = nn.BatchNorm2d(c_in, eps=eps, momentum=momentum)
            self.conv0 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out, eps=eps, momentum=momentum)
            self.conv1 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.dropout = dropout
            if c_in != c_out:
                self.convdim = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

        def forward(self, x):
            o = F.relu(self.bn0(x))
            y = F.relu(self.bn1(self.conv0(o)))
            if self.dropout > 0:
                y = F.dropout(y, self.dropout, self.training)
            y = self.conv1(y)
            return y + (self.convdim(o) if hasattr(self, "convdim") else x)

    class WRN(nn.Module):
        """WRN-depth-width for small images, as wrn builds it (shared/docs/wrn-recipe.md):
        conv0 3x3 to 16, three groups of (depth - 4) / 6 blocks at widths 16k, 32k, 64k (stride 2
        on the first block of groups 1 and 2), then BN-ReLU, average pooling over the last
        feature map, and fc."""

        def __init__(self, depth, width, classes=10, dropout=0.0, in_shape=(3, 32, 32),
                     bn_eps=1e-5, bn_momentum=0.1):
            super().__init__()
            self.depth, self.width, self.classes, self.dropout = depth, width, classes, dropout
            self.in_shape = tuple(in_shape)
            n = (depth - 4) // 6
            widths = [16, 16 * width, 32 * width, 64 * width]
            self.conv0 = nn.Conv2d(in_shape[0], 16, 3, 1, 1, bias=False)
            c_in = 16
            for g in range(3):
                group = nn.Module()
                for i in range(n):
                    stride = 2 if g > 0 and i == 0 else 1
                    setattr(group, f"block{i}",
                            Block(c_in, widths[g + 1], stride, dropout, bn_eps, bn_momentum))
                    c_in = widths[g + 1]
                setattr(self, f"group{g}", group)
            self.bn = nn.BatchNorm2d(c_in, eps=bn_eps, momentum=bn_momentum)
            self.pool = in_shape[1] // 4
            self.fc = nn.Linear(c_in, classes)

        def forward(self, x):
            x = self.conv0(x)
            for g in range(3):
                for blk in getattr(self, f"group{g}").children():
                    x = blk(x)
            x = F.avg_pool2d(F.relu(self.bn(x)), self.pool)
            return self.fc(x.flatten(1))

        @property
        def model_name(self):
            return f"wrn-{self.depth}-{self.width}"


def _conv_key(key):
    """True for the torch names of convolution weights (wrn stores them without '.weight')."""
    return bool(re.search(r"(^|\.)(conv0|conv1|convdim)\.weight$", key))


def torch_to_wrn_names(state_dict):
    """A torch state_dict of WRN as {wrn name: numpy float32}; BN's num_batches_tracked is
    dropped (wrn does not count batches)."""
    out = {}
    for k, v in state_dict.items():
        if k.endswith("num_batches_tracked"):
            continue
        name = k[: -len(".weight")] if _conv_key(k) else k
        out[name] = v.detach().cpu().numpy().astype(np.float32)
    return out


def _require_torch():
    if torch is None:
        raise ImportError(f"PyTorch is needed for this ({_TORCH_ERROR}); on Debian: "
                          "apt-get install python3-torch")


def build(meta):
    """An untrained WRN for a checkpoint's metadata."""
    _require_torch()
    m = dict(RECIPE_META, **meta)
    if "--model" not in m:
        raise ValueError("the metadata has no '--model': not a wrn checkpoint")
    depth, width = parse_model(m["--model"])
    classes = int(m.get("--classes", "10") or 10)
    return WRN(depth, width, classes if classes > 0 else 10, float(m.get("--dropout", "0")),
               tuple(int(x) for x in m["input_shape"].split(",")), float(m["bn_eps"]),
               float(m["bn_momentum"]))


def load(path, device="cpu", dtype=None):
    """(model in eval() mode, metadata) from a wrn checkpoint. Every parameter and running
    statistic must be there with the right shape; momentum tensors are ignored."""
    tensors, meta = read_safetensors(path)
    model = build(meta)
    state = model.state_dict()
    new = {}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            new[k] = v
            continue
        name = k[: -len(".weight")] if _conv_key(k) else k
        if name not in tensors:
            raise ValueError(f"{path} has no tensor '{name}' ({model.model_name} needs it)")
        t = tensors[name]
        if tuple(t.shape) != tuple(v.shape):
            raise ValueError(f"{path}: tensor '{name}' has shape {list(t.shape)}, "
                             f"{model.model_name} needs {list(v.shape)}")
        new[k] = torch.from_numpy(t.astype(np.float32))
    model.load_state_dict(new)
    model.eval()
    if dtype is not None:
        model = model.to(dtype)
    return model.to(device), dict(RECIPE_META, **meta)


def save(model, path, meta=None):
    """Writes a WRN (this module's, or any module with the same state_dict names) as a wrn
    checkpoint that wrn eval and wrn train --init read."""
    _require_torch()
    m = {}
    if isinstance(model, nn.Module) and hasattr(model, "model_name"):
        m = {"--model": model.model_name, "--classes": str(model.classes),
             "--dropout": repr(float(model.dropout)),
             "input_shape": ",".join(str(x) for x in model.in_shape)}
        bn = model.bn
        m["bn_eps"], m["bn_momentum"] = repr(bn.eps), repr(bn.momentum)
    merged = dict(RECIPE_META)
    merged.update(m)
    merged.update(meta or {})
    merged.setdefault("source", "tools/wrn_torch.py")
    state = model.state_dict() if isinstance(model, nn.Module) else model
    write_safetensors(path, torch_to_wrn_names(state), merged)


def normalize(images, meta, dtype=None):
    """uint8 images [n][c][h][w] (numpy or torch, RGB planes as CIFAR stores them) -> the
    network's input: (pixel - mean[c]) / std[c] on the checkpoint's pixel scale."""
    _require_torch()
    m = dict(RECIPE_META, **meta)
    c = int(m["input_shape"].split(",")[0])
    mean = torch.tensor(_floats(m["input_mean"], c), dtype=torch.float64).view(1, c, 1, 1)
    std = torch.tensor(_floats(m["input_std"], c), dtype=torch.float64).view(1, c, 1, 1)
    x = torch.as_tensor(np.asarray(images)).to(torch.float64)
    x = x * (float(m["input_scale"]) / 255.0)
    return ((x - mean) / std).to(dtype or torch.float32)


# ------------------------------------------------------------------ data and evaluation

def read_cifar_test(folder, limit=0):
    """(uint8 images [n][3][32][32], int64 labels [n]) of a CIFAR-10 folder (test_batch.bin)
    or a CIFAR-100 one (test.bin, fine labels), in file order; limit > 0 keeps the first."""
    p10, p100 = os.path.join(folder, "test_batch.bin"), os.path.join(folder, "test.bin")
    path, skip = (p10, 1) if os.path.exists(p10) else (p100, 2)
    raw = np.fromfile(path, dtype=np.uint8)
    rec = skip + 3072
    if raw.size % rec:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {rec}-byte records")
    raw = raw.reshape(-1, rec)
    if limit:
        raw = raw[:limit]
    return raw[:, skip:].reshape(-1, 3, 32, 32), raw[:, skip - 1].astype(np.int64)


def evaluate(model, images, labels, meta, batch=128):
    """(mean cross-entropy, accuracy in %) of the model on uint8 images, in the model's dtype;
    the argmax is the first maximum, as in wrn."""
    _require_torch()
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    total, correct = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            x = normalize(images[i:i + batch], meta, dtype).to(device)
            y = torch.as_tensor(labels[i:i + batch]).to(device)
            out = model(x)
            total += float(F.cross_entropy(out.double(), y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
    return total / len(labels), 100.0 * correct / len(labels)


# ------------------------------------------------------------------ command line

def main(argv=None):
    p = argparse.ArgumentParser(prog="wrn_torch.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="test loss and accuracy of a wrn checkpoint in PyTorch")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True, help="CIFAR-10/100 folder (binary version)")
    e.add_argument("--test-limit", type=int, default=0)
    e.add_argument("--batch", type=int, default=128)
    e.add_argument("--double", action="store_true", help="evaluate in float64")
    t = sub.add_parser("to-torch", help="a wrn checkpoint as a torch.save file")
    t.add_argument("checkpoint")
    t.add_argument("out")
    w = sub.add_parser("to-wrn", help="a PyTorch state_dict as a wrn checkpoint")
    w.add_argument("state")
    w.add_argument("out")
    w.add_argument("--model", help="wrn-D-K (default: from a to-torch file)")
    w.add_argument("--classes", type=int)
    w.add_argument("--dropout", type=float)
    a = p.parse_args(argv)
    try:
        _require_torch()
        if a.cmd == "eval":
            model, meta = load(a.checkpoint, dtype=torch.float64 if a.double else None)
            images, labels = read_cifar_test(a.data, a.test_limit)
            loss, acc = evaluate(model, images, labels, meta, a.batch)
            print(f"wrn_torch eval: {a.checkpoint} on {len(labels)} test images of {a.data}: "
                  f"loss {loss:.6f}, accuracy {acc:.4f}%, error {100 - acc:.4f}%")
        elif a.cmd == "to-torch":
            model, meta = load(a.checkpoint)
            torch.save({"state_dict": model.state_dict(), "wrn_meta": meta}, a.out)
            print(f"wrn_torch: {a.out} ({model.model_name})")
        else:
            obj = torch.load(a.state, map_location="cpu")
            meta = dict(obj.get("wrn_meta", {})) if "state_dict" in obj else {}
            state = obj["state_dict"] if "state_dict" in obj else obj
            for key, val in (("--model", a.model), ("--classes", a.classes),
                             ("--dropout", a.dropout)):
                if val is not None:
                    meta[key] = str(val)
            model = build(meta)  # checks the names and shapes against the model
            model.load_state_dict(state)
            save(model, a.out, {k: v for k, v in meta.items() if k.startswith("input_")})
            print(f"wrn_torch: {a.out} ({model.model_name}); use it with "
                  f"wrn train --init {a.out} or wrn eval --checkpoint {a.out}")
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
        print(f"wrn_torch {a.cmd}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
