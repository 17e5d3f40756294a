"""Physical parameters of experimental two-time maps: train on simulations, adapt with CORAL.

The second half of the grain-boundary XPCS study (DESIGN §1, XPCS):

1. a surrogate MLP learns parameters -> non-equilibrium measure on the simulated maps, then is
   frozen;
2. each ensemble member (one seed) learns maps -> normalised parameters on 90 % of the
   simulated maps (mean squared error), the other 10 % held out for R²;
3. it is then adapted on unlabelled experimental maps: the supervised loss on simulated
   batches plus CORAL (Sun & Saenko, "Deep CORAL", ECCV workshops 2016), which matches the
   feature means and covariances of a simulated and an experimental batch,
   ``||mu_s - mu_e||^2 / (4 d) + ||C_s - C_e||_F^2 / (4 d^2)`` (d features), plus the frozen
   surrogate tying the predictions on experimental maps to their measured non-equilibrium
   measure, ``(surrogate(p_e) - m_e)^2``;
4. optionally, at prediction time, each map's copy of the head is fine-tuned for a few steps
   on that map's surrogate consistency alone.

Uncertainty is the spread over the ensemble (mean ± sd per parameter, in physical units).
The measure defaults to :func:`core.xpcs.two_time.non_equilibrium` of the network's input
channel (the normalised map resized to ``side``): the same resampling for both domains, and the
antialiased resize averages some speckle noise away, which the measure otherwise counts as
non-equilibrium. Pass ``sim_measures``/``exp_measures`` to use another (e.g. noise-floor
corrected) measure.

Example
-------
>>> adapter = ParameterAdapter(ranges=PARAM_RANGES, epochs=20).fit(sim_maps, sim_params, exp_maps)
>>> mean, sd = adapter.predict(exp_maps)           # (N, 4) each, in D, kappa, c, T units
>>> adapter.metrics_["r2_adapted"]                 # held-out simulated R² per parameter
>>> f_before, f_after = adapter.features(maps, adapted=False), adapter.features(maps)
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.models.device import pick_device
from core.limits import BATCH_SIZE, EPOCHS, LR_MAX
from core.models.train import check_whole, split_train_val
from core.models.xpcs_regressor import (
    XPCSConfig, XPCSRegressor, denormalise, normalise, prepare_maps,
)
from core.xpcs.two_time import non_equilibrium

log = logging.getLogger(__name__)


def coral_loss(fs: torch.Tensor, fe: torch.Tensor) -> torch.Tensor:
    """Deep CORAL between feature batches (Bs, d) and (Be, d): mean term plus covariance term.

    ``||mu_s - mu_e||^2 / (4 d) + ||C_s - C_e||_F^2 / (4 d^2)``, C the unbiased covariance;
    each term is a mean over its entries, as in Sun & Saenko's covariance term.
    """
    d = fs.shape[1]
    mean_term = (fs.mean(0) - fe.mean(0)).pow(2).sum() / (4 * d)
    cov_term = (torch.cov(fs.T) - torch.cov(fe.T)).pow(2).sum() / (4 * d * d)
    return mean_term + cov_term


def r2_scores(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column, ``1 - SS_res / SS_tot`` (0 = predicting the mean)."""
    ss_res = ((truth - pred) ** 2).sum(0)
    ss_tot = ((truth - truth.mean(0)) ** 2).sum(0)
    return 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)


def map_measures(x: torch.Tensor) -> np.ndarray:
    """Non-equilibrium measure of each prepared map's first channel (N,), in [0, 1]."""
    return np.array([non_equilibrium(m) for m in x[:, 0].double().numpy()])


