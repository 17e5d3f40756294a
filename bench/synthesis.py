"""Synthesis from the map: the study's evaluation table on a real map, with train and sample times.

Builds a map in this process the way the flows do (VAE → latents → UMAP → HDBSCAN), then scores
every sampler of ``core.synthesis`` on held-out points drawn per cluster
(``core.synthesis.evaluate``): UMAP-guided PCA, kNN retrieval, PCA random, conditional flow
matching (the study's network and recipe), its unconditional model (guidance 0) and latent
diffusion (conditional, v-prediction, 20 DDIM steps). Prints a markdown table: latent ℓ2 to the
target, pixel MSE of the decoded image against the decoded target, landing distance of the
generated latent on the map (map units), training and sampling seconds.

Data: ``digits`` (scikit-learn's 1,797 digits, 8×8 → 32×32) or ``bulk_water`` (the shared
colloid frames, ../shared/data/colloids_bulk_water: non-overlapping 106 px patches of the
first ``--frames`` frames, area-averaged to 32×32; ``--standardise`` rescales each patch to its own
mean and spread, removing the illumination; ``--random-crops`` cuts 24 patches a frame at random
places, so no two patches share a position) or ``cahn_hilliard`` (the Cahn–Hilliard demo's
480 simulated frames: 5 φ0 × 4 χ × 24 snapshots of 64², area-averaged to 32×32).

    .venv/bin/python bench/synthesis.py [--data digits|bulk_water|cahn_hilliard] [--epochs 200]
                                        [--standardise] [--random-crops] [--vae-epochs 10] [--beta 1] [--per-cluster 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from core.maps.clustering import cluster_hdbscan  # first: core sets OpenMP's wait policy before torch loads
from core.maps.encode import encode_images
from core.maps.projection import Projector
from core.models.flow_matching import FlowMatching, FlowMatchingConfig, fit_latent_model
from core.models.generator import decode_batches
from core.models.latent_diffusion import LatentDiffusion, LatentDiffusionConfig
from core.models.train import TrainParams, train_vae
from core.models.vae import VAEConfig
from core.synthesis.catalog import FITTED, SynthesisMap, fit_sampler
from core.synthesis.evaluate import query_rows, score_samplers, summarise
from core.synthesis.flow_matching import FlowMatchingSampler
from core.synthesis.latent_diffusion import LatentDiffusionSampler
import torch  # noqa: E402 (after core: see above)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def load_images(name: str, frames: int, standardise: bool = False, random_crops: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 (N, 32, 32) images in [0, 1], and for bulk_water the cell (0..23) of the 4 × 6 grid
    each patch's centre lies in (None for the other data)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        return np.kron(load_digits().images.astype(np.float32) / 16.0, np.ones((4, 4), np.float32)), None
    if name == "cahn_hilliard":  # the Cahn–Hilliard demo's grid (app.demo.demo_ch_params): 480 frames of 64²
        from core.data.cahn_hilliard import CHParams, simulate

        phi, _ = simulate(CHParams(phis=(0.3, 0.35, 0.4, 0.45, 0.5), chis=(2.6, 2.8, 3.0, 3.2), n_snapshots=24))
        t = torch.from_numpy(np.clip(phi, 0.0, 1.0).astype(np.float32))[:, None]  # φ is a volume fraction
        return torch.nn.functional.adaptive_avg_pool2d(t, 32)[:, 0].numpy(), None
    stack = np.load(SHARED / "colloids_bulk_water" / "frames.npz")["frames"][:frames].astype(np.float32) / 255.0
    p, (h, w) = 106, stack.shape[1:]  # 4 × 6 patches per 424 × 640 frame
    if random_crops:  # 24 crops a frame at seeded random places: no two patches share a position
        corners = np.random.default_rng(0).integers(0, [h - p + 1, w - p + 1], (len(stack), 24, 2))
        patches = np.stack([stack[i, y : y + p, x : x + p] for i in range(len(stack)) for y, x in corners[i]])
        centres = corners.reshape(-1, 2) + p / 2
    else:
        patches = stack[:, : 4 * p, : 6 * p].reshape(len(stack), 4, p, 6, p).transpose(0, 1, 3, 2, 4).reshape(-1, p, p)
        rows, cols = np.meshgrid(np.arange(4), np.arange(6), indexing="ij")
        centres = np.tile(np.stack([rows.ravel(), cols.ravel()], 1) * p + p / 2, (len(stack), 1))
    cell = (centres[:, 0] // (h / 4)).astype(int) * 6 + (centres[:, 1] // (w / 6)).astype(int)
    t = torch.from_numpy(patches)[:, None]  # (N, 1, p, p)
    images = torch.nn.functional.adaptive_avg_pool2d(t, 32)[:, 0].numpy()
    if standardise:  # z-score per patch, ±3σ mapped onto [0, 1]
        z = (images - images.mean((1, 2), keepdims=True)) / (images.std((1, 2), keepdims=True) + 1e-6)
        images = np.clip((z + 3) / 6, 0, 1).astype(np.float32)
    return images, cell


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=("digits", "bulk_water", "cahn_hilliard"), default="digits")
    ap.add_argument("--frames", type=int, default=100, help="bulk_water: frames cut into patches")
    ap.add_argument("--standardise", action="store_true",
                    help="bulk_water: each patch to its own mean and std (removes the illumination)")
    ap.add_argument("--vae-epochs", type=int, default=10)
    ap.add_argument("--random-crops", action="store_true",
                    help="bulk_water: 24 crops a frame at random places instead of the fixed 4 × 6 grid")
    ap.add_argument("--beta", type=float, default=1.0, help="the VAE's KL weight")
    ap.add_argument("--latent-dim", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=200, help="flow matching and diffusion epochs")
    ap.add_argument("--min-cluster-size", type=int, default=30)
    ap.add_argument("--per-cluster", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()[0]:.1f} at start")
    images, cell = load_images(args.data, args.frames, args.standardise, args.random_crops)
    vae, _ = train_vae(images, VAEConfig(image_size=32, latent_dim=args.latent_dim, base_channels=16, max_channels=64,
                                          beta=args.beta),
                       TrainParams(epochs=args.vae_epochs, batch_size=64, seed=args.seed))
    mu, _ = encode_images(vae, images)
    projector = Projector("umap", 2, random_state=args.seed)
    coords = projector.fit_transform(mu).astype(np.float64)
    clusters = cluster_hdbscan(coords, min_cluster_size=args.min_cluster_size)
    m = SynthesisMap("bench", mu, coords, clusters.labels, clusters.probabilities, "bench", "bench", "bench", None)
    print(f"{args.data}: {len(images)} images, d={mu.shape[1]}, {clusters.n_clusters} clusters, "
          f"{100 * clusters.noise_fraction:.0f}% noise; map built in {time.perf_counter() - t0:.0f} s")
    if cell is not None:  # do the clusters only say where a patch was cut from?
        from sklearn.metrics import adjusted_rand_score

        kept = clusters.labels >= 0
        print(f"clusters against the 4 × 6 grid cell of the patch centres: adjusted Rand index "
              f"{adjusted_rand_score(cell[kept], clusters.labels[kept]):.2f} (1 = the same partition)")

    heldout = m.heldout()
    train_seconds: dict[str, float] = {}
    samplers = {}
    for name in FITTED:
        start = time.perf_counter()
        samplers[name] = fit_sampler(name, m)
        train_seconds[name] = time.perf_counter() - start
    members = (m.labels >= 0) & (m.probabilities > 0.5)  # the study's training members
    d = mu.shape[1]
    for name, model in (("flow_matching", FlowMatching(FlowMatchingConfig(latent_dim=d))),
                        ("latent_diffusion", LatentDiffusion(LatentDiffusionConfig(latent_dim=d)))):
        fit = fit_latent_model(model, mu[members], coords[members], epochs=args.epochs, val_mask=heldout[members],
                               seed=args.seed, device="auto")
        train_seconds[name] = fit.seconds
        print(f"{name}: {fit.seconds:.0f} s ({fit.seconds / args.epochs:.2f} s an epoch), val loss {fit.val_loss[0]:.3f} → {fit.val_loss[-1]:.3f}")
        samplers[name] = (FlowMatchingSampler if name == "flow_matching" else LatentDiffusionSampler)(model)
    samplers["unconditional"] = FlowMatchingSampler(samplers["flow_matching"].model, guidance=0.0)
    train_seconds["unconditional"] = train_seconds["flow_matching"]
    samplers["flow_matching_s1"] = FlowMatchingSampler(samplers["flow_matching"].model, guidance=1.0)
    train_seconds["flow_matching_s1"] = train_seconds["flow_matching"]

    rows = query_rows(m.labels, heldout, per_cluster=args.per_cluster, seed=args.seed)

    def decode(z: np.ndarray) -> np.ndarray:
        return np.concatenate(list(decode_batches(vae, z, 256)))

    scores, seconds = score_samplers(samplers, mu[rows], coords[rows], decode=decode,
                                     project=projector.transform, seed=args.seed)
    print(f"\n{len(rows)} held-out queries ({args.per_cluster} per cluster); map extent "
          f"{np.ptp(coords, 0).round(1).tolist()} (map units)\n")
    print("| sampler | latent ℓ2 | pixel MSE | landing (map units) | train s | sample s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in summarise(scores).itertuples():
        print(f"| {r.sampler} | {r.latent_l2_mean:.2f} ± {r.latent_l2_std:.2f} | {r.pixel_mse_mean:.2e} ± "
              f"{r.pixel_mse_std:.1e} | {r.landing_mean:.2f} ± {r.landing_std:.2f} | "
              f"{train_seconds[r.sampler]:.1f} | {seconds[r.sampler]:.2f} |")
    print(f"\n{time.perf_counter() - t0:.0f} s in all; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
