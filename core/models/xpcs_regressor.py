"""Physical parameters from two-time maps: a CNN feature extractor, an MLP head and a surrogate.

The grain-boundary XPCS study (DESIGN §1, XPCS) trains a CNN + MLP regressor on simulated
two-time maps and adapts it to experiment with CORAL plus a frozen surrogate (parameters ->
non-equilibrium measure). This file holds the networks and the fixed input/output conventions;
the training lives in ``core.xpcs.adapt``.

Input: :func:`prepare_maps` turns maps of any side (350 × 350 or 50 × 50 measured) into
``(N, 1, side, side)``: ``(C - 1) / beta`` with ``beta`` the map's baseline contrast, the median
of ``C - 1`` one frame off the diagonal. The Siegert relation ``C = 1 + beta |f|^2`` makes this
``|f|^2``, about 1 at short lag and 0 once decorrelated, whatever the optical contrast of the
beamline (a nuisance the parameters do not set); maps stored as ``C - 1`` are recognised (median
below 0.5) and shifted back. The main diagonal holds the contrast plus single
frame shot noise, and some authors overwrite it, so it is replaced by its neighbours first. Two
coordinate channels (lag ``|t2 - t1|`` and age ``(t1 + t2) / 2``, both in [0, 1] of the map's
duration) go in beside it: the network pools globally, and ageing is a dependence on where
along the diagonal a decay happens, which pooling alone would forget (CoordConv, Liu et al. 2018).

Output: parameters normalised to [0, 1] by :func:`normalise` (log10 for positive parameters
spanning decades, such as D; min-max for the rest); :func:`denormalise` maps back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.models import resize

IN_CHANNELS = 3  # normalised map, lag, age


@dataclass
class XPCSConfig:
    side: int = 32  # maps are resized to side × side: a 64-frame map at half resolution
    base_channels: int = 16  # width of the first conv block; doubles per block up to feature_dim
    n_blocks: int = 4  # stride-2 blocks: 32 -> 2 px, a receptive field covering the map
    feature_dim: int = 64  # the vector CORAL aligns and the UMAP shows
    hidden: int = 64  # width of the MLP head and of the surrogate
    n_members: int = 3  # ensemble over seeds: mean ± sd per parameter
    param_names: list[str] = field(default_factory=lambda: ["D", "kappa", "c", "T"])
    ranges: list[list[float]] = field(default_factory=lambda: [[1.0, 10.0]] * 4)  # [lo, hi] each
    log_params: list[str] = field(default_factory=lambda: ["D"])  # normalised on log10

    def validate(self) -> XPCSConfig:
        """Raise ValueError naming the bad field, its value and the allowed range."""
        for name, lo, hi in (("side", 8, 512), ("base_channels", 1, 256), ("n_blocks", 1, 8),
                             ("feature_dim", 2, 1024), ("hidden", 2, 4096), ("n_members", 1, 32)):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
                raise ValueError(f"{name}={value!r} must be an integer between {lo} and {hi}")
        if self.side >> self.n_blocks < 1:
            raise ValueError(f"n_blocks={self.n_blocks} halves side={self.side} below 1 px; use fewer blocks")
        if len(self.ranges) != len(self.param_names) or not self.param_names:
            raise ValueError(f"ranges ({len(self.ranges)}) must give one [lo, hi] per parameter "
                             f"of {self.param_names!r}")
        for name, (lo, hi) in zip(self.param_names, self.ranges):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"range of {name} = [{lo!r}, {hi!r}] must be finite with lo < hi")
            if name in self.log_params and lo <= 0:
                raise ValueError(f"{name} is normalised on log10, so its range [{lo!r}, {hi!r}] must be > 0")
        unknown = set(self.log_params) - set(self.param_names)
        if unknown:
            raise ValueError(f"log_params {sorted(unknown)} are not among param_names {self.param_names!r}")
        return self

    @classmethod
    def from_ranges(cls, ranges: Mapping[str, Sequence[float]], *, log_params: Sequence[str] = ("D",),
                    **fields) -> XPCSConfig:
        """A config for ``{"D": (lo, hi), ...}`` (a simulator's PARAM_RANGES), in its order."""
        return cls(param_names=list(ranges), ranges=[[float(lo), float(hi)] for lo, hi in ranges.values()],
                   log_params=[p for p in log_params if p in ranges], **fields).validate()

    @property
    def widths(self) -> list[int]:
        return [min(self.base_channels * 2**i, self.feature_dim) for i in range(self.n_blocks)]


# -- parameters <-> [0, 1] -----------------------------------------------------------------------
def _bounds(config: XPCSConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    is_log = np.array([n in config.log_params for n in config.param_names])
    lo, hi = np.array(config.ranges, dtype=np.float64).T
    log_lo, log_hi = np.log10(np.where(is_log, lo, 1.0)), np.log10(np.where(is_log, hi, 1.0))
    return np.where(is_log, log_lo, lo), np.where(is_log, log_hi, hi), is_log


def normalise(values: np.ndarray, config: XPCSConfig) -> np.ndarray:
    """Physical parameters (N, P), in ``config.param_names`` order -> [0, 1] (log10 for log_params).

    >>> cfg = XPCSConfig(param_names=["D", "c"], ranges=[[1e-3, 1e-1], [0, 0.5]])
    >>> normalise(np.array([[1e-2, 0.25]]), cfg)
    array([[0.5, 0.5]])
    """
    values = np.asarray(values, dtype=np.float64)
    lo, hi, is_log = _bounds(config)
    if is_log.any() and (values[:, is_log] <= 0).any():
        raise ValueError(f"log-normalised parameters {np.array(config.param_names)[is_log].tolist()} must be > 0")
    scaled = np.where(is_log, np.log10(np.where(is_log, values, 1.0)), values)
    return (scaled - lo) / (hi - lo)


def denormalise(scaled: np.ndarray, config: XPCSConfig) -> np.ndarray:
    """Inverse of :func:`normalise`; values outside [0, 1] are clipped onto the training ranges."""
    lo, hi, is_log = _bounds(config)
    raw = lo + np.clip(np.asarray(scaled, dtype=np.float64), 0.0, 1.0) * (hi - lo)
    return np.where(is_log, 10.0 ** np.where(is_log, raw, 0.0), raw)


# -- maps -> network input ----------------------------------------------------------------------
def baseline_contrast(C: np.ndarray) -> float:
    """Median of ``C - 1`` one frame off the diagonal: the speckle contrast at the shortest lag."""
    return float(np.median(np.diagonal(C, offset=1)) - 1.0)


def normalise_map(C: np.ndarray) -> np.ndarray:
    """``(C - 1) / beta`` with the diagonal replaced by its neighbours' mean (see the module doc).

    A map whose median is below 0.5 is taken as stored as ``C - 1`` (some authors do, as the
    shared yolk-plasma map): ``C = <I I> / (<I><I>)`` is 1 + beta |f|^2, never below ~1.
    """
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] < 3:
        raise ValueError(f"a two-time map must be square (T, T) with T >= 3, got shape {C.shape}")
    if not np.isfinite(C).all():
        raise ValueError("the map holds NaN or inf; fill or crop those entries first")
    C = C.copy()
    if np.median(C) < 0.5:  # stored as C - 1 (the shared yolk-plasma map): C itself is >= ~1
        C += 1.0
    off = np.diagonal(C, offset=1)
    idx = np.arange(len(C))
    C[idx, idx] = np.concatenate([[off[0]], (off[:-1] + off[1:]) / 2, [off[-1]]])
    beta = baseline_contrast(C)
    if not beta > 0:
        raise ValueError(f"the map's contrast at lag 1 is {beta:.3g} (C - 1 must be positive there): "
                         "it holds no correlated speckle; check the q-ring or the frames")
    return (C - 1.0) / beta


def prepare_maps(maps: Sequence[np.ndarray] | np.ndarray, side: int) -> torch.Tensor:
    """Maps of any sides -> float32 (N, 3, side, side): normalised map, lag and age channels."""
    if len(maps) == 0:
        raise ValueError("no map given; pass at least one (T, T) two-time map")
    out = torch.empty(len(maps), 1, side, side)
    for i, C in enumerate(maps):
        try:
            x = torch.from_numpy(normalise_map(C)).float()[None, None]  # (1, 1, T, T)
        except ValueError as err:
            raise ValueError(f"map {i}: {err}") from None
        out[i] = resize(x, side)[0].clamp(-2.0, 3.0)  # noise on decorrelated entries stays bounded
    grid = torch.linspace(0.0, 1.0, side)
    lag = (grid[None, :] - grid[:, None]).abs()  # (side, side)
    age = (grid[None, :] + grid[:, None]) / 2
    coords = torch.stack([lag, age])[None].expand(len(maps), -1, -1, -1)  # (N, 2, side, side)
    return torch.cat([out, coords], dim=1)


# -- networks -----------------------------------------------------------------------------------
def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, c), c)  # float-only state (checkpointable), batch-independent


