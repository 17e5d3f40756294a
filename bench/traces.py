"""Sampled vs measured per-particle traces on real colloid series (issue 12, point 7).

The method's own check (Dao et al. 2025, DESIGN §1): the diffusion areas of per-particle
traces sampled from a generator should match those of real motion over the same time step
(the paper: ratio 1.02). For each shared series this script:

1. preprocesses the frames as ``morphospace ingest --patch-size P --size S`` would
   (``core.data.preprocess``), follows one window through the frames, and takes the stored
   images' effective pixel size (``core.data.results.datasets.effective_scale``);
2. trains a small VAE on every patch of a few frames for ``--epochs`` epochs
   (``core.models.train.train_vae``; the time it took is printed);
3. encodes reference frames (posterior mean), samples variations around them at each γ with the
   particle preset (entropy difference ≤ 0.2 only, no IoU or intensity filter), and extracts the
   per-particle traces of each trace image (``core.variations.traces.trace_table``);
4. measures real traces two ways over W frames: the same extraction on the pixel mean of W
   consecutive stored frames (``core.variations.measured.measured_traces``), and trackpy tracks
   drawn as the region swept by the particle's disc (``core.variations.tracking.track_traces``;
   disc radius from the reference particles' median area);
5. prints medians, IQRs and the mean-area ratio (``compare_traces``) per γ, and trackpy's D
   against Stokes–Einstein where the series' scale is known; and how many particles (and how
   large) the reference frames and their decoded G(z) hold: a generator that draws no particle
   makes the ratio meaningless, whatever its value.

W defaults to 2 frames: γ is matched to the change between consecutive frames (one frame
interval), so a sampled trace is compared with the motion of one frame interval.

    .venv/bin/python bench/traces.py [--series colloids_brightfield colloids_bulk_water]
        [--epochs 10] [--train-frames 20] [--size 64] [--base 8] [--gammas 0.25 0.5 1]
        [--window 2] [--refs 8] [--n 64] [--quick]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.preprocess import PreprocessParams, patch_origins, preprocess_frame  # noqa: E402
from core.data.results.datasets import PhysicalScale, effective_scale  # noqa: E402
from core.maps.encode import encode_images  # noqa: E402
from core.models.device import pick_device  # noqa: E402
from core.models.generator import decode  # noqa: E402
from core.models.train import TrainParams, train_vae  # noqa: E402
from core.models.vae import VAEConfig  # noqa: E402
from core.variations.calibration import real_bands  # noqa: E402
from core.variations.measured import COMPARED, compare_traces, measured_traces  # noqa: E402
from core.variations.filters import FilterParams  # noqa: E402
from core.variations.sampling import MemorySink, VariationParams, sample_variations  # noqa: E402
from core.variations.tracking import TrackingParams, diffusion, stokes_einstein, track, track_traces  # noqa: E402
from core.variations.traces import reference_particles, trace_table  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PARTICLES = FilterParams(entropy_max=0.2, iou_min=None, intensity_max=None)  # the paper's particle study


@dataclass(frozen=True)
class Series:
    """A shared frame series: its scale (from ../shared/data/README.md) and how it is read."""

    name: str
    scale: PhysicalScale  # of the source frames
    patch: int  # patch size (source px) of the window followed through the frames
    patch_index: int  # which of ingest's patches (row-major) that window is
    tracking: TrackingParams  # on the source frames
    radius_m: float | None = None  # sphere radius for Stokes–Einstein, when known


SERIES = {
    # ~5 colloids, 500 px frames, no scale published: results in px and frames
    # the top-right 250 px window holds 3 of them (each ~24 px across, 6 px once stored at 64 px)
    "colloids_brightfield": Series(
        "colloids_brightfield", PhysicalScale(), 250, 1,
        TrackingParams(diameter=15, minmass=1000, search_range=10, min_length=10)),
    # 1 µm latex spheres in water, 2.85 px/µm, 24 frames/s; a 160 px window (~45 spheres of
    # ~11 px, 4.4 px once stored at 64 px) of the 424 × 640 frames
    "colloids_bulk_water": Series(
        "colloids_bulk_water", PhysicalScale(1 / 2.85, "µm", 1 / 24), 160, 0,
        TrackingParams(diameter=11, minmass=100, search_range=5, min_length=25, subtract_drift=True),
        radius_m=0.5e-6),
}


def stored_series(frames: np.ndarray, pre: PreprocessParams, index: int) -> np.ndarray:
    """Patch ``index`` of every frame as ingest stores it: (T, S, S)."""
    return np.stack([preprocess_frame(f, pre)[index] for f in frames])


def train(images: np.ndarray, args) -> tuple[torch.nn.Module, int]:
    """A small VAE trained for ``args.epochs`` epochs (repeatable bit for bit on a CPU), or until
    ``args.train_seconds`` pass if that comes first: (model, epochs completed)."""
    start = time.perf_counter()
    config = VAEConfig(image_size=images.shape[-1], latent_dim=32, base_channels=args.base)
    params = TrainParams(epochs=args.epochs, batch_size=16, val_fraction=0)
    model, history = train_vae(images, config, params,
                               should_stop=lambda: time.perf_counter() - start > args.train_seconds)
    return model, len(history)


def particle_sizes(images: np.ndarray) -> np.ndarray:
    """Pixel counts of every reference particle found in each image (C, H, W) or (H, W)."""
    return np.concatenate([np.bincount(reference_particles(np.asarray(x).reshape(x.shape[-2:])).ravel())[1:]
                           for x in images])


def sampled_traces(model, refs_z, gamma, n, pixel_size, unit) -> tuple[pd.DataFrame, dict]:
    """Per-particle traces of every reference's variation at γ (particle preset)."""
    sink = MemorySink(keep_images=False)
    summary = sample_variations(model, refs_z, VariationParams(gamma=gamma, n_per_reference=n, filters=PARTICLES),
                                sink)
    tables = [trace_table(sink.reference_images[i], sink.traces[i], pixel_size=pixel_size, unit=unit)[0]
              .assign(reference=i) for i in sorted(sink.traces) if sink.traces[i] is not None]
    return (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COMPARED)), summary


