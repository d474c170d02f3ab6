"""Is an FFT convolution faster than the direct one for convgan-faces128's largest layer, on this machine?

convgan-faces128 spends most of a training step in two 256→256-channel layers with 8x8 kernels and stride 2 (G's
28→62 transposed convolution and D's 61→27 convolution): 2 x 32 x 256 x 256 x 64 x 784 = 210 GFLOP for G's layer
at batch 32. An FFT convolution computes the same layer exactly with ~6x fewer operations: transform the
(zero-stuffed) input and the kernel to 64x64 spectra, mix the channels at each of the 64 x 33 frequencies (one complex
(batch x 256) @ (256 x 256) product per frequency: 8 x 32 x 256 x 256 x 2112 = 35 GFLOP), transform back. Whether
that is faster depends on how fast the machine runs complex float32 products against the bfloat16 ones the direct
convolution uses under autocast. This measures, on the same threads, in one run (interleaved, the best of
``--repeats``):

- the direct layer, float32 and bfloat16 autocast + channels_last (what training uses);
- the FFT layer (float32/complex64 throughout), and its largest difference from the float32 direct result
  (relative to the output's largest magnitude);
- the bfloat16 and complex64 matrix-product rates that bound the two.

    python benchmarks/bench_conv_fft.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from record import write_result
from torch.nn import functional as F  # noqa: N812

BATCH, CHANNELS, KERNEL, SIZE_IN = 32, 256, 8, 28  # G's 28x28 → 62x62 layer at the recipe's batch


def conv_transpose_fft(x: torch.Tensor, weight: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, stride=stride)`` (no padding) through the FFT.

    A stride-s transposed convolution is a full linear convolution of the input with s-1 zeros stuffed between its
    pixels; its size is s(n-1) + k, and a transform of at least that size makes the circular convolution linear.
    """
    batch, c_in, h, w = x.shape
    k = weight.shape[-1]
    out = stride * (h - 1) + k
    n = 1 << (out - 1).bit_length()  # the next power of two
    stuffed = x.new_zeros(batch, c_in, stride * (h - 1) + 1, stride * (w - 1) + 1)
    stuffed[:, :, ::stride, ::stride] = x
    spectrum_x = torch.fft.rfft2(stuffed, s=(n, n))  # (B, Cin, n, n/2+1)
    spectrum_w = torch.fft.rfft2(weight, s=(n, n))  # (Cin, Cout, n, n/2+1)
    freqs = spectrum_x.shape[-2] * spectrum_x.shape[-1]
    mixed = torch.bmm(  # one (B x Cin) @ (Cin x Cout) product per frequency
        spectrum_x.reshape(batch, c_in, freqs).permute(2, 0, 1), spectrum_w.reshape(c_in, -1, freqs).permute(2, 0, 1)
    )
    spectrum_y = mixed.permute(1, 2, 0).reshape(batch, -1, n, n // 2 + 1)
    return torch.fft.irfft2(spectrum_y, s=(n, n))[..., :out, :out]


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """The best wall time of each function, the functions interleaved so that they see the same load."""
    for fn in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def measure(repeats: int) -> dict[str, object]:
    """Time the direct and FFT forms of the layer (interleaved) and check the FFT form against float32."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, CHANNELS, SIZE_IN, SIZE_IN)
    weight = torch.randn(CHANNELS, CHANNELS, KERNEL, KERNEL) * 0.02
    x_cl = x.contiguous(memory_format=torch.channels_last)
    weight_cl = weight.contiguous(memory_format=torch.channels_last)

    def direct_bf16() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.conv_transpose2d(x_cl, weight_cl, stride=2)

    reference = F.conv_transpose2d(x, weight, stride=2)
    error = (conv_transpose_fft(x, weight) - reference).abs().max() / reference.abs().max()
    error_bf16 = (direct_bf16().float() - reference).abs().max() / reference.abs().max()

    freqs = 64 * 33
    a_c = torch.randn(freqs, BATCH, CHANNELS, dtype=torch.complex64)
    b_c = torch.randn(freqs, CHANNELS, CHANNELS, dtype=torch.complex64)
    a_h, b_h = torch.randn(2048, 2048, dtype=torch.bfloat16), torch.randn(2048, 2048, dtype=torch.bfloat16)
    times = best_of(
        {
            "direct_fp32": lambda: F.conv_transpose2d(x, weight, stride=2),
            "direct_bf16_channels_last": direct_bf16,
            "fft_fp32": lambda: conv_transpose_fft(x, weight),
            "fft_channel_mixing_only": lambda: torch.bmm(a_c, b_c),
            "bf16_matmul_2048": lambda: a_h @ b_h,
        },
        repeats,
    )
    direct_flop = 2 * BATCH * CHANNELS * CHANNELS * KERNEL**2 * SIZE_IN**2
    mixing_flop = 8 * freqs * BATCH * CHANNELS * CHANNELS
    return {
        "gflop_direct": round(direct_flop / 1e9, 1),
        "gflop_fft_channel_mixing": round(mixing_flop / 1e9, 1),
        "ms": {name: round(t * 1e3, 1) for name, t in times.items()},
        "tflops_bf16_matmul": round(2 * 2048**3 / times["bf16_matmul_2048"] / 1e12, 3),
        "tflops_complex64_mixing": round(mixing_flop / times["fft_channel_mixing_only"] / 1e12, 3),
        "tflops_direct_bf16": round(direct_flop / times["direct_bf16_channels_last"] / 1e12, 3),
        "fft_speedup_vs_direct_bf16": round(times["direct_bf16_channels_last"] / times["fft_fp32"], 3),
        "max_relative_error_fft_fp32": float(f"{error:.2e}"),
        "max_relative_error_direct_bf16": float(f"{error_bf16:.2e}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conv_fft.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {
        "benchmark": "conv_transpose_fft_vs_direct",
        "layer": f"ConvTranspose2d({CHANNELS}, {CHANNELS}, k{KERNEL}, s2) on {BATCH}x{CHANNELS}x{SIZE_IN}x{SIZE_IN}",
        "threads": args.threads,
        **measure(args.repeats),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
