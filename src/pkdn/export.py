"""ONNX export of a student, and a parity check against PyTorch in onnxruntime.

The exported graph takes ``lr`` (B, 3, h, w) float32 in [0, 1] and returns
``sr`` (B, 3, 8h, 8w), clamped to [0, 1]. The batch size is dynamic; the LR
size is fixed at export time (``--size``, 16 by default) because the
network's PIL-matching bicubic upsampling is a pair of constant matrices
built for that size. Needs the ``export`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pkdn.models.base import SRNet
from pkdn.restore import check_student


class _FixedBicubic(nn.Module):
    """The network's PIL-bicubic upsampling with its two matrices as constants for one LR size.

    Same arithmetic as :func:`pkdn.models.resize.resize` (width pass, clamp,
    height pass); precomputing the matrices keeps them out of the traced
    graph (building them op by op made a graph of ~60,000 nodes).
    """

    def __init__(self, h: int, w: int, scale: int) -> None:
        super().__init__()
        from pkdn.models.resize import resize_matrix

        self.register_buffer("ah", resize_matrix(h, h * scale).float().clone())
        self.register_buffer("awt", resize_matrix(w, w * scale).float().t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(x, self.awt).clamp(0.0, 1.0).transpose(-1, -2), self.ah.t()).transpose(-1, -2)


class _SROnly(nn.Module):
    """The student's SR output only, clamped (what ``pkdn sr`` writes)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        sr, _ = self.net(lr)
        return sr.clamp(0.0, 1.0)


def export_onnx(
    model: nn.Module, path: str | os.PathLike, lr_size: int | tuple[int, int] = 16, opset: int = 17
) -> Path:
    """Write ``model`` (a student) as an ONNX file taking LR images of ``lr_size``; dynamic batch."""
    from pkdn.fileio import atomic_write

    check_student(model)
    h, w = (lr_size, lr_size) if isinstance(lr_size, int) else lr_size
    net = copy.deepcopy(model).float().eval().cpu().to(memory_format=torch.contiguous_format)
    example = torch.rand(1, 3, h, w)
    with torch.inference_mode():
        ref, _ = net(example)  # size errors surface here, as the networks word them
    nets = [m for m in net.modules() if isinstance(m, SRNet)]  # the student's network
    for m in nets:
        m.upsample = _FixedBicubic(h, w, m.config.scale)
    if nets:
        with torch.inference_mode():
            assert torch.allclose(net(example)[0], ref, atol=1e-5), "constant bicubic differs from the network's"
    wrapper = _SROnly(net).eval()

    def write(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
            torch.onnx.export(
                wrapper,
                (example,),
                tmp,
                dynamo=False,
                opset_version=opset,
                input_names=["lr"],
                output_names=["sr"],
                dynamic_axes={"lr": {0: "batch"}, "sr": {0: "batch"}},
            )

    path = Path(path)
    atomic_write(path, write)
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_run(session, lr: torch.Tensor) -> torch.Tensor:
    out = session.run(["sr"], {"lr": lr.detach().cpu().float().contiguous().numpy()})[0]
    return torch.from_numpy(np.asarray(out))


def check_parity(model: nn.Module, path: str | os.PathLike, lr: torch.Tensor) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's outputs on ``lr`` (B, 3, h, w)."""
    sess = onnx_session(path)
    net = _SROnly(model.float().eval().cpu())
    with torch.inference_mode():
        ref = net(lr.float().cpu())
    return float((onnx_run(sess, lr) - ref).abs().max())