class ParameterAdapter:
    """Simulation-trained, CORAL-adapted regressor of physical parameters (scikit-learn style).

    Parameters
    ----------
    ranges : mapping name -> (lo, hi)
        Training ranges of the simulated parameters, in the order of ``sim_params`` columns
        (a simulator's ``PARAM_RANGES``); ``log_params`` are normalised on log10.
    side, n_members, base_channels, feature_dim, hidden : see ``XPCSConfig``.
    epochs : supervised epochs on the simulated maps per member.
    adapt_epochs : CORAL + surrogate epochs per member (0, or no experimental maps: no adaptation).
    surrogate_epochs : epochs of the surrogate (parameters -> measure).
    coral_weight, surrogate_weight : weights of the two adaptation terms beside the supervised loss.
    finetune_steps, finetune_lr : per-map head fine-tuning in :meth:`predict` (0: off).
    val_fraction : held-out simulated maps for R².
    seed : member k uses seed + k; the split and the surrogate use seed.
    device : "auto", "cpu", "cuda" or "cuda:N" (``core.models.device.pick_device``).

    Attributes (after fit)
    ----------------------
    model_ : XPCSRegressor, adapted members + surrogate (what a checkpoint stores)
    vanilla_ : XPCSRegressor, the members before adaptation (same surrogate)
    metrics_ : dict, held-out R² per parameter (vanilla, adapted), surrogate error, CORAL before/after
    history_ : list of per-epoch dicts (phase, member, epoch, loss terms, seconds)
    stopped_ : bool, True when ``should_stop`` ended the run early
    val_index_ : indices of the held-out simulated maps
    """

    def __init__(self, *, ranges: Mapping[str, Sequence[float]] | None = None,
                 log_params: Sequence[str] = ("D",), side: int = 32, n_members: int = 3,
                 base_channels: int = 16, feature_dim: int = 64, hidden: int = 64,
                 epochs: int = 30, adapt_epochs: int = 10, surrogate_epochs: int = 300,
                 batch_size: int = 64, lr: float = 2e-3, coral_weight: float = 1.0,
                 surrogate_weight: float = 1.0, finetune_steps: int = 0, finetune_lr: float = 1e-3,
                 val_fraction: float = 0.1, seed: int = 0, device: str = "auto"):
        self.ranges, self.log_params, self.side, self.n_members = ranges, log_params, side, n_members
        self.base_channels, self.feature_dim, self.hidden = base_channels, feature_dim, hidden
        self.epochs, self.adapt_epochs, self.surrogate_epochs = epochs, adapt_epochs, surrogate_epochs
        self.batch_size, self.lr = batch_size, lr
        self.coral_weight, self.surrogate_weight = coral_weight, surrogate_weight
        self.finetune_steps, self.finetune_lr = finetune_steps, finetune_lr
        self.val_fraction, self.seed, self.device = val_fraction, seed, device

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, sim_maps: Sequence[np.ndarray], sim_params: np.ndarray,
            exp_maps: Sequence[np.ndarray] | None = None, *, sim_measures: np.ndarray | None = None,
            exp_measures: np.ndarray | None = None, on_epoch: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> ParameterAdapter:
        """Train on ``sim_maps`` (N, with ``sim_params`` (N, P) physical values), adapt to ``exp_maps``.

        ``on_epoch`` gets ``{"phase", "member", "epoch", "epochs", "fraction", "loss", ...}``
        after every epoch; ``should_stop`` is polled after every epoch and ends the run early:
        the members not yet started are dropped, the others keep the epochs done, and
        ``stopped_`` is True.
        """
        self._validate()
        config = XPCSConfig.from_ranges(
            self.ranges, log_params=self.log_params, side=self.side, n_members=self.n_members,
            base_channels=self.base_channels, feature_dim=self.feature_dim, hidden=self.hidden)
        sim_params = np.asarray(sim_params, dtype=np.float64)
        if sim_params.shape != (len(sim_maps), len(config.param_names)):
            raise ValueError(f"sim_params of shape {sim_params.shape} must be ({len(sim_maps)}, "
                             f"{len(config.param_names)}): one row of {config.param_names} per map")
        device = pick_device(self.device)
        self._stop, self._on_epoch = should_stop or (lambda: False), on_epoch
        adapting = exp_maps is not None and len(exp_maps) > 0 and self.adapt_epochs > 0
        self._n_phases = 1 + self.n_members * (2 if adapting else 1)
        self._phase_done, self.stopped_ = 0, False

        xs = prepare_maps(sim_maps, config.side)  # (N, 3, side, side)
        ys = torch.from_numpy(normalise(sim_params, config)).float()  # (N, P) in [0, 1]
        ms = torch.from_numpy(np.asarray(map_measures(xs) if sim_measures is None else sim_measures,
                                         dtype=np.float32))
        gen = np.random.default_rng(self.seed)
        train_idx, val_idx = split_train_val(len(xs), self.val_fraction, gen)
        self.val_index_ = val_idx
        xe = me = None
        if adapting:
            xe = prepare_maps(exp_maps, config.side)
            me = torch.from_numpy(np.asarray(map_measures(xe) if exp_measures is None else exp_measures,
                                             dtype=np.float32))
            if len(me) != len(xe):
                raise ValueError(f"exp_measures has {len(me)} values for {len(xe)} experimental maps")

        self.history_: list[dict] = []
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed)
            model = XPCSRegressor(config).to(device)
            sur_err = self._fit_surrogate(model.surrogate, ys[train_idx], ms[train_idx], ys[val_idx],
                                          ms[val_idx], device)
            vanilla = copy.deepcopy(model)
            for k, member in enumerate(model.members):
                if self.stopped_:
                    del model.members[k:], vanilla.members[k:]
                    config.n_members = vanilla.config.n_members = k
                    break
                torch.manual_seed(self.seed + k)
                member.apply(_reset)
                self._fit_supervised(member, xs[train_idx], ys[train_idx], device, k)
                vanilla.members[k].load_state_dict(member.state_dict())
                if xe is not None and not self.stopped_:
                    self._fit_adapted(member, model.surrogate, xs[train_idx], ys[train_idx], xe, me, device, k)
        self.config_, self.model_, self.vanilla_ = config, model.eval(), vanilla.eval()
        self.metrics_ = self._metrics(xs[val_idx], ys[val_idx], xe, sur_err)
        return self

    def _validate(self) -> None:
        """Raise ValueError naming the bad parameter, its value and the allowed range."""
        if self.ranges is None:
            raise ValueError("ranges=None: pass the simulated parameters' ranges, e.g. "
                             "core.xpcs.simulate.PARAM_RANGES")
        check_whole("epochs", self.epochs, EPOCHS)
        check_whole("batch_size", self.batch_size, BATCH_SIZE)
        for name in ("adapt_epochs", "surrogate_epochs", "finetune_steps"):
            check_whole(name, getattr(self, name), (0, EPOCHS[1]))
        for name, hi in (("lr", LR_MAX), ("finetune_lr", LR_MAX)):
            if not (isinstance(getattr(self, name), (int, float)) and 0 < getattr(self, name) <= hi):
                raise ValueError(f"{name}={getattr(self, name)!r} must be in (0, {hi:g}]")
        for name in ("coral_weight", "surrogate_weight"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) >= 0):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a number >= 0")
        if not (isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1):
            raise ValueError(f"val_fraction={self.val_fraction!r} must be in [0, 1)")

    def _emit(self, row: dict) -> None:
        row["fraction"] = (self._phase_done + row["epoch"] / row["epochs"]) / self._n_phases
        self.history_.append(row)
        log.info("%s", row)
        if self._on_epoch is not None:
            self._on_epoch(row)

    def _batches(self, n: int) -> list[torch.Tensor]:
        order = torch.randperm(n)
        return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)
                if len(order[i : i + self.batch_size]) > 1]  # CORAL's covariance needs >= 2

    def _fit_surrogate(self, surrogate, y, m, y_val, m_val, device) -> float | None:
        """Full-batch Adam on parameters -> measure; returns the held-out mean absolute error."""
        opt = torch.optim.Adam(surrogate.parameters(), lr=self.lr * 5)  # a tiny MLP on 4 inputs, full batch
        y, m = y.to(device), m.to(device)
        t0 = time.perf_counter()
        for epoch in range(1, self.surrogate_epochs + 1):
            loss = F.mse_loss(surrogate(y), m)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if epoch % 50 == 0 or epoch == self.surrogate_epochs:
                self._emit({"phase": "surrogate", "member": None, "epoch": epoch,
                            "epochs": self.surrogate_epochs, "loss": loss.item(),
                            "seconds": time.perf_counter() - t0})
        self._phase_done += 1
        surrogate.requires_grad_(False).eval()
        with torch.no_grad():
            return float((surrogate(y_val.to(device)) - m_val.to(device)).abs().mean()) if len(y_val) else None

    def _fit_supervised(self, member, x, y, device, k) -> None:
        opt = torch.optim.Adam(member.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.epochs))
        for epoch in range(1, self.epochs + 1):
            t0, total, member = time.perf_counter(), 0.0, member.train()
            for idx in self._batches(len(x)):
                loss = F.mse_loss(member(x[idx].to(device)), y[idx].to(device))
                _step(opt, loss)
                total += loss.item() * len(idx)
            sched.step()
            self._emit({"phase": "train", "member": k, "epoch": epoch, "epochs": self.epochs,
                        "loss": total / len(x), "seconds": time.perf_counter() - t0})
            if self._stop():
                self.stopped_ = True
                break
        self._phase_done += 1

    def _fit_adapted(self, member, surrogate, xs, ys, xe, me, device, k) -> None:
        opt = torch.optim.Adam(member.parameters(), lr=self.lr / 4)  # adapt from the trained weights, not retrain
        for epoch in range(1, self.adapt_epochs + 1):
            t0, sums, member = time.perf_counter(), np.zeros(4), member.train()
            for idx in self._batches(len(xs)):
                e_idx = torch.randint(len(xe), (len(idx),))  # experimental batch of the same size
                fs = member.features(xs[idx].to(device))
                fe = member.features(xe[e_idx].to(device))
                sup = F.mse_loss(member.head(F.silu(fs)), ys[idx].to(device))
                coral = coral_loss(fs, fe)
                tie = F.mse_loss(surrogate(member.head(F.silu(fe))), me[e_idx].to(device))
                loss = sup + self.coral_weight * coral + self.surrogate_weight * tie
                _step(opt, loss)
                sums += len(idx) * np.array([loss.item(), sup.item(), coral.item(), tie.item()])
            sums /= len(xs)
            self._emit({"phase": "adapt", "member": k, "epoch": epoch, "epochs": self.adapt_epochs,
                        "loss": sums[0], "supervised": sums[1], "coral": sums[2], "surrogate": sums[3],
                        "seconds": time.perf_counter() - t0})
            if self._stop():
                self.stopped_ = True
                break
        self._phase_done += 1

    def _metrics(self, x_val, y_val, xe, sur_err) -> dict:
        truth = y_val.numpy()
        out = {"n_val": len(truth), "surrogate_val_mae": sur_err}
        for name, model in (("vanilla", self.vanilla_), ("adapted", self.model_)):
            if len(truth) > 1:
                pred = self._normalised(model, x_val).mean(0)
                r2 = [None if np.isnan(v) else float(v) for v in r2_scores(truth, pred)]  # NaN: constant truth
                out[f"r2_{name}"] = dict(zip(self.config_.param_names, r2))
            if xe is not None and len(x_val) > 1:
                fs, fe = self._features(model, x_val), self._features(model, xe)
                out[f"coral_{name}"] = float(coral_loss(torch.from_numpy(fs), torch.from_numpy(fe)))
        return out

    # -- using a fitted model -------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: XPCSRegressor, *, device: str = "auto") -> ParameterAdapter:
        """A fitted adapter around a stored model (``core.models.checkpoint.load_model``)."""
        cfg = model.config
        adapter = cls(ranges=dict(zip(cfg.param_names, cfg.ranges)), log_params=cfg.log_params,
                      side=cfg.side, n_members=cfg.n_members, device=device)
        adapter.config_, adapter.model_ = cfg, model.eval().to(pick_device(device))
        return adapter

    def _check_fitted(self, adapted: bool) -> XPCSRegressor:
        if not hasattr(self, "model_"):
            raise ValueError("this ParameterAdapter is not fitted: call fit first")
        if not adapted and getattr(self, "vanilla_", None) is None:
            raise ValueError("adapted=False needs the vanilla members, which only fit keeps "
                             "(a stored model holds the adapted ones)")
        return self.model_ if adapted else self.vanilla_

    def _device(self, model) -> torch.device:
        return next(model.parameters()).device

    def _normalised(self, model, x: torch.Tensor) -> np.ndarray:
        """(n_members, N, P) normalised predictions, in batches."""
        with torch.no_grad():
            parts = [model(x[i : i + 512].to(self._device(model))).cpu() for i in range(0, len(x), 512)]
        return torch.cat(parts, dim=1).numpy()

    def _features(self, model, x: torch.Tensor, member: int = 0) -> np.ndarray:
        net = model.members[member].features
        with torch.no_grad():
            return torch.cat([net(x[i : i + 512].to(self._device(model))).cpu()
                              for i in range(0, len(x), 512)]).numpy()

    def predict(self, maps: Sequence[np.ndarray], *, measures: np.ndarray | None = None,
                adapted: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd over the ensemble of each map's parameters, (N, P) each, physical units.

        With ``finetune_steps > 0`` each map's copy of every member's head is first fine-tuned on
        that map's surrogate consistency (``measures``, or the maps' own measure).
        """
        model = self._check_fitted(adapted)
        x = prepare_maps(maps, self.config_.side)
        if self.finetune_steps:
            m = map_measures(x) if measures is None else np.asarray(measures, dtype=np.float32)
            norm = self._finetuned(model, x, m)
        else:
            norm = self._normalised(model, x)
        values = np.stack([denormalise(p, self.config_) for p in norm])  # (members, N, P)
        return values.mean(0), values.std(0)

    def _finetuned(self, model, x: torch.Tensor, measures: np.ndarray) -> np.ndarray:
        device, out = self._device(model), []
        for member in model.members:
            rows = []
            with torch.no_grad():
                feats = F.silu(member.features(x.to(device)))  # (N, F), fixed
            for f, m in zip(feats, measures):
                head = copy.deepcopy(member.head).requires_grad_(True)
                opt = torch.optim.Adam(head.parameters(), lr=self.finetune_lr)
                target = torch.tensor([float(m)], device=device)
                with torch.enable_grad():
                    for _ in range(self.finetune_steps):
                        _step(opt, F.mse_loss(model.surrogate(head(f[None])), target))
                with torch.no_grad():
                    rows.append(head(f[None])[0].cpu())
            out.append(torch.stack(rows))
        return torch.stack(out).numpy()

    def features(self, maps: Sequence[np.ndarray], *, adapted: bool = True, member: int = 0) -> np.ndarray:
        """Feature vectors (N, feature_dim) of one member, for a UMAP of both domains."""
        model = self._check_fitted(adapted)
        return self._features(model, prepare_maps(maps, self.config_.side), member)

    def score(self, maps: Sequence[np.ndarray], params: np.ndarray, *, adapted: bool = True) -> dict[str, float]:
        """R² per parameter of the ensemble mean, in normalised units (log10 for log_params)."""
        model = self._check_fitted(adapted)
        pred = self._normalised(model, prepare_maps(maps, self.config_.side)).mean(0)
        truth = normalise(np.asarray(params, dtype=np.float64), self.config_)
        return dict(zip(self.config_.param_names, r2_scores(truth, pred).tolist()))


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged (loss={loss.item()!r}); lower lr and retrain")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _reset(module: torch.nn.Module) -> None:
    """Fresh weights for a member under the current torch seed (so members differ by seed only)."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
