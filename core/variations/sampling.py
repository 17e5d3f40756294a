"""Material variations (Dao et al. 2025): Monte Carlo sampling around reference latents.

For each reference z_i: draw N perturbations ε_ij with every component ~ U[−γ, γ], decode
X_ij = G(z_i + ε_ij), compare each with G(z_i) (``core.variations.descriptors.METRICS``), keep the
physically plausible ones (:class:`FilterParams`), and describe the variation
V_i = {G(z_i), kept X_ij} (``core.variations.descriptors.DESCRIPTORS``).

Results leave through a *sink* as they are made (one batch of images at a time), so memory
does not grow with M × N: the sampler itself keeps, per reference, the ε (N × d numbers), one
row of scalars per kept sample and a running sum for the trace image.

Reproducibility: reference i draws from ``np.random.default_rng([seed, i])``, all N at once,
and sorts them by ‖ε‖ before decoding; so the same seed gives the same ε whatever the batch
size, sample j of a reference is its j-th smallest transformation, and kept images reach the
sink already ordered by magnitude. The same seed with another γ gives the same draws scaled
by γ (common random numbers: a γ sweep compares like with like).

Per-dimension distance: ``mean ‖ε‖₂ / d``, as the paper reports it. For U[−γ, γ] each
component has E[ε_k²] = γ²/3, so ‖ε‖₂ ≈ γ·sqrt(d/3) and the per-dimension distance is
≈ γ / sqrt(3d) for large d (γ = 1, d = 32: 0.10, the paper's "≈ 0.1 per dimension").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from core.variations.descriptors import (
    DESCRIPTORS, FOREGROUND_K, Variation, compare, describe, foreground, sample_features,
)
from core.models.generator import check_latents, decode, resolve_device

log = logging.getLogger(__name__)


@dataclass
class FilterParams:
    """Plausibility thresholds; None switches a filter off.

    Defaults from the paper, checked on consecutive real colloid frames (64 px): entropy
    differences 0.00–0.30 bits (median 0.08), IoU 0.71–0.92, intensity deviation 0.01–0.27.
    """

    entropy_max: float | None = 0.2  # keep |ΔH| <= this many bits
    iou_min: float | None = 0.5  # keep foreground IoU >= this
    intensity_max: float | None = 0.2  # keep |ΔΣ| / Σref <= this
    area_max: float | None = None  # keep |Δ foreground fraction| <= this; off by default

    # filter -> (metric column, True when the sample passes)
    RULES = {
        "entropy_max": ("entropy_diff", lambda v, t: v <= t),
        "iou_min": ("iou", lambda v, t: v >= t),
        "intensity_max": ("intensity_dev", lambda v, t: v <= t),
        "area_max": ("area_diff", lambda v, t: v <= t),
    }
    RANGES = {"entropy_max": (0.0, 8.0), "iou_min": (0.0, 1.0), "intensity_max": (0.0, math.inf),
              "area_max": (0.0, 1.0)}

    def validate(self) -> FilterParams:
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and lo <= value <= hi):
                upper = "" if math.isinf(hi) else f" and <= {hi:g}"
                raise ValueError(
                    f"{name}={value!r} must be None (off) or a number >= {lo:g}{upper}"
                )
        return self

    @property
    def active(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.RULES if getattr(self, name) is not None}

    def apply(self, metrics: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
        """Kept mask (B,) and, per active filter, how many samples it rejects (a sample can
        fail several)."""
        kept = np.ones(len(metrics), dtype=bool)
        failed = {}
        for name, threshold in self.active.items():
            column, passes = self.RULES[name]
            ok = passes(metrics[column].to_numpy(), threshold)
            failed[name] = int((~ok).sum())
            kept &= ok
        return kept, failed


@dataclass
class VariationParams:
    gamma: float = 1.0  # half-width of U[−γ, γ] per latent component; calibrate it first
    n_per_reference: int = 100  # samples drawn around each reference
    seed: int = 0  # with the reference index, fixes every ε
    batch_size: int | None = None  # decoded at once (None: default_batch_size); speed and memory only, never results
    filters: FilterParams = field(default_factory=FilterParams)
    descriptors: tuple[str, ...] = tuple(DESCRIPTORS)  # names from core.variations.descriptors.DESCRIPTORS
    foreground_k: float = FOREGROUND_K  # robust σ from the background that make a particle

    def __post_init__(self) -> None:
        if isinstance(self.filters, dict):  # from JSON / flow parameters
            self.filters = FilterParams(**self.filters)
        self.descriptors = tuple(self.descriptors)

    def validate(self) -> VariationParams:
        g = self.gamma
        if not (isinstance(g, (int, float)) and math.isfinite(g) and g > 0):
            raise ValueError(f"gamma={g!r} must be > 0")
        if not (isinstance(self.n_per_reference, int) and 1 <= self.n_per_reference <= 1_000_000):
            raise ValueError(
                f"n_per_reference={self.n_per_reference!r} must be between 1 and 1000000"
            )
        if self.batch_size is not None and not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536):
            raise ValueError(f"batch_size={self.batch_size!r} must be between 1 and 65536")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed={self.seed!r} must be an integer >= 0")
        if not (isinstance(self.foreground_k, (int, float)) and self.foreground_k > 0):
            raise ValueError(f"foreground_k={self.foreground_k!r} must be > 0")
        unknown = [n for n in self.descriptors if n not in DESCRIPTORS]
        if unknown:
            raise ValueError(
                f"descriptors {unknown!r} are unknown; choose from {sorted(DESCRIPTORS)}"
            )
        self.filters.validate()
        return self


class VariationSink(Protocol):
    """Where results go as they are made (Tiled in a flow, memory in a notebook)."""

    def reference(self, i: int, z_ref: np.ndarray, image: np.ndarray) -> None:
        """Reference i: its latent (d,) and image G(z_i) (C, H, W)."""

    def samples(self, i: int, eps: np.ndarray, kept: np.ndarray, table: pd.DataFrame,
                kept_images: np.ndarray) -> None:
        """One batch of reference i: ε (B, d), kept mask (B,), one row per sample (columns
        sample, magnitude, kept, metrics, features), the kept images (K, C, H, W) in order."""

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        """Reference i is complete: its descriptors and trace image (C, H, W)."""


class MemorySink:
    """Collects everything in memory: for notebooks and tests, not for large runs."""

    def __init__(self, keep_images: bool = True):
        self.keep_images = keep_images
        self.z_refs: dict[int, np.ndarray] = {}
        self.reference_images: dict[int, np.ndarray] = {}
        self.eps: dict[int, list[np.ndarray]] = {}
        self.tables: list[pd.DataFrame] = []
        self.images: dict[int, list[np.ndarray]] = {}
        self.values: dict[int, dict[str, float]] = {}
        self.traces: dict[int, np.ndarray] = {}

    def reference(self, i: int, z_ref: np.ndarray, image: np.ndarray) -> None:
        self.z_refs[i], self.reference_images[i] = z_ref, image
        self.eps[i], self.images[i] = [], []

    def samples(self, i: int, eps: np.ndarray, kept: np.ndarray, table: pd.DataFrame,
                kept_images: np.ndarray) -> None:
        self.eps[i].append(eps)
        self.tables.append(table.assign(reference=i))
        if self.keep_images:
            self.images[i].append(kept_images)

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        self.values[i], self.traces[i] = values, trace

    def table(self) -> pd.DataFrame:
        """Every sample's row, with its reference index."""
        return pd.concat(self.tables, ignore_index=True) if self.tables else pd.DataFrame()

    def descriptor_table(self) -> pd.DataFrame:
        """One row per completed reference, indexed by reference."""
        return pd.DataFrame.from_dict(self.values, orient="index").sort_index()

    def kept_images(self, i: int) -> np.ndarray:
        """Kept images of reference i, (K, C, H, W), ordered by ‖ε‖."""
        if not self.images[i]:
            return np.zeros((0, *self.reference_images[i].shape), np.float32)
        return np.concatenate(self.images[i])


