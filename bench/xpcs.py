"""XPCS benchmarks (issue 13, point 6): one subcommand per measurement.

    .venv/bin/python bench/xpcs.py rings [--frames 1000 --size 512 --rings 10 --device auto]

``rings``: two-time maps per second, :func:`core.xpcs.two_time.two_time_rings` (one matrix
product per ring on the device) against a naive loop over frame pairs, in one run. The naive
loop over all T(T+1)/2 pairs of every ring would take hours, so it is timed on a sample of pairs
per ring and extrapolated to all pairs (said in the output).

    .venv/bin/python bench/xpcs.py simulate [--frames 64 128] [--n 256] [--repeats 3]

``simulate``: grain-boundary simulator maps per second (core.xpcs.simulate.simulate_maps),
batched (8 and 64 maps per call) vs one map per call, and against a naive f_gb (a Python loop over
frame pairs, averaging exp(i q Δh) over the boundary for each) on the same boundaries. Random
draws over PARAM_RANGES; modes alternate over the rounds so each sees the same background load.

``adapt``: physical parameters from two-time maps (point 5). Simulates ``--n`` maps of the
grain-boundary model (``core.xpcs.simulate``, parameters drawn over ``PARAM_RANGES``) and
``--n-exp`` more passed through ``experiment_like`` (photons, background, a detector mask, a
finite speckle count: the controlled domain shift standing in for experiment, with a known
truth). Trains ``core.xpcs.adapt.ParameterAdapter`` (90/10 split of the simulated maps) and
reports, in one run:

* R² per parameter on the held-out simulated maps (log10 D; κ, c, T as they are);
* on the shifted maps, the mean absolute error per parameter in normalised units (the
  fraction of each training range; log10 decades / log10 range for D) and R², for the vanilla
  ensemble, a control trained as long with the adaptation terms switched off
  (``coral_weight = surrogate_weight = 0``: what the extra epochs alone give), and the adapted
  ensemble;
* how separable the two domains' features are before and after adaptation (5-fold accuracy
  of a logistic regression telling simulated from shifted maps: 0.5 = overlapping, 1 =
  separate; the number behind the UMAP the page draws).

    .venv/bin/python bench/xpcs.py adapt [--n 2000] [--n-exp 300] [--frames 64] [--side 32]
        [--members 3] [--epochs 30] [--adapt-epochs 10] [--photons 0.5] [--pixels 20000]
        [--background 0.05] [--mask 0.1] [--coral-weight 1] [--surrogate-weight 1] [--threads T] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.xpcs import simulate as gb  # noqa: E402


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


def bench_rings(args: argparse.Namespace) -> None:
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
    print(f"{platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print("| method | run | seconds | maps/s |\n|---|---:|---:|---:|")
    for row in rows:
        note = " (extrapolated)" if row["extrapolated"] else ""
        print(f"| {row['method']}{note} | {row['repeat']} | {row['seconds']:.3g} | {row['maps_per_s']:.3g} |")


def add_rings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512, help="detector side, px")
    parser.add_argument("--rings", type=int, default=10)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-pairs", type=int, default=2000,
                        help="pairs timed in the naive loop, over all rings (then extrapolated)")


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


def _domain_separability(fs: np.ndarray, fe: np.ndarray, seed: int) -> float:
    """5-fold accuracy of a logistic regression telling the two feature sets apart (balanced)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = min(len(fs), len(fe))
    rng = np.random.default_rng(seed)
    X = np.concatenate([fs[rng.choice(len(fs), n, replace=False)], fe[rng.choice(len(fe), n, replace=False)]])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(clf, X, y, cv=5).mean())