class Features(nn.Module):
    """(B, 3, side, side) -> (B, feature_dim): stride-2 conv blocks, global mean pool, linear."""

    def __init__(self, config: XPCSConfig):
        super().__init__()
        blocks, cin = [], IN_CHANNELS
        for cout in config.widths:
            blocks += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), _norm(cout), nn.SiLU()]
            cin = cout
        self.convs = nn.Sequential(*blocks)
        self.out = nn.Linear(cin, config.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(x).mean(dim=(2, 3)))  # (B, C, h, w) -> (B, C) -> (B, F)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, n_out))


class Regressor(nn.Module):
    """Features + MLP head -> normalised parameters (B, P) (unbounded; clipped on denormalise)."""

    def __init__(self, config: XPCSConfig):
        super().__init__()
        self.features = Features(config)
        self.head = _mlp(config.feature_dim, config.hidden, len(config.param_names))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.silu(self.features(x)))


class Surrogate(nn.Module):
    """Normalised parameters (B, P) -> non-equilibrium measure (B,) in (0, 1)."""

    def __init__(self, config: XPCSConfig):
        super().__init__()
        self.net = _mlp(len(config.param_names), config.hidden, 1)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(p)).squeeze(-1)


class XPCSRegressor(nn.Module):
    """What one trained study holds: ``n_members`` regressors (seeds) and one surrogate.

    The members are the adapted models; one record keeps the ensemble, its normalisation
    (``config.ranges``) and the surrogate together, so a stored model predicts on its own.
    """

    def __init__(self, config: XPCSConfig):
        super().__init__()
        self.config = config.validate()
        self.members = nn.ModuleList(Regressor(config) for _ in range(config.n_members))
        self.surrogate = Surrogate(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, side, side) -> (n_members, B, P) normalised predictions."""
        return torch.stack([m(x) for m in self.members])
