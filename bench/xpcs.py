"""XPCS benchmarks, one subcommand each (see bench/README.md).

    python bench/xpcs.py rings [--frames 1000 --size 512 --rings 10 --device auto]

``rings``: two-time maps per second, :func:`core.xpcs.two_time.two_time_rings` (one matrix
product per ring on the device) against a naive loop over frame pairs, in one run. The naive
loop over all T(T+1)/2 pairs of every ring would take hours, so it is timed on a sample of pairs
per ring and extrapolated to all pairs (said in the output).

Other subcommands (simulator maps/s, regressor R² and domain shift) register themselves the
same way: a function ``run_NAME(args) -> list[dict]`` (rows of the table printed) and its options
in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def detector_series(frames: int, size: int, seed: int = 0) -> np.ndarray:
    """(frames, size, size) uint16 counts, uniform 0-7: the arithmetic does not depend on them."""
    rng = np.random.default_rng(seed)
    series = np.empty((frames, size, size), np.uint16)
    for t in range(frames):  # frame by frame: no int64 temporary of the whole stack
        series[t] = rng.integers(0, 8, size=(size, size), dtype=np.uint16)
    return series


def naive_pairs(pixels: np.ndarray, pairs: np.ndarray) -> float:
    """Seconds for C(t1, t2) = mean(I1 I2) / (mean I1 mean I2) over ``pairs`` one at a time
    (the ring's pixels already gathered: the loop is all that is timed)."""
    start = time.perf_counter()
    for t1, t2 in pairs:
        a, b = pixels[t1], pixels[t2]
        _ = np.mean(a * b) / (a.mean() * b.mean())
    return time.perf_counter() - start


def run_rings(args: argparse.Namespace) -> list[dict]:
    import torch

    from core.models.device import pick_device
    from core.xpcs.rings import default_rings
    from core.xpcs.two_time import two_time_rings

    device = pick_device(args.device)
    clock = time.perf_counter()
    frames = detector_series(args.frames, args.size)
    rings = default_rings(frames.shape[1:], args.rings)
    print(f"series {frames.shape} uint16 made in {time.perf_counter() - clock:.1f} s; "
          f"{len(rings)} rings, {int(rings.n_pixels.sum()):,} pixels "
          f"({int(rings.n_pixels.min()):,}-{int(rings.n_pixels.max()):,} per ring)", flush=True)
    rows = []
    two_time_rings(frames[:8], rings, device=str(device))  # warm-up: first calls, CUDA context
    for repeat in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        clock = time.perf_counter()
        maps = two_time_rings(frames, rings, device=str(device))  # (n, T, T), on the host again
        seconds = time.perf_counter() - clock
        rows.append({"method": f"batched ({device.type})", "repeat": repeat, "seconds": seconds,
                     "maps_per_s": len(rings) / seconds, "extrapolated": False})
    assert maps.shape == (len(rings), args.frames, args.frames)

    t = args.frames
    all_pairs = t * (t + 1) // 2
    rng = np.random.default_rng(1)
    per_ring = max(1, args.naive_pairs // len(rings))
    total, checked = 0.0, 0
    flat = frames.reshape(t, -1)
    for r in range(len(rings)):
        pixels = flat[:, (rings.labels.ravel() == r)].astype(np.float64)  # (T, P_r)
        pairs = np.sort(rng.integers(0, t, size=(per_ring, 2)), axis=1)
        seconds = naive_pairs(pixels, pairs)
        total += seconds / per_ring * all_pairs
        t1, t2 = pairs[0]
        a, b = pixels[t1], pixels[t2]
        checked += np.isclose(np.mean(a * b) / (a.mean() * b.mean()), maps[r, t1, t2], rtol=1e-9)
    rows.append({"method": "naive pair loop (numpy, CPU)", "repeat": 0, "seconds": total,
                 "maps_per_s": len(rings) / total, "extrapolated": True})
    print(f"naive loop timed on {per_ring} random pairs per ring ({per_ring * len(rings):,} in all) "
          f"and extrapolated to all {all_pairs:,} pairs x {len(rings)} rings; "
          f"{checked}/{len(rings)} sampled entries equal the batched maps", flush=True)
    best = min(r["seconds"] for r in rows if not r["extrapolated"])
    print(f"batched is {total / best:,.0f}x faster than the naive loop (best batched run)")
    return rows


def add_rings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512, help="detector side, px")
    parser.add_argument("--rings", type=int, default=10)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-pairs", type=int, default=2000,
                        help="pairs timed in the naive loop, over all rings (then extrapolated)")


# name -> (run, add its options, help)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], list[dict]],
                          Callable[[argparse.ArgumentParser], None], str]] = {
    "rings": (run_rings, add_rings, "two-time maps per second: batched rings vs a pair loop"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, add, help_text) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    import torch

    print(f"{platform.processor() or platform.machine()}, nproc {__import__('os').cpu_count()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    rows = COMMANDS[args.command][0](args)
    print("| method | run | seconds | maps/s |\n|---|---:|---:|---:|")
    for row in rows:
        note = " (extrapolated)" if row["extrapolated"] else ""
        print(f"| {row['method']}{note} | {row['repeat']} | {row['seconds']:.3g} | {row['maps_per_s']:.3g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