def bench_adapt(args: argparse.Namespace) -> dict:
    """Train, adapt and score on simulated and shifted maps; print a table and return the figures."""
    import torch

    from core.models.xpcs_regressor import normalise
    from core.xpcs.adapt import ParameterAdapter, r2_scores
    from core.xpcs.simulate import PARAM_RANGES, LOG_UNIFORM, draw_params, experiment_like, simulate_maps, to_array

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    sim_draws, exp_draws = draw_params(args.n, rng), draw_params(args.n_exp, rng)
    sim_maps = simulate_maps(sim_draws, n_frames=args.frames, rng=rng)
    exp_clean = simulate_maps(exp_draws, n_frames=args.frames, rng=rng)
    exp_maps = np.stack([experiment_like(C, photons_per_pixel=args.photons, n_pixels=args.pixels,
                                         background=args.background, mask_fraction=args.mask, rng=rng)
                         for C in exp_clean])
    t_sim = time.perf_counter() - t0
    sim_params, exp_params = to_array(sim_draws), to_array(exp_draws)
    names = list(PARAM_RANGES)
    print(f"simulated {args.n} + {args.n_exp} maps of {args.frames} frames in {t_sim:.1f} s", flush=True)

    common = dict(ranges=PARAM_RANGES, log_params=LOG_UNIFORM, side=args.side, n_members=args.members,
                  epochs=args.epochs, adapt_epochs=args.adapt_epochs, seed=args.seed, device="auto")
    fits = {}
    for label, weights in (("adapted", dict(coral_weight=args.coral_weight, surrogate_weight=args.surrogate_weight)),
                           ("control", dict(coral_weight=0.0, surrogate_weight=0.0))):
        t = time.perf_counter()
        fits[label] = ParameterAdapter(**common, **weights).fit(sim_maps, sim_params, exp_maps)
        print(f"fit {label}: {time.perf_counter() - t:.0f} s", flush=True)
    adapter = fits["adapted"]
    cfg = adapter.config_
    truth = normalise(exp_params, cfg)

    rows = {}
    for label, fit, adapted in (("vanilla", adapter, False), ("control", fits["control"], True),
                                ("adapted", adapter, True)):
        mean, sd = fit.predict(exp_maps, adapted=adapted)
        pred = normalise(mean, cfg)
        rows[label] = {"mae": np.abs(pred - truth).mean(0), "r2": r2_scores(truth, pred),
                       "sd": (normalise(mean + sd, cfg) - pred).mean(0)}
    val = adapter.val_index_
    sim_val = [sim_maps[i] for i in val]
    sep = {label: _domain_separability(adapter.features(sim_val, adapted=a), adapter.features(exp_maps, adapted=a),
                                       args.seed) for label, a in (("before", False), ("after", True))}

    print(f"\nheld-out simulated maps ({len(val)}), R² (log10 D):")
    print("  " + "  ".join(f"{n:>7}" for n in ["", *names]))
    for label in ("vanilla", "adapted"):
        r2 = adapter.metrics_[f"r2_{label}"]
        print(f"  {label:>7}  " + "  ".join(f"{r2[n]:7.3f}" for n in names))
    print(f"\nshifted maps ({args.n_exp}; {args.photons} photons/px/frame, {args.pixels} px, "
          f"background {args.background}, mask {args.mask}): error in fractions of each range")
    for label, row in rows.items():
        print(f"  {label:>7} MAE " + "  ".join(f"{n}={v:.3f}" for n, v in zip(names, row["mae"]))
              + f"  mean={row['mae'].mean():.3f} (ensemble sd {row['sd'].mean():.3f}) | R² " + "  ".join(f"{v:.2f}" for v in row["r2"]))
    ratio = rows["adapted"]["mae"].mean() / rows["vanilla"]["mae"].mean()
    print(f"  adapted / vanilla mean error: {ratio:.2f}; adapted / control: "
          f"{rows['adapted']['mae'].mean() / rows['control']['mae'].mean():.2f}")
    print(f"\ndomain separability of features (0.5 = overlap): before {sep['before']:.2f}, after {sep['after']:.2f}")
    m = adapter.metrics_
    print(f"CORAL between held-out simulated and shifted features: vanilla {m['coral_vanilla']:.3g}, "
          f"adapted {m['coral_adapted']:.3g} (weights: CORAL {args.coral_weight:g}, surrogate {args.surrogate_weight:g})")
    print(f"surrogate held-out MAE {adapter.metrics_['surrogate_val_mae']:.3f} (measure in [0, 1])")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {args.threads} thread(s), device {next(adapter.model_.parameters()).device}")
    return {"rows": rows, "separability": sep, "metrics": adapter.metrics_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_rings(sub.add_parser("rings", help="two-time maps per second: batched rings vs a pair loop"))
    simulate = sub.add_parser("simulate", help="grain-boundary simulator maps per second")
    simulate.add_argument("--frames", type=int, nargs="+", default=[64, 128], help="map sides (frames)")
    simulate.add_argument("--n", type=int, default=256, help="maps per timed mode")
    simulate.add_argument("--naive", type=int, default=4, help="maps for the naive pair loop")
    simulate.add_argument("--repeats", type=int, default=3, help="alternating timing rounds")
    p = sub.add_parser("adapt", help="parameters from maps: R² and the domain shift, vanilla vs adapted")
    p.add_argument("--n", type=int, default=2000, help="simulated training maps")
    p.add_argument("--n-exp", type=int, default=300, help="shifted ('experimental') maps")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--side", type=int, default=32, help="network input side (maps are resized)")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--adapt-epochs", type=int, default=10)
    p.add_argument("--photons", type=float, default=0.5, help="mean photons per pixel per frame")
    p.add_argument("--pixels", type=int, default=20000, help="independent speckles in the q-ring")
    p.add_argument("--background", type=float, default=0.05, help="counts per pixel per frame")
    p.add_argument("--mask", type=float, default=0.1, help="fraction of the pixels masked")
    p.add_argument("--coral-weight", type=float, default=1.0)
    p.add_argument("--surrogate-weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--quick", action="store_true", help="300 + 100 maps, 10 + 4 epochs, 2 members")
    args = parser.parse_args()
    if args.command == "adapt" and args.quick:
        args.n, args.n_exp, args.epochs, args.adapt_epochs, args.members = 300, 100, 10, 4, 2
    {"rings": bench_rings, "simulate": bench_simulate, "adapt": bench_adapt}[args.command](args)


if __name__ == "__main__":
    main()
