"""XPCS benchmarks (issue 13, point 6): one subcommand per measurement.

    .venv/bin/python bench/xpcs.py simulate [--frames 64 128] [--n 256] [--repeats 3]

``simulate``: grain-boundary simulator maps per second (core.xpcs.simulate.simulate_maps),
batched (8 and 64 maps per call) vs one map per call, and against a naive f_gb (a Python loop over
frame pairs, averaging exp(i q Δh) over the boundary for each) on the same boundaries. Random
draws over PARAM_RANGES; modes alternate over the rounds so each sees the same background load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.xpcs import simulate as gb  # noqa: E402


def naive_maps(params: list, n_frames: int) -> np.ndarray:
    """The same model, f_gb by a loop over frame pairs (what the batched product replaces)."""
    out = np.empty((len(params), n_frames, n_frames))
    lag = np.abs(np.subtract.outer(np.arange(n_frames), np.arange(n_frames))) * gb.DT_S
    for i, (p, rng) in enumerate(zip(params, gb.map_generators(0, len(params)))):
        h = gb.boundary_heights([p], n_frames=n_frames, rngs=[rng])[0].reshape(n_frames, -1)  # (T, N)
        f_gb = np.empty((n_frames, n_frames), complex)
        for t1 in range(n_frames):
            for t2 in range(n_frames):
                f_gb[t1, t2] = np.mean(np.exp(1j * gb.Q_NM * (h[t2] - h[t1])))
        f = (1 - p.c) * np.exp(-p.D * gb.Q_NM**2 * lag) + p.c * f_gb
        out[i] = 1 + gb.BETA * np.abs(f) ** 2
    return out


def rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def bench_simulate(args: argparse.Namespace) -> None:
    params = gb.draw_params(args.n, rng=0)
    print(f"numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs; {args.n} maps per mode ({args.naive} for the pair loop), "
          f"{gb.N_BOUNDARIES} boundaries × {gb.BOUNDARY_NM} sites; load {os.getloadavg()[0]:.2f}")
    print(f"{'frames':>6}  {'mode':<22}{'best maps/s':>12}{'median':>9}{'ms/map':>8}")
    for n_frames in args.frames:
        modes = {
            "batch 8": lambda: gb.simulate_maps(params, n_frames=n_frames, rng=0, batch_size=8),
            "batch 64": lambda: gb.simulate_maps(params, n_frames=n_frames, rng=0, batch_size=64),
            "one map per call": lambda: [gb.simulate_two_time(p, n_frames=n_frames, rng=i) for i, p in enumerate(params)],
            "naive pair loop": lambda: naive_maps(params[: args.naive], n_frames),
        }
        sizes = {name: args.naive if name == "naive pair loop" else args.n for name in modes}
        gb.simulate_maps(params[:8], n_frames=n_frames, rng=0)  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.repeats):
            for name, fn in modes.items():
                rates[name].append(rate(fn, sizes[name]))
        for name, values in rates.items():
            best = max(values)
            print(f"{n_frames:>6}  {name:<22}{best:>12.1f}{np.median(values):>9.1f}{1e3 / best:>8.1f}")
        ratio = max(rates["batch 8"]) / max(rates["one map per call"]), max(rates["batch 8"]) / max(rates["naive pair loop"])
        print(f"{n_frames:>6}  batch 8 / one per call = {ratio[0]:.1f}x, batch 8 / naive pair loop = {ratio[1]:.0f}x")
    n_frames = args.frames[0]
    gap = np.abs(naive_maps(params[:2], n_frames) - gb.simulate_maps(params[:2], n_frames=n_frames, rng=0)).max()
    print(f"naive and batched maps agree to {gap:.1e} (float32 products); load at the end {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    simulate = sub.add_parser("simulate", help="grain-boundary simulator maps per second")
    simulate.add_argument("--frames", type=int, nargs="+", default=[64, 128], help="map sides (frames)")
    simulate.add_argument("--n", type=int, default=256, help="maps per timed mode")
    simulate.add_argument("--naive", type=int, default=4, help="maps for the naive pair loop")
    simulate.add_argument("--repeats", type=int, default=3, help="alternating timing rounds")
    args = parser.parse_args()
    {"simulate": bench_simulate}[args.command](args)


if __name__ == "__main__":
    main()
