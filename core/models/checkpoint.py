"""Models in and out of Tiled (and local files) without pickles.

In Tiled a model is one flat float32 array ``weights`` plus metadata: the family, the config
dataclass as a dict, and the name and shape of every tensor in state-dict order, so loading is
``Family(Config(**config))`` then slicing the flat array back into tensors. Nothing executable
is ever stored, so opening a model someone else trained cannot run their code. A GAN may carry
``samples``: uint8 (n, C, r, r) images it drew, so a page shows them without torch.

This module owns the ``models`` kind (core.data.results lists the owner of every kind).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from core.models.flow_matching import FlowMatching, FlowMatchingConfig
from core.models.gan import GAN, GANConfig
from core.models.latent_diffusion import LatentDiffusion, LatentDiffusionConfig
from core.models.vae import VAE, VAEConfig
from core.models.xpcs_regressor import XPCSConfig, XPCSRegressor

KIND = "models"
WEIGHTS, SAMPLES = "weights", "samples"

# family -> (module class, config dataclass). A "gan" is one GAN module: generator, critic and
# the growth buffers (level, alpha) in one flat array, so a half-grown model resumes its stage.
FAMILIES: dict[str, tuple[type[nn.Module], type]] = {
    "vae": (VAE, VAEConfig),
    "gan": (GAN, GANConfig),
    "xpcs": (XPCSRegressor, XPCSConfig),  # parameters from two-time maps (core.xpcs.adapt)
    # latent samplers of a map (core.synthesis): coordinate -> latents
    "flow_matching": (FlowMatching, FlowMatchingConfig),
    "latent_diffusion": (LatentDiffusion, LatentDiffusionConfig),
}


def build_model(family: str, config: dict) -> nn.Module:
    """An untrained model of a registered family from its config dict."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} must be one of {sorted(FAMILIES)}")
    model_cls, config_cls = FAMILIES[family]
    return model_cls(config_cls(**config))


def state_to_arrays(module: nn.Module) -> tuple[np.ndarray, list[dict]]:
    """Flatten a state dict into one float32 array and a ``[{"name", "shape"}]`` index."""
    parts, tensors = [], []
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            raise ValueError(
                f"state entry {name!r} has dtype {t.dtype}; only float state can be stored "
                "(use GroupNorm/LayerNorm instead of BatchNorm, whose counters are integers)"
            )
        parts.append(t.detach().to("cpu", torch.float32).reshape(-1).numpy())
        tensors.append({"name": name, "shape": list(t.shape)})
    flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return flat, tensors


def arrays_to_state(flat: np.ndarray, tensors: list[dict]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`state_to_arrays`; checks the sizes add up before slicing."""
    flat = np.asarray(flat, dtype=np.float32).reshape(-1)
    sizes = [int(np.prod(t["shape"], dtype=np.int64)) for t in tensors]
    if sum(sizes) != flat.size:
        raise ValueError(
            f"weights array has {flat.size} values but the tensor index describes {sum(sizes)}: "
            "the model record is damaged or was written by another version; retrain or re-save it"
        )
    state, start = {}, 0
    for t, size in zip(tensors, sizes):
        state[t["name"]] = torch.from_numpy(flat[start : start + size].copy()).reshape(t["shape"])
        start += size
    return state


def _family_of(model: nn.Module) -> str:
    for family, (model_cls, _) in FAMILIES.items():
        if type(model) is model_cls:
            return family
    raise ValueError(f"{type(model).__name__} is not a registered family ({sorted(FAMILIES)})")


def save_model(store: Any, model: nn.Module, *, family: str = "vae", metadata: dict,
               samples: np.ndarray | None = None) -> str:
    """Write ``model`` (and the ``samples`` it drew, if any) to ``models/<id>``; return the id.

    ``metadata`` carries what produced it (dataset id, TrainParams, history, metrics); it must
    not use the keys ``family``, ``config`` or ``tensors``.
    """
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} must be one of {sorted(FAMILIES)}")
    clash = {"family", "config", "tensors"} & set(metadata)
    if clash:
        raise ValueError(f"metadata keys {sorted(clash)} are reserved by save_model; rename them")
    flat, tensors = state_to_arrays(model)
    arrays = {WEIGHTS: flat} if samples is None else {WEIGHTS: flat, SAMPLES: samples}
    return store.put(
        KIND,
        arrays=arrays,
        metadata={"family": family, "config": asdict(model.config), "tensors": tensors, **metadata},
    )


def load_model(store: Any, model_id: str, device: torch.device | str | None = None) -> nn.Module:
    """Rebuild a stored model, in eval mode, on ``device`` (default CPU)."""
    meta = store.metadata(KIND, model_id)
    if meta.get("complete") is False:
        raise ValueError(
            f"model {model_id!r} was not completely written (its save was interrupted): "
            "train or save it again"
        )
    model = build_model(meta.get("family", "vae"), dict(meta["config"]))
    flat = store.array(KIND, model_id, WEIGHTS)
    model.load_state_dict(arrays_to_state(flat, list(meta["tensors"])))
    return model.eval().to(device or "cpu")


def read_samples(store: Any, model_id: str) -> np.ndarray | None:
    """The images a stored GAN drew, uint8 (n, C, r, r), or None when it stored none."""
    return store.array(KIND, model_id, SAMPLES) if SAMPLES in store.array_names(KIND, model_id) else None


def save_file(model: nn.Module, path: str | Path, *, half: bool = False, provenance: dict | None = None) -> Path:
    """Export to a local ``.pt`` file readable with ``torch.load(weights_only=True)``.

    ``half`` stores float16 weights (half the bytes, for a model shipped in the repository;
    loading casts them back to float32); ``provenance`` (plain data: how it was trained) is
    read back by :func:`file_provenance`.
    """
    path = Path(path)
    state = {k: (v.detach().cpu().half() if half else v.detach().cpu()) for k, v in model.state_dict().items()}
    ckpt = {"family": _family_of(model), "config": asdict(model.config), "state_dict": state,
            "provenance": provenance or {}}
    torch.save(ckpt, path)
    return path


def _read_file(path: str | Path) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not {"family", "config", "state_dict"} <= set(ckpt):
        raise ValueError(
            f"{str(path)!r} is not a Morphospace model file (expected keys family, config, "
            "state_dict); export one with core.models.checkpoint.save_file"
        )
    return ckpt


def file_provenance(path: str | Path) -> dict:
    """What :func:`save_file` was told about how the model was made ({} when nothing)."""
    return dict(_read_file(path).get("provenance", {}))


def load_file(path: str | Path, device: torch.device | str | None = None) -> nn.Module:
    """Load a :func:`save_file` export in eval mode; refuses anything but tensors and plain data."""
    ckpt = _read_file(path)
    model = build_model(ckpt["family"], ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval().to(device or "cpu")
