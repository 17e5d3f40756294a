"""How fast is Monte Carlo sampling of material variations, batched vs one sample at a time?

Dao et al.'s public code generates images through Python lists, one latent at a time. Here
`core.variations.sample_variations` decodes, filters and measures a batch of perturbed latents
at once. Both runs below use the same function, the same seed and the same generator (an
initialised, untrained GAN or VAE decoder: weights do not change the arithmetic), so they
produce identical results and differ only in batch size; the script checks that they agree.

    .venv/bin/python bench/variations.py [--family gan] [--size 64] [--refs 4] [--n 256]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.checkpoint import build_model  # noqa: E402
from core.generator import latent_dim_of, prior_latents  # noqa: E402
from core.variations import MemorySink, VariationParams, sample_variations  # noqa: E402


def run(model, refs: np.ndarray, n: int, batch_size: int) -> tuple[float, MemorySink]:
    """Samples per second of one sample_variations call, and what it produced."""
    sink = MemorySink(keep_images=False)
    params = VariationParams(gamma=1.0, n_per_reference=n, seed=0, batch_size=batch_size)
    t0 = time.perf_counter()
    sample_variations(model, refs, params, sink, device="cpu")
    return len(refs) * n / (time.perf_counter() - t0), sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["gan", "vae"], default="gan")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--refs", type=int, default=4, help="reference states M")
    parser.add_argument("--n", type=int, default=256, help="samples per reference N (batched run)")
    parser.add_argument("--single", type=int, default=32, help="samples per reference, one-at-a-time run")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = {"image_size": args.size, "latent_dim": args.latent_dim}
    model = build_model(args.family, config).eval()
    if args.family == "gan":  # a fully grown generator: every block runs
        while model.resolution < args.size:
            model.grow()
        model.set_alpha(1.0)
    refs = prior_latents(args.refs, latent_dim_of(model), seed=1)
    run(model, refs[:1], 8, 8)  # warm-up

    batched, _ = run(model, refs, args.n, args.batch)
    single, one = run(model, refs, args.single, 1)
    # The same draws batched must give the same samples and verdicts (N fixes the draws); the
    # metrics agree to float rounding (a pixel that lands in the next histogram bin moves the
    # entropy by ~1e-4 bits).
    _, many = run(model, refs, args.single, args.batch)
    a, b = many.table(), one.table()
    agree = a[["reference", "sample", "kept"]].equals(b[["reference", "sample", "kept"]]) and np.allclose(
        a[["entropy_diff", "iou", "intensity_dev"]].to_numpy(float),
        b[["entropy_diff", "iou", "intensity_dev"]].to_numpy(float), atol=1e-3)
    print(f"{args.family} {args.size} px, d={latent_dim_of(model)}, torch threads {torch.get_num_threads()}")
    print(f"batched (batch {args.batch}): {batched:8.1f} samples/s  ({args.refs} × {args.n})")
    print(f"one at a time:       {single:8.1f} samples/s  ({args.refs} × {args.single})")
    print(f"ratio {batched / single:.1f}x; same samples, same verdicts: {agree}")


if __name__ == "__main__":
    main()
