"""Owner of ``clusterings/<id>``: cluster labels of a map's points.

Layout: arrays ``labels`` (N,) int (−1 noise) and ``probabilities`` (N,) membership strengths;
metadata ``projection_id``, ``latents_id``, ``dataset_id``, ``model_id``, ``params`` (with
``space``: "projection" or "latent"), ``n_clusters``, ``noise_fraction``, ``quality``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.store import Store

KIND = "clusterings"
LABELS, PROBABILITIES = "labels", "probabilities"


@dataclass(frozen=True)
class Clustering:
    id: str
    labels: np.ndarray  # (N,)
    probabilities: np.ndarray  # (N,)
    metadata: dict

    @property
    def projection_id(self) -> str | None:
        return self.metadata.get("projection_id")

    @property
    def params(self) -> dict:
        return dict(self.metadata.get("params") or {})


def write_clustering(store: Store, labels: np.ndarray, probabilities: np.ndarray,
                     metadata: Mapping[str, Any]) -> str:
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels for {len(probabilities)} probabilities")
    return store.put(KIND, arrays={LABELS: labels, PROBABILITIES: probabilities}, metadata=metadata)


def read_labels(store: Store, clustering_id: str) -> np.ndarray:
    return store.array(KIND, clustering_id, LABELS)


def read_clustering(store: Store, clustering_id: str) -> Clustering:
    return Clustering(clustering_id, read_labels(store, clustering_id),
                      store.array(KIND, clustering_id, PROBABILITIES), store.metadata(KIND, clustering_id))