def default_batch_size(device: torch.device) -> int:
    """Samples decoded at once: 256 on a GPU, 16 on a CPU.

    On a CPU, large batches are slower, not faster: a batch of 256 64 px images has activations
    far beyond the caches (bench/variations.py: batch 16 is 2× faster than 256 and needs 7× less
    memory for a GAN, 1.4× and 3× for a VAE decoder).
    """
    return 256 if torch.device(device).type == "cuda" else 16


def perturbations(seed: int, i: int, n: int, d: int, gamma: float) -> np.ndarray:
    """The n perturbations of reference i: float32 (n, d), U[−γ, γ], sorted by ‖ε‖."""
    u = np.random.default_rng([seed, i]).uniform(-1.0, 1.0, size=(n, d))
    u = u[np.argsort(np.linalg.norm(u, axis=1), kind="stable")]
    return (gamma * u).astype(np.float32)


def expected_distance_per_dim(gamma: float, d: int) -> float:
    """γ / sqrt(3d) = sqrt(E‖ε‖²) / d for ε ~ U[−γ, γ]^d: the large-d value of mean ‖ε‖₂ / d
    (a slight overestimate for small d, by Jensen's inequality)."""
    return gamma / math.sqrt(3 * d)


def sample_variations(
    model: nn.Module,
    references: np.ndarray,
    params: VariationParams,
    sink: VariationSink,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | str | None = None,
) -> dict:
    """Sample, filter and describe the variation of every reference latent.

    Parameters
    ----------
    model : a VAE or GAN (see ``core.models.generator.decoder_for``)
    references : (M, d) reference latents (from a lasso, an inversion or prior draws)
    params : γ, N, seed, batch size, filters, descriptors
    sink : receives results as they are made (:class:`VariationSink`, e.g. :class:`MemorySink`)
    on_progress : ``on_progress(done, total)`` in samples, after each batch
    should_stop : polled before each batch; True stops cleanly. The current reference is then
        left without descriptors and the summary says ``"status": "stopped"``.
    device : None = where the model is; else a ``core.models.device.pick_device`` preference

    Returns
    -------
    summary : JSON-able dict: status, references_done, n_drawn, n_kept, rejected (per filter),
        gamma, latent_dim, distance_per_dim (mean ‖ε‖₂/d of the drawn samples),
        expected_distance_per_dim (γ/sqrt(3d)), seconds

    Example
    -------
    >>> sink = MemorySink()
    >>> summary = sample_variations(gan, prior_latents(10, 64), VariationParams(gamma=1.0), sink)
    >>> sink.descriptor_table()  # one row per reference
    """
    params.validate()
    refs = check_latents(model, references)  # (M, d) float32
    m, d = refs.shape
    device = resolve_device(model, device)
    n, bs, k = params.n_per_reference, params.batch_size or default_batch_size(device), params.foreground_k
    t0 = time.perf_counter()
    total, done, n_kept, refs_done, dist_sum = m * n, 0, 0, 0, 0.0
    rejected = dict.fromkeys(params.filters.active, 0)
    stopped = False
    for i in range(m):
        eps = perturbations(params.seed, i, n, d, params.gamma)  # (N, d), by ‖ε‖
        magnitude = np.linalg.norm(eps.astype(np.float64), axis=1)
        image_ref = decode(model, refs[i : i + 1], device)[0]  # (C, H, W)
        ref_fg = foreground(image_ref[None], k=k)  # (1, H, W)
        reference_row = sample_features(image_ref[None]).iloc[0].to_dict()
        sink.reference(i, refs[i], image_ref)
        trace_sum, kept_tables = image_ref.astype(np.float64), []
        for start in range(0, n, bs):
            if should_stop is not None and should_stop():
                stopped = True
                break
            eb = eps[start : start + bs]
            images = decode(model, refs[i] + eb, device)  # (B, C, H, W)
            fg = foreground(images, k=k)  # (B, H, W)
            metrics = compare(image_ref, images, reference_fg=ref_fg[0], samples_fg=fg)
            kept, failed = params.filters.apply(metrics)
            table = pd.concat([
                pd.DataFrame({"sample": np.arange(start, start + len(eb)),
                              "magnitude": magnitude[start : start + len(eb)], "kept": kept}),
                metrics, sample_features(images),
            ], axis=1)
            trace_sum += images[kept].sum(axis=0, dtype=np.float64)
            kept_tables.append(table[kept])
            for name, count in failed.items():
                rejected[name] += count
            n_kept += int(kept.sum())
            sink.samples(i, eb, kept, table, images[kept])
            done += len(eb)
            dist_sum += float(magnitude[start : start + len(eb)].sum())
            if on_progress is not None:
                on_progress(done, total)
        if stopped:
            log.info("stopped in reference %d of %d after %d samples", i + 1, m, done)
            break
        kept_table = pd.concat(kept_tables, ignore_index=True)
        variation = Variation(
            reference=image_ref, trace=(trace_sum / (1 + len(kept_table))).astype(np.float32),
            kept=kept_table, reference_row=reference_row, n_drawn=n,
        )
        sink.descriptors(i, describe(variation, params.descriptors), variation.trace)
        refs_done += 1
    summary = {
        "status": "stopped" if stopped else "completed",
        "n_references": m, "references_done": refs_done,
        "n_drawn": done, "n_kept": n_kept, "rejected": rejected,
        "gamma": float(params.gamma), "latent_dim": d,
        "distance_per_dim": dist_sum / done / d if done else math.nan,
        "expected_distance_per_dim": expected_distance_per_dim(params.gamma, d),
        "seconds": time.perf_counter() - t0,
    }
    log.info("variations: %d of %d references, kept %d of %d samples", refs_done, m, n_kept, done)
    return summary
