"""Student inference speed: images/s at batch 1 and 32, GFLOPs/image, and the share of this machine's
own measured 3 x 3 convolution throughput that the student reaches.

    python benchmarks/speed.py                       # shipped student (else the lite preset, untrained)
    python benchmarks/speed.py --model CKPT --threads 2 --seconds 3

The peak is measured here, in the same process and with the same threads, as
the best GFLOP/s of single 3 x 3 convolutions (C -> C, bias, channels-last,
inference mode) over the shapes the student runs (its width, and 64, at
128/64/32 px), once before and once after the model is timed, keeping the
best: on a noisy machine both numbers move together, so the ratio holds. FLOPs count 2 per multiply-add, convolutions and matrix products
(torch.utils.flop_counter), at the trained 16 -> 128 size.
Backends: PyTorch eager in float32 and in bf16 autocast (inference mode,
channels-last, fused attention gates), onnxruntime (the `pkdn export` graph),
plus CUDA when present. The last lines name the path `pkdn sr` picks on this
host (:class:`pkdn.restore.Restorer`) and its share of the conv peak measured in
the same precision (bf16 convolutions have their own, higher, peak where the
CPU computes bf16 natively).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see docs/evaluation.md

import argparse  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def rate(fn, n_items: int, seconds: float) -> float:
    fn()
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds and n >= 3:
            return n * n_items / dt


def conv_peak(
    channels: list[int], seconds: float, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> list[tuple[int, int, int, float]]:
    rows = []
    for c in channels:
        for size, batch in ((128, 8), (64, 32), (32, 32)):
            w = torch.randn(c, c, 3, 3, device=device, dtype=dtype)
            b = torch.randn(c, device=device, dtype=dtype)
            x = torch.randn(batch, c, size, size, device=device, dtype=dtype)
            x = x.contiguous(memory_format=torch.channels_last)
            w = w.contiguous(memory_format=torch.channels_last)
            flops = 2 * c * c * 9 * size * size * batch
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

            def run(x=x, w=w, b=b, sync=sync):
                F.conv2d(x, w, b, padding=1)
                sync()

            with torch.inference_mode():
                r = rate(run, 1, seconds)
            rows.append((c, size, batch, flops * r / 1e9))
    return rows


def model_gflops(model, lr_size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, lr_size, lr_size, device=next(model.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(x)
    return fc.get_total_flops() / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="student model file (default: shipped student, else untrained lite preset)")
    ap.add_argument("--preset", default="lite", help="preset when no model file is given or shipped")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seconds", type=float, default=3.0, help="timing window per measurement")
    ap.add_argument("--size", type=int, default=16, help="LR side (default 16 -> 128)")
    ap.add_argument("--no-onnx", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    from pkdn import checkpoint
    from pkdn.device import cpu_bf16_kind, cpu_name
    from pkdn.models import build_model
    from pkdn.restore import Restorer

    if args.model:
        net, what = checkpoint.load_model(args.model), args.model
    else:
        try:
            net, what = checkpoint.load_model(None), "shipped student"
        except FileNotFoundError:
            net, what = build_model("student", args.preset), f"untrained '{args.preset}' student (no shipped model)"
    c = net.config.channels
    n_params = sum(p.numel() for p in net.parameters())
    paths = {p: Restorer(net, device="cpu", precision=p) for p in ("fp32", "bf16")}
    picked = Restorer(net, device="cpu")  # what `pkdn sr` does on this host
    net = paths["fp32"].model.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    gflops = model_gflops(net, args.size)

    print(
        f"model: {what}; {n_params / 1e6:.3f} M parameters; LR {args.size}x{args.size} -> "
        f"{args.size * net.config.scale}x{args.size * net.config.scale}"
    )
    print(
        f"machine: {cpu_name()} ({platform.machine()}, native bf16: {cpu_bf16_kind() or 'none'}), "
        f"{os.cpu_count()} CPUs; torch {torch.__version__}; threads {args.threads}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(f"GFLOPs / image: {gflops:.3f}")

    widths = sorted({c, 64})
    peaks = conv_peak(widths, args.seconds / 2)
    peaks_bf16 = conv_peak(widths, args.seconds / 2, dtype=torch.bfloat16)

    results = []
    for name, r in (("pytorch fp32", paths["fp32"]), ("pytorch bf16", paths["bf16"])):
        for bs in (1, 32):
            x = torch.rand(bs, 3, args.size, args.size)
            results.append((name, bs, rate(lambda r=r, x=x: r.sr_batch(x), bs, args.seconds)))
    if not args.no_onnx:
        try:
            from pkdn import export

            with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = export.export_onnx(net, os.path.join(d, "s.onnx"), lr_size=args.size)
                sess = export.onnx_session(path, threads=args.threads)
                for bs in (1, 32):
                    x = torch.rand(bs, 3, args.size, args.size)
                    results.append(("onnxruntime", bs, rate(lambda x=x: export.onnx_run(sess, x), bs, args.seconds)))
        except ImportError as e:
            print(f"(onnxruntime skipped: {e})")

    # the peak again after the model runs: the larger of the two counts, so load that comes and goes
    # during the run lowers the ratio rather than raising it
    peaks = [max(a, b, key=lambda t: t[3]) for a, b in zip(peaks, conv_peak(widths, args.seconds / 2))]
    peaks_bf16 = [
        max(a, b, key=lambda t: t[3])
        for a, b in zip(peaks_bf16, conv_peak(widths, args.seconds / 2, dtype=torch.bfloat16))
    ]
    print("\n3x3 conv throughput (C -> C, channels-last; best of a run before and one after the model's):")
    for (ch, size, batch, g), (*_, g16) in zip(peaks, peaks_bf16):
        print(f"  C={ch:3d} {size:3d}x{size:<3d} batch {batch:2d}: {g:7.1f} GFLOP/s float32, {g16:7.1f} bf16")
    peak, peak16 = max(g for *_, g in peaks), max(g for *_, g in peaks_bf16)
    print(f"  peak: {peak:.1f} GFLOP/s float32, {peak16:.1f} GFLOP/s bf16")

    print("\nbackend         batch   images/s   GFLOP/s   share of conv peak (same precision)")
    for name, bs, r in results:
        p = peak16 if "bf16" in name else peak
        print(f"{name:15s} {bs:5d} {r:10.1f} {r * gflops:9.1f}   {100 * r * gflops / p:5.1f} %")
    best = max(results, key=lambda t: t[2])
    print(f"\nbest: {best[0]} at batch {best[1]}: {best[2]:.1f} images/s")
    mine = next(r for name, bs, r in results if bs == 32 and name == f"pytorch {picked.precision}")
    p = peak16 if picked.precision == "bf16" else peak
    print(
        f"`pkdn sr` picks: {picked.path}: {mine:.1f} images/s at batch 32 = {100 * mine * gflops / p:.0f} % of "
        f"the measured {'bf16' if picked.precision == 'bf16' else 'float32'} 3x3 conv peak ({p:.1f} GFLOP/s)"
    )

    if torch.cuda.is_available():
        gnet = Restorer(net, device="cuda", precision="fp32").model
        gpeak = max(g for *_, g in conv_peak(sorted({c, 64}), args.seconds / 2, "cuda"))
        with torch.inference_mode():
            for bs in (1, 32):
                x = torch.rand(bs, 3, args.size, args.size, device="cuda").contiguous(memory_format=torch.channels_last)

                def run(x=x):
                    gnet(x)
                    torch.cuda.synchronize()

                r = rate(run, bs, args.seconds)
                print(
                    f"cuda {torch.cuda.get_device_name()} batch {bs}: {r:.1f} images/s "
                    f"({100 * r * gflops / gpeak:.0f} % of its 3x3 conv peak {gpeak:.0f} GFLOP/s)"
                )


if __name__ == "__main__":
    main()
