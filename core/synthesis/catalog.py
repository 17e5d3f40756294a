"""Samplers of a stored map: what is trained for it, and any sampler built ready to draw.

A *map* here is a clustering (core.data.results.clusterings): it names its projection, whose
latents and decoder model it was made from, so one id gives everything a sampler needs. Trained
samplers are ``models`` records of family ``flow_matching`` or ``latent_diffusion`` whose
metadata names the clustering they were trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.results import clusterings, latents, projections
from core.data.store import Store
from core.models.checkpoint import load_model
from core.synthesis.base import Sampler
from core.synthesis.baselines import KNNRetrieval, PCARandom
from core.synthesis.evaluate import heldout_mask
from core.synthesis.flow_matching import FlowMatchingSampler
from core.synthesis.latent_diffusion import LatentDiffusionSampler
from core.synthesis.umap_pca import UMAPGuidedPCA

TRAINED = {"flow_matching": FlowMatchingSampler, "latent_diffusion": LatentDiffusionSampler}
FITTED = {"umap_pca": UMAPGuidedPCA, "knn_retrieval": KNNRetrieval, "pca_random": PCARandom}
SAMPLERS = (*FITTED, *TRAINED)  # every sampler name


@dataclass(frozen=True)
class SynthesisMap:
    """One clustered 2-D map: latents (N, d), coords (N, 2), labels and membership (N,), and ids."""

    clustering_id: str
    latents: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    projection_id: str
    latents_id: str
    model_id: str  # the decoder
    dataset_id: str | None

    @property
    def ids(self) -> dict[str, Any]:
        """The ids a result made from this map records."""
        return {"clustering_id": self.clustering_id, "projection_id": self.projection_id,
                "latents_id": self.latents_id, "model_id": self.model_id, "dataset_id": self.dataset_id}

    def heldout(self) -> np.ndarray:
        """bool (N,): the evaluation rows no sampler is fitted on (core.synthesis.evaluate)."""
        return heldout_mask(len(self.latents))


def read_map(store: Store, clustering_id: str) -> SynthesisMap:
    """Latents, 2-D coordinates and clustering of a stored map, checked to belong together."""
    clustering = clusterings.read_clustering(store, clustering_id)
    if not clustering.projection_id:
        raise ValueError(f"clustering {clustering_id!r} names no projection: cluster a map, not bare latents")
    projection = projections.read_projection(store, clustering.projection_id)
    if projection.embedding.shape[1] != 2:
        raise ValueError(f"projection {projection.id!r} is {projection.embedding.shape[1]}-D: samplers need a 2-D map")
    z = latents.read_means(store, projection.latents_id)
    if not len(z) == len(projection.embedding) == len(clustering.labels):
        raise ValueError(f"map {clustering_id!r}: {len(z)} latents, {len(projection.embedding)} map points and "
                         f"{len(clustering.labels)} labels do not match")
    return SynthesisMap(clustering_id, z, projection.embedding.astype(np.float64), clustering.labels,
                        clustering.probabilities, projection.id, projection.latents_id, projection.model_id,
                        projection.metadata.get("dataset_id"))


def trained_for(store: Store, clustering_id: str) -> list[dict]:
    """Stored sampler models trained on this map, newest first (``{"id", "family", ...}``)."""
    return [item for item in store.list("models")
            if item.get("family") in TRAINED and item.get("clustering_id") == clustering_id]


def fit_sampler(name: str, synthesis_map: SynthesisMap, **params: Any) -> Sampler:
    """A training-free sampler (umap_pca, knn_retrieval, pca_random) fitted on the map's rows
    outside the held-out split (core.synthesis.evaluate)."""
    if name not in FITTED:
        raise ValueError(f"sampler {name!r} must be one of {sorted(FITTED)} (trained ones: load_sampler)")
    m, rows = synthesis_map, ~synthesis_map.heldout()
    sampler = FITTED[name](**params)
    if name == "umap_pca":
        return sampler.fit(m.latents[rows], m.coords[rows], m.labels[rows], m.probabilities[rows])
    return sampler.fit(m.latents[rows], m.coords[rows])


def load_sampler(store: Store, model_id: str, *, device: str | None = None, **params: Any) -> Sampler:
    """A stored flow matching or latent diffusion model as a Sampler. ``params`` (guidance,
    steps) override what its training run stored as its own (metadata ``sampling``)."""
    meta = store.metadata("models", model_id)
    family = meta.get("family")
    if family not in TRAINED:
        raise ValueError(f"model {model_id!r} is a {family!r} model, not a sampler ({sorted(TRAINED)})")
    return TRAINED[family](load_model(store, model_id, device), model_id=model_id,
                           **{**meta.get("sampling", {}), **params})
