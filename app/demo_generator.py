"""Train the generator the demo ships (``app/demo_data/colloids_vae.pt``), so the demo's material
variations show particles without a long wait (issue 12, point 5).

A VAE trained for the demo's default few epochs decodes blurred patches with no colloid in them,
and the per-particle traces of its variations are then empty or meaningless (bench/traces.py:
10 epochs drew 9 particle-sized specks and no colloid; the decoded particles match the real
ones from a few hundred epochs on 80 patches). Training that long takes tens of minutes on two
CPU cores, longer than a new user should wait, so the weights are trained once by this script
and shipped small (float16, ~0.75 MB; the shipped file: 120 epochs, found again 55 of the 56
particles of 200 real patches in their reconstructions): the demo fine-tunes them on its own ingest of the same
frames for ``demo_epochs`` epochs, which shows training progress as any map build does.

The images are exactly the demo's (``app.demo.demo_params``: the same file and preprocessing),
so a model trained here fits the demo's dataset; its config is the demo's ``TrainOptions``.

    .venv/bin/python -m app.demo_generator [--epochs 120] [--out app/demo_data/colloids_vae.pt] [--resume FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.data.preprocess import preprocess_frame
from core.models.checkpoint import file_provenance, load_file, save_file
from core.models.train import TrainParams, train_vae
from core.models.vae import VAEConfig

SHIPPED = Path(__file__).resolve().parent / "demo_data" / "colloids_vae.pt"


def demo_images() -> np.ndarray:
    """The demo dataset's images (N, 64, 64) float32, preprocessed as its ingest does."""
    from app.demo import DEMO_FILE, demo_params
    from core.settings import get_settings

    pre = demo_params(get_settings()).ingest.preprocess
    frames = np.load(DEMO_FILE)["frames"]
    return np.concatenate([preprocess_frame(f, pre) for f in frames]).astype(np.float32)


def demo_config(image_size: int) -> VAEConfig:
    from app.demo import demo_params
    from core.settings import get_settings

    train = demo_params(get_settings()).train
    return VAEConfig(image_size=image_size, latent_dim=train.latent_dim, base_channels=train.base_channels,
                     fc_hidden=train.fc_hidden, beta=train.beta).validate()


def particle_check(model: torch.nn.Module, images: np.ndarray, n: int = 200) -> dict:
    """Particles (``core.variations.traces.reference_particles``) of ``n`` real patches found
    again in their reconstructions G(μ(x)): the shipped generator is good enough when its decoded
    images hold the frames' particles where the frames hold them (an undertrained one decodes a
    blur: none, or specks where there is no particle).

    A real particle is *found* when half its pixels are particle pixels of the decoded patch; a
    decoded particle is *spurious* when none of its pixels is a real particle's.
    """
    from core.variations.traces import reference_particles

    x = torch.from_numpy(images[:n, None])
    with torch.no_grad():
        decoded = model.decode(model.encode(x)[0]).numpy()[:, 0]
    real = found = decoded_n = spurious = 0
    for image, rec in zip(images[:n], decoded):
        a, b = reference_particles(image), reference_particles(rec)
        real += a.max()
        found += sum(np.mean(b[a == j] > 0) >= 0.5 for j in range(1, a.max() + 1))
        decoded_n += b.max()
        spurious += sum(not np.any(a[b == k] > 0) for k in range(1, b.max() + 1))
    return {"patches": int(len(decoded)), "particles_real": int(real), "found": int(found),
            "particles_decoded": int(decoded_n), "spurious": int(spurious),
            "pixel_correlation": round(float(np.corrcoef(images[:n].ravel(), decoded.ravel())[0, 1]), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--resume", type=Path, help="continue training this file's weights")
    args = parser.parse_args(argv)

    images = demo_images()
    config = demo_config(images.shape[-1])
    t0 = time.perf_counter()

    init = load_file(args.resume) if args.resume else None
    before = file_provenance(args.resume) if args.resume else {}

    def on_epoch(row: dict) -> None:
        print(f"epoch {row['epoch']}/{row['epochs']} loss {row['loss']:.2f} val {row['val_loss']:.2f} "
              f"({row['seconds']:.1f} s)", flush=True)

    model, history = train_vae(images, config, TrainParams(epochs=args.epochs, seed=args.seed), on_epoch=on_epoch,
                               init_state=init.state_dict() if init else None)
    provenance = {"script": "python -m app.demo_generator", "epochs": before.get("epochs", 0) + len(history),
                  "seed": args.seed, "n_images": len(images), "val_loss": history[-1]["val_loss"],
                  "seconds": round(before.get("seconds", 0) + time.perf_counter() - t0, 1),
                  "torch": str(torch.__version__), "particle_check": particle_check(model, images)}
    # float16: half the bytes; see tests/test_demo_generator.py for what it changes in decoded images
    print(f"wrote {save_file(model, args.out, half=True, provenance=provenance)}: {provenance}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