def fmt(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.3g}"  # inf: a one-pixel-wide trace


def run(series: Series, args) -> list[dict]:
    raw = np.load(DATA / series.name / "frames.npz")["frames"]
    if args.quick:
        raw = raw[:40]
    t0 = time.perf_counter()
    pre = PreprocessParams(size=args.size, patch_size=series.patch)
    images = stored_series(raw, pre, series.patch_index)
    zoom = args.size / series.patch
    origin = patch_origins(raw.shape[1:], series.patch)[series.patch_index]
    source_shape = (series.patch, series.patch)
    meta = effective_scale(series.scale, source_shape, images.shape[-2:])
    scale = PhysicalScale(meta.get("pixel_size"), meta.get("pixel_unit"), meta.get("frame_interval"))
    px, unit = (scale.pixel_size, scale.length_unit) if scale.length_unit != "px" else (None, "px")
    print(f"\n## {series.name}: {len(raw)} frames {raw.shape[1]}×{raw.shape[2]} → {images.shape[-1]} px "
          f"(stored pixel {fmt(scale.length_per_px)} {unit}; frame interval {fmt(scale.time_per_frame)} "
          f"{scale.time_unit})")

    # real motion: consecutive-frame bands (what γ is matched to), traces from frames and from tracks
    bands = real_bands(images).set_index("metric")
    print(f"consecutive frames: entropy difference median {fmt(bands.loc['entropy_diff', 'median'])}, "
          f"q90 {fmt(bands.loc['entropy_diff', 'q90'])} bits")
    w = args.window
    measured = measured_traces(images, w, pixel_size=px, unit=unit)
    t1 = time.perf_counter()
    window = raw[:, origin[0]: origin[0] + source_shape[0], origin[1]: origin[1] + source_shape[1]]
    tracks = track(window, series.tracking)
    areas = [np.bincount(reference_particles(images[s]).ravel())[1:] for s in range(0, len(images), w)]
    radius = math.sqrt(np.median(np.concatenate(areas)) / math.pi)  # stored px
    tracked = track_traces(tracks, w, radius=radius, zoom=zoom, scale=scale)
    d = diffusion(tracks, PhysicalScale(series.scale.pixel_size, series.scale.pixel_unit, series.scale.frame_interval))
    print(f"trackpy: {tracks['particle'].nunique()} tracks in {time.perf_counter() - t1:.0f} s; {d}")
    if series.radius_m:
        se = stokes_einstein(series.radius_m) * 1e12
        print(f"Stokes–Einstein (295 K, 0.95 mPa·s, a = {series.radius_m * 1e6:g} µm): {se:.3f} µm²/s; "
              f"measured / SE = {d.D / se:.2f} ± {d.se / se:.2f}")
    print(f"disc radius for tracks {radius:.2f} stored px; {len(measured)} frame traces, {len(tracked)} track traces")

    # sampled: a VAE trained for a bounded time, references = the first frame of each window
    t2 = time.perf_counter()
    every = np.linspace(0, len(raw) - 1, min(len(raw), args.train_frames)).astype(int)
    train_images = np.concatenate([preprocess_frame(raw[t], pre) for t in every])  # every patch
    model, epochs = train(train_images, args)
    print(f"VAE (latent 32, base {args.base}) trained {epochs} epochs on {len(train_images)} patches in "
          f"{time.perf_counter() - t2:.0f} s on {next(model.parameters()).device}")
    starts = np.linspace(0, len(images) - w, args.refs).astype(int)
    refs_z, _ = encode_images(model, images[starts])
    real, decoded = particle_sizes(images[starts]), particle_sizes(decode(model, refs_z, "cpu"))
    print(f"particles in the {len(starts)} reference frames: {len(real)} (median {fmt(np.median(real))} px); "
          f"in their decoded G(z): {len(decoded)} (median {fmt(np.median(decoded) if len(decoded) else math.nan)} px)")
    rows = []
    for gamma in args.gammas:
        sampled, summary = sampled_traces(model, refs_z, gamma, args.n, px, unit)
        kept = summary["n_kept"] / max(summary["n_drawn"], 1)
        for against, table in (("frames", measured), ("tracks", tracked)):
            if sampled.empty:
                rows.append({"series": series.name, "gamma": gamma, "against": against, "kept": kept})
                continue
            cmp = compare_traces(sampled, table)
            row = {"series": series.name, "gamma": gamma, "against": against, "kept": kept,
                   "n_sampled": int(cmp.loc["area", "sampled_n"]), "n_measured": int(cmp.loc["area", "measured_n"]),
                   "area_ratio": cmp.loc["area", "ratio"], "ratio_se": cmp.loc["area", "ratio_se"]}
            for name in COMPARED:
                for side in ("sampled", "measured"):
                    row[f"{name}_{side}"] = (f"{fmt(cmp.loc[name, f'{side}_median'])} "
                                             f"[{fmt(cmp.loc[name, f'{side}_q1'])}–{fmt(cmp.loc[name, f'{side}_q3'])}]")
            rows.append(row)
    print(f"(total {time.perf_counter() - t0:.0f} s; areas in {unit}², W = {w} frames)")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES))
    parser.add_argument("--epochs", type=int, default=10, help="VAE epochs (a fixed number: runs repeat)")
    parser.add_argument("--train-seconds", type=float, default=1800.0, help="stop training early after this")
    parser.add_argument("--train-frames", type=int, default=20, help="frames whose patches train the VAE")
    parser.add_argument("--size", type=int, default=64, help="stored side (px) of each window")
    parser.add_argument("--base", type=int, default=8, help="VAE base channels")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--window", type=int, default=2, help="W: frames per measured trace")
    parser.add_argument("--refs", type=int, default=8)
    parser.add_argument("--n", type=int, default=64, help="samples per reference")
    parser.add_argument("--quick", action="store_true", help="40 frames, 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.epochs = min(args.epochs, 2)
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"device {pick_device('auto')}, {torch.get_num_threads()} threads")
    rows = [row for name in args.series for row in run(SERIES[name], args)]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
