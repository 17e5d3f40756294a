"""Owner of ``projections/<id>``: a 2-D/3-D map of latents and the projection that made it.

Layout: array ``embedding`` (N, 2|3); the fitted projector as arrays ``projector_<name>`` plus
metadata ``projector`` (its small fitted state), so new latents are placed without refitting;
metadata ``latents_id``, ``dataset_id``, ``model_id`` and what the writer adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.store import Store
from core.maps.projection import Projector

KIND = "projections"
EMBEDDING = "embedding"
PROJECTOR_PREFIX = "projector_"  # the fitted projector's arrays
PROJECTOR = "projector"  # metadata key of its fitted state


@dataclass(frozen=True)
class Projection:
    id: str
    embedding: np.ndarray  # (N, 2|3)
    metadata: dict

    @property
    def latents_id(self) -> str:
        return self.metadata["latents_id"]

    @property
    def dataset_id(self) -> str:
        return self.metadata["dataset_id"]

    @property
    def model_id(self) -> str:
        return self.metadata["model_id"]


def write_projection(store: Store, embedding: np.ndarray, projector: Projector,
                     metadata: Mapping[str, Any]) -> str:
    """Store a map and its fitted projector; ``metadata`` names latents_id, dataset_id, model_id."""
    arrays, fitted = projector.to_arrays()
    return store.put(KIND, arrays={EMBEDDING: embedding, **{PROJECTOR_PREFIX + k: v for k, v in arrays.items()}},
                     metadata={**metadata, PROJECTOR: fitted})


def read_embedding(store: Store, projection_id: str) -> np.ndarray:
    return store.array(KIND, projection_id, EMBEDDING)


def read_projection(store: Store, projection_id: str) -> Projection:
    return Projection(projection_id, read_embedding(store, projection_id), store.metadata(KIND, projection_id))


def read_projector(store: Store, projection_id: str) -> Projector:
    """The fitted projection of a stored map, ready to place new latents without refitting."""
    meta = store.metadata(KIND, projection_id)
    arrays = {
        name[len(PROJECTOR_PREFIX):]: store.array(KIND, projection_id, name)
        for name in store.array_names(KIND, projection_id)
        if name.startswith(PROJECTOR_PREFIX)
    }
    return Projector.from_arrays(arrays, meta[PROJECTOR])
