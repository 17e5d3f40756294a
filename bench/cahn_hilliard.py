"""Cahn–Hilliard benchmarks (issue 14, points 4 and 5): one subcommand per measurement.

    .venv/bin/python bench/cahn_hilliard.py solver [--size 64] [--steps 400] [--repeats 3]

``solver``: simulation time per stored frame, and the semi-implicit spectral solver
(core.data.cahn_hilliard) against a naive explicit Euler:

1. ``simulate(CHParams(size=N))``: the default grid (3 φ0 × 3 χ runs, 20 snapshots each, t to
   1,500), wall time and time per stored frame.
2. Per-step cost, same 9 runs advanced together: the semi-implicit step (two FFTs) and a naive
   explicit Euler step with 5-point finite-difference Laplacians (np.roll), each over ``--steps``
   steps from the same state, best of ``--repeats``.
3. The explicit step's stability limit. Linearised, a mode with −∇² eigenvalue λ (at most 8 on
   the 5-point stencil) grows by 1 − Δt M λ (f'' + κ λ) per step, so the stiff κ term alone
   needs Δt < 2 / (64 M κ); f'' > 0 in the separated domains lowers it further. The bench runs
   explicit Euler for 2,000 steps from a phase-separated state at 0.5 … 1.5× that bound and
   keeps the largest step whose state stays bounded (|φ − ½| < 1).
4. The ratio: wall time for the explicit scheme (at that largest stable step) to reach t_end
   over the semi-implicit solver's (Δt = 0.5), from the measured per-step costs.

numpy's FFT and elementwise kernels are single-threaded: no thread settings matter here.

    .venv/bin/python bench/cahn_hilliard.py denoise [--epochs 30] [--flip-prob 0.05] [--threads 1]

``denoise``: does training on corrupted inputs help? The demo's simulation (5 φ0 × 4 χ × 24
snapshots, 480 frames of 64²) trains a plain VAE and a denoising VAE (same seed, model and epochs;
salt and pepper ``--flip-prob``, a grid of amplitude 0.1 and 3 FFT rings), and both are scored on
the same held-out frames (core.models.reconstruction) from clean and from corrupted inputs;
the corrupted frames' own scores against the clean ones are the baseline.

    .venv/bin/python bench/cahn_hilliard.py prior [--vae-epochs 30] [--latent-dim 16] [--base-channels 16]
                                                  [--fc-hidden 0] [--ld-epochs 400] [--steps 20] [--threads 1]

``prior``: DESIGN §1 says a latent diffusion model trained on the VAE latents gives better samples
than decoding prior draws. The demo's 480 frames are split 80/20 by a seeded permutation; a VAE
is trained on the 80 % and an unconditional latent diffusion model (core.models.latent_diffusion,
v-prediction, DDIM) on their posterior means μ. Then as many images as there are held-out frames
come from (a) N(0, I) prior draws, (b) a diagonal Gaussian fitted to μ (the diffusion model's
own standardisation, no learning: a control) and (c) latent diffusion samples, all decoded by the
same VAE; the held-out frames and their reconstructions are the reference rows. Scores:
nearest-real latent ℓ2 (each sample's μ-space distance to the nearest training μ; low = on the
data), coverage (each held-out μ's distance to the nearest sample; low = no part of the data
missed), nearest-real image MSE (decoded image to its nearest training frame), and the 1-D
Wasserstein distance to the training frames of three per-image statistics: the peak q of the
radially averaged structure factor (rad/px), the volume fraction (pixels > 0.5) and mean φ
(conserved: φ0 of the run).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from core.data import cahn_hilliard as ch


def laplacian(phi: np.ndarray) -> np.ndarray:
    """5-point Laplacian on the last two (periodic) axes, unit spacing."""
    return (np.roll(phi, 1, -1) + np.roll(phi, -1, -1) + np.roll(phi, 1, -2) + np.roll(phi, -1, -2) - 4 * phi)


def explicit_euler(phi: np.ndarray, chis: np.ndarray, n_steps: int, *, dt: float, mobility: float,
                   kappa: float) -> np.ndarray:
    """The textbook scheme: φ += Δt M ∇²(f'(φ) − κ ∇²φ), finite differences, explicit in everything."""
    chis = chis[:, None, None]
    for _ in range(n_steps):
        phi = phi + dt * mobility * laplacian(ch.chemical_potential(phi, chis) - kappa * laplacian(phi))
    return phi


def stiff_bound(params: ch.CHParams) -> float:
    """Δt bound of the κ∇⁴ term alone on the 5-point stencil (module docstring, point 3)."""
    return 2 / (64 * params.mobility * params.kappa)


def stays_bounded(state: np.ndarray, chis: np.ndarray, dt: float, params: ch.CHParams, n_steps: int = 2000) -> bool:
    with np.errstate(all="ignore"):
        end = explicit_euler(state, chis, n_steps, dt=dt, mobility=params.mobility, kappa=params.kappa)
    return bool(np.isfinite(end).all() and np.abs(end - 0.5).max() < 1)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def denoise(args: argparse.Namespace) -> None:
    import torch

    from core.models.corruption import CorruptionParams, corrupt
    from core.models.reconstruction import held_out_metrics, image_scores
    from core.models.train import TrainParams, train_vae
    from core.models.vae import VAEConfig

    torch.set_num_threads(args.threads)
    frames, _ = ch.simulate(ch.CHParams(phis=(0.3, 0.35, 0.4, 0.45, 0.5), chis=(2.6, 2.8, 3.0, 3.2), n_snapshots=24))
    config = VAEConfig(image_size=64, latent_dim=16, base_channels=16)
    noise = CorruptionParams(flip_prob=args.flip_prob, grid_amplitude=0.1, ring_count=3)
    print(f"{len(frames)} frames of 64², {args.epochs} epochs, torch threads {args.threads}; noise: {noise}")
    x = torch.from_numpy(frames[:, None])
    given = image_scores(corrupt(x, noise, torch.Generator().manual_seed(0)), x)
    print("the corrupted frames themselves: " + ", ".join(f"{k} {float(v.mean()):.4g}" for k, v in given.items()))
    for label, corruption in (("plain VAE", None), ("denoising VAE", noise)):
        t0 = time.perf_counter()
        model, _ = train_vae(frames, config, TrainParams(epochs=args.epochs, batch_size=32, device="cpu",
                                                         corruption=corruption))
        seconds = time.perf_counter() - t0
        scores = held_out_metrics(model, frames, TrainParams(epochs=args.epochs, batch_size=32, corruption=noise))
        print(f"{label} ({seconds:.0f} s): " + "; ".join(
            f"{kind} input MSE {m['mse']:.4f}, PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}"
            for kind, m in scores.items()))


def nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared ℓ2 from each row of a (n, k) to its nearest row of b (m, k): (n,)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d2.min(1), 0.0)


