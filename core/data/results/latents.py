"""Owner of ``latents/<id>``: posterior means and log-variances of a dataset under a model.

Layout: arrays ``mu`` (N, d) and ``logvar`` (N, d); metadata ``dataset_id``, ``model_id``,
``latent_dim``, ``n`` and whatever the writer adds (params, provenance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.store import Store

KIND = "latents"
MU, LOGVAR = "mu", "logvar"


@dataclass(frozen=True)
class Latents:
    id: str
    mu: np.ndarray  # (N, d)
    logvar: np.ndarray  # (N, d)
    metadata: dict

    @property
    def dataset_id(self) -> str:
        return self.metadata["dataset_id"]

    @property
    def model_id(self) -> str:
        return self.metadata["model_id"]


def write_latents(store: Store, mu: np.ndarray, logvar: np.ndarray, metadata: Mapping[str, Any]) -> str:
    """Store (N, d) means and log-variances made from ``metadata['dataset_id']`` by ``['model_id']``."""
    mu, logvar = np.asarray(mu), np.asarray(logvar)
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ValueError(f"latents need mu and logvar of one (N, d) shape, got {mu.shape} and {logvar.shape}")
    return store.put(KIND, arrays={MU: mu, LOGVAR: logvar},
                     metadata={**metadata, "latent_dim": int(mu.shape[1]), "n": int(mu.shape[0])})


def read_means(store: Store, latents_id: str, index: Any = slice(None)) -> np.ndarray:
    """``mu`` (N, d), or the rows ``index`` (an int or a slice: Tiled takes no index lists) of it."""
    return store.array(KIND, latents_id, MU, index)


def count(store: Store, latents_id: str) -> int:
    """How many latent vectors there are, without reading them."""
    return int(store.finished(KIND, latents_id)[MU].shape[0])


def read_latents(store: Store, latents_id: str) -> Latents:
    return Latents(latents_id, read_means(store, latents_id), store.array(KIND, latents_id, LOGVAR),
                   store.metadata(KIND, latents_id))
