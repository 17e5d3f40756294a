"""How fast does the VAE encoder run on the CPU, batched vs one image at a time?

Real frames (the demo colloid series, 50 × 500 × 500 uint8) are cut into non-overlapping
patches, resized to the model size and encoded with an initialised, untrained VAE (weights
do not change the arithmetic). Live mode encodes frames as they arrive, so the one-at-a-time
rate is the one that matters there; the batched rate is what offline encoding gets.

    .venv/bin/python bench/encode.py [--size 64] [--patch 100] [--n 1250] [--single 250]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.maps.encode import encode_images  # noqa: E402
from core.models.vae import VAE, VAEConfig  # noqa: E402


def patches(path: Path, patch: int, size: int, n: int) -> np.ndarray:
    """Non-overlapping patch × patch crops of every frame, resized to size: (n, size, size)."""
    frames = np.load(path)["frames"]  # (T, H, W) uint8
    t, h, w = frames.shape
    k = (h // patch) * (w // patch)
    cut = frames[:, : h // patch * patch, : w // patch * patch]
    cut = cut.reshape(t, h // patch, patch, w // patch, patch).transpose(0, 1, 3, 2, 4)
    cut = cut.reshape(t * k, patch, patch)  # (T·k, patch, patch)
    x = torch.from_numpy(cut).float().div_(255)[:, None]  # (T·k, 1, patch, patch)
    x = F.interpolate(x, size=(size, size), mode="area")[:, 0].numpy()  # (T·k, size, size)
    reps = -(-n // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:n])


def timed(model: VAE, images: np.ndarray, batch_size: int) -> float:
    """Images per second for one encode_images call."""
    t0 = time.perf_counter()
    encode_images(model, images, batch_size=batch_size)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT / "app/demo_data/colloids_brightfield.npz"
    )
    parser.add_argument("--size", type=int, default=64, help="model image size (power of two)")
    parser.add_argument("--patch", type=int, default=100, help="crop side in the 500 px frames")
    parser.add_argument("--n", type=int, default=1250, help="images for the batched run")
    parser.add_argument("--single", type=int, default=250, help="images for the one-at-a-time run")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--latent-dim", type=int, default=32)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = VAE(VAEConfig(image_size=args.size, latent_dim=args.latent_dim)).eval()
    images = patches(args.data, args.patch, args.size, max(args.n, args.single))
    enc = [model.encoder, model.to_mu, model.to_logvar]
    n_params = sum(p.numel() for m in enc for p in m.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"VAE {args.size}px latent {args.latent_dim} (encoder {n_params / 1e6:.2f}M params), "
          f"{len(images)} patches {args.patch}->{args.size} px from {args.data.name}")
    encode_images(model, images[: 2 * args.batch], batch_size=args.batch)  # warm-up
    encode_images(model, images[:8], batch_size=1)
    load0 = os.getloadavg()[0]
    # Alternate the two modes so both see the same background load on a shared machine.
    rates = {"batched": [], "single": []}
    for _ in range(args.repeats):
        rates["batched"].append(timed(model, images[: args.n], args.batch))
        rates["single"].append(timed(model, images[: args.single], 1))
    best = {k: max(v) for k, v in rates.items()}
    med = {k: float(np.median(v)) for k, v in rates.items()}
    print(f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{args.repeats} alternating rounds")
    print(f"{'mode':<16}{'images':>8}{'best img/s':>12}{'median img/s':>14}{'best ms/img':>13}")
    rows = [("batched", f"batch {args.batch}", args.n), ("single", "one at a time", args.single)]
    for key, label, n in rows:
        print(f"{label:<16}{n:>8}{best[key]:>12.0f}{med[key]:>14.0f}{1e3 / best[key]:>13.2f}")
    print(f"batched / single = {best['batched'] / best['single']:.1f}x (best), "
          f"{med['batched'] / med['single']:.1f}x (median)")


if __name__ == "__main__":
    main()