def image_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image (N, S, S): structure factor peak q (rad/px), volume fraction (> 0.5) and mean φ."""
    q, s = ch.structure_factor(images)
    return {"peak q": q[s.argmax(-1)], "volume fraction": (images > 0.5).mean((1, 2)), "mean φ": images.mean((1, 2))}


def prior(args: argparse.Namespace) -> None:
    import torch
    from scipy.stats import wasserstein_distance

    from core.maps.encode import encode_images
    from core.maps.quality import active_units
    from core.models.flow_matching import fit_latent_model
    from core.models.generator import decode_batches
    from core.models.latent_diffusion import LatentDiffusion, LatentDiffusionConfig
    from core.models.train import TrainParams, train_vae
    from core.models.vae import VAEConfig

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    frames, _ = ch.simulate(ch.CHParams(phis=(0.3, 0.35, 0.4, 0.45, 0.5), chis=(2.6, 2.8, 3.0, 3.2), n_snapshots=24))
    order = np.random.default_rng(args.seed).permutation(len(frames))
    n_test = len(frames) // 5
    test, train = frames[order[:n_test]], frames[order[n_test:]]
    config = VAEConfig(image_size=64, latent_dim=args.latent_dim, base_channels=args.base_channels,
                       fc_hidden=args.fc_hidden, beta=args.beta)
    print(f"{len(train)} training and {n_test} held-out frames of 64²; VAE {config.widths}, fc_hidden "
          f"{config.fc_hidden}, d={config.latent_dim}, β={config.beta:g}, {args.vae_epochs} epochs, batch 32; "
          f"torch threads {args.threads}, load average {os.getloadavg()[0]:.1f} at start")
    vae, history = train_vae(train, config, TrainParams(epochs=args.vae_epochs, batch_size=32, seed=args.seed,
                                                        device="cpu"))
    print(f"VAE: {time.perf_counter() - t0:.0f} s, val loss {history[0]['val_loss']:.1f} → {history[-1]['val_loss']:.1f}")
    mu_train, logvar_train = encode_images(vae, train)
    mu_test, _ = encode_images(vae, test)
    d = mu_train.shape[1]
    print(f"active latent units (KL per dimension > 0.01): {active_units(mu_train, logvar_train)[0]} of {d}")
    diffusion = LatentDiffusion(LatentDiffusionConfig(latent_dim=d, conditional=False))
    fit = fit_latent_model(diffusion, mu_train, np.zeros((len(mu_train), 2)), epochs=args.ld_epochs,
                           seed=args.seed, device="cpu")
    print(f"latent diffusion: {fit.seconds:.0f} s, val loss {fit.val_loss[0]:.3f} → {fit.val_loss[-1]:.3f}")

    rng = np.random.default_rng(args.seed + 1)
    latents = {
        "prior N(0, I)": rng.standard_normal((n_test, d)).astype(np.float32),
        "diagonal Gaussian fit to μ": (mu_train.mean(0) + mu_train.std(0) * rng.standard_normal((n_test, d))
                                       ).astype(np.float32),
        f"latent diffusion ({args.steps} DDIM steps)": diffusion.eval().sample(None, n_test, seed=args.seed + 1,
                                                                              steps=args.steps)[0],
    }

    def decode(z: np.ndarray) -> np.ndarray:
        return np.concatenate(list(decode_batches(vae, z, 256, device="cpu"))).reshape(len(z), 64, 64)

    rows = {"held-out frames (reference)": (mu_test, test), "their reconstructions": (mu_test, decode(mu_test))}
    rows.update({name: (z, decode(z)) for name, z in latents.items()})
    real = image_stats(train)
    print(f"\n| {n_test} images from | nearest-real latent ℓ2 | coverage ℓ2 | nearest-real image MSE | "
          + " | ".join(f"W1 {k}" for k in real) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(real))
    for name, (z, images) in rows.items():
        to_real, cover = np.sqrt(nearest(z, mu_train)), np.sqrt(nearest(mu_test, z))
        mse = nearest(images.reshape(len(images), -1), train.reshape(len(train), -1)) / images[0].size
        stats = image_stats(images)
        print(f"| {name} | {to_real.mean():.2f} ± {to_real.std():.2f} | {cover.mean():.2f} | {mse.mean():.4f} | "
              + " | ".join(f"{wasserstein_distance(stats[k], real[k]):.4f}" for k in real) + " |")
    print(f"\n{time.perf_counter() - t0:.0f} s in all; load average {os.getloadavg()[0]:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    solver = sub.add_parser("solver", help="time per frame; semi-implicit vs explicit Euler")
    solver.add_argument("--size", type=int, default=64)
    solver.add_argument("--steps", type=int, default=400, help="steps timed per scheme")
    solver.add_argument("--repeats", type=int, default=3)
    den = sub.add_parser("denoise", help="plain vs denoising VAE on corrupted held-out frames")
    den.add_argument("--epochs", type=int, default=30)
    den.add_argument("--flip-prob", type=float, default=0.05)
    den.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on a loaded 2-core machine)")
    pri = sub.add_parser("prior", help="decoded prior draws vs latent diffusion samples")
    pri.add_argument("--vae-epochs", type=int, default=30)
    pri.add_argument("--latent-dim", type=int, default=16)
    pri.add_argument("--base-channels", type=int, default=16)
    pri.add_argument("--fc-hidden", type=int, default=0, help="1024 with --base-channels 32 --latent-dim 128: the study's")
    pri.add_argument("--beta", type=float, default=1.0)
    pri.add_argument("--ld-epochs", type=int, default=400, help="latent diffusion epochs")
    pri.add_argument("--steps", type=int, default=20, help="DDIM steps")
    pri.add_argument("--seed", type=int, default=0)
    pri.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.command in ("denoise", "prior"):
        {"denoise": denoise, "prior": prior}[args.command](args)
        return

    params = ch.CHParams(size=args.size)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}, grid {args.size}²")
    t0 = time.perf_counter()
    frames, _ = ch.simulate(params)
    wall = time.perf_counter() - t0
    n_steps = int(round(params.t_end / params.dt))
    print(f"simulate (default grid: {len(params.runs)} runs × {params.n_snapshots} snapshots, t to "
          f"{params.t_end:g}, {n_steps:,} steps of Δt = {params.dt:g}): {wall:.2f} s, "
          f"{1e3 * wall / len(frames):.2f} ms per stored frame")

    runs = np.array(params.runs)
    chis = runs[:, 1]
    a = ch.stabiliser(chis)
    state = ch.evolve(ch.initial_state(runs[:, 0], args.size, params.noise, np.random.default_rng(0)), chis, 200,
                      dt=params.dt, mobility=params.mobility, kappa=params.kappa, a=a)  # phase-separated
    semi = best_time(lambda: ch.evolve(state, chis, args.steps, dt=params.dt, mobility=params.mobility,
                                       kappa=params.kappa, a=a), args.repeats) / args.steps
    bound = stiff_bound(params)
    naive = best_time(lambda: explicit_euler(state, chis, args.steps, dt=0.5 * bound, mobility=params.mobility,
                                             kappa=params.kappa), args.repeats) / args.steps
    print(f"per step, {len(runs)} runs together: semi-implicit spectral {1e3 * semi:.3f} ms, "
          f"explicit Euler (finite differences) {1e3 * naive:.3f} ms")
    verdicts = {f: stays_bounded(state, chis, f * bound, params) for f in (0.5, 0.8, 1.0, 1.2, 1.5)}
    print(f"explicit Euler, 2,000 steps at multiples of the stiff bound Δt = {bound:.4g}: "
          + ", ".join(f"{f:g}×: {'bounded' if ok else 'blew up'}" for f, ok in verdicts.items()))
    stable = [f for f, ok in verdicts.items() if ok]
    if not stable:
        print("explicit Euler blew up at every step tried")
        return
    dt_naive = max(stable) * bound
    t_semi, t_naive = n_steps * semi, params.t_end / dt_naive * naive
    print(f"to t = {params.t_end:g}: semi-implicit {t_semi:.2f} s ({n_steps:,} steps), explicit at Δt = "
          f"{dt_naive:.4g} {t_naive:.1f} s ({params.t_end / dt_naive:,.0f} steps): ratio {t_naive / t_semi:.0f}×")


if __name__ == "__main__":
    main()
