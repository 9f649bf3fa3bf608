#!/usr/bin/python3
"""Checks `dae-cl export` with clients no one here wrote (tests/ci/export.sh runs it).

For each case directory (x.npy, y.npy = dae-cl's own forward of x, model.onnx, model.npz,
arch.txt): onnx's checker (full_check) and strict shape inference accept the file; OpenCV's DNN
module runs it and matches y; a PyTorch model rebuilt from the .npz weights and the spec matches
y (the spec's residual head from the .npz's "residual" entry). Prints one line per case with the max abs differences; exits 1 if any exceeds TOL."""
import sys

import cv2
import numpy as np
import onnx
import torch
import torch.nn.functional as F

TOL = 1e-4


def torch_forward(spec, weights, x):
    """The spec (dae-cl's canonical form) run with torch.nn.functional ops."""
    acts = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
            "leaky": lambda t: F.leaky_relu(t, 0.3), "linear": lambda t: t}
    outs, names = [], {}
    t = x
    residual = bool(weights["residual"][0])  # the .npz records the residual head
    layers = spec.split(",")
    if (layers[-1] == "residual") != residual:
        raise SystemExit(f"export_check.py: the .npz says residual={residual}, the spec '{spec}' disagrees")
    if residual:
        layers = layers[:-1]
    for i, tok in enumerate(layers):
        name = None
        if "@" in tok:
            tok, name = tok.split("@")
        f = tok.split(":")
        kind, n = f[0], i + 1
        if kind in ("conv", "convT"):
            act, k = "relu", 3
            for o in f[2:]:
                if o[0] == "k" and o[1:].isdigit():
                    k = int(o[1:])
                else:
                    act = o
            w = torch.from_numpy(weights[f"layer{n}.{kind}.weight"])
            b = torch.from_numpy(weights[f"layer{n}.{kind}.bias"])
            if kind == "conv":
                t = F.conv2d(t, w, b, padding=(k - 1) // 2)
            else:  # dae-cl keeps [O,I,K,K]; PyTorch wants [I,O,K,K] (ops.h gives the padding)
                h, wd = t.shape[2], t.shape[3]
                pt = max(k - 2, 0) // 2
                t = F.conv_transpose2d(t, w.transpose(0, 1).contiguous(), b, stride=2, padding=pt,
                                       output_padding=1 if k == 1 else 0)[:, :, :2 * h, :2 * wd]
            t = acts[act](t)
        elif kind == "pool":
            t = F.max_pool2d(t, 2)
        elif kind == "avgpool":
            t = F.avg_pool2d(t, 2)
        elif kind == "up":
            t = F.interpolate(t, scale_factor=2, mode="nearest")
        elif kind == "add":
            t = t + outs[names[f[1]]]
        elif kind == "cat":
            t = torch.cat([t, outs[names[f[1]]]], 1)
        else:
            raise SystemExit(f"export_check.py: layer kind '{kind}' unknown to the PyTorch rebuild")
        if name:
            names[name] = i
        outs.append(t)
    return x - t if residual else t


def check(case):
    x = np.load(f"{case}/x.npy")
    y = np.load(f"{case}/y.npy")
    spec = open(f"{case}/arch.txt").read().strip()
    model = onnx.load(f"{case}/model.onnx")
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    out_dims = [d.dim_param or d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == ["batch", x.shape[1], "height", "width"], out_dims
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]
    ops = sorted({n.op_type for n in model.graph.node})

    net = cv2.dnn.readNetFromONNX(f"{case}/model.onnx")
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.setInput(x)
    d_cv = float(np.abs(net.forward() - y).max())

    weights = dict(np.load(f"{case}/model.npz"))
    with torch.no_grad():
        yt = torch_forward(spec, weights, torch.from_numpy(x)).numpy()
    d_pt = float(np.abs(yt - y).max())
    ok = d_cv <= TOL and d_pt <= TOL
    print(f"{'ok  ' if ok else 'FAIL'} {case}: x {list(x.shape)}, opset {opset}, ops {' '.join(ops)}; "
          f"max |diff| OpenCV {d_cv:.2e}, PyTorch {d_pt:.2e} (tolerance {TOL:g})")
    return ok


if __name__ == "__main__":
    torch.set_num_threads(1)
    results = [check(c) for c in sys.argv[1:]]
    sys.exit(0 if all(results) else 1)
