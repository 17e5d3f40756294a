"""The arrays of the map the page shows, read from Tiled once and shared by the panels.

A map is a projection (its embedding) plus, optionally, a clustering of it (its labels); results
in Tiled never change once complete, so what is read is kept in small LRU caches keyed by store
and id. A projection with no clustering yet is still a map: every point has label -1 (shown as
"not clustered", not as HDBSCAN noise).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from components.records import MapRef
from core.data.reader import ResultStore
from core.data.results import clusterings, projections
from core.data.results.latents import read_means
from core.maps.selection import NOISE
from core.data.results.datasets import read_frames

log = logging.getLogger(__name__)

NO_CLUSTER = -1  # HDBSCAN's noise label, also used for every point of an unclustered map


def cluster_name(label: Any, clustered: bool = True) -> str:
    """How a point's cluster reads: "cluster 3", HDBSCAN's "noise", or "not clustered" on a map
    whose clustering was not run (its labels are all NO_CLUSTER too)."""
    if not clustered:
        return "not clustered"
    return "noise" if label in (NOISE, NO_CLUSTER) else f"cluster {label}"


class LRUCache:
    """A small thread-safe LRU: Dash serves callbacks from several threads."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: a slow read must not block other maps' hovers
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class MapData:
    """What one map needs from Tiled."""

    embedding: np.ndarray  # (N, 2|3) float32
    labels: np.ndarray  # (N,) int
    frames: pd.DataFrame | None  # one row per frame, or None when the dataset has no usable table
    note: str | None = None  # what is missing, for the user (the map still shows)
    projector: dict | None = None  # the projection's method and PCA variance (core.maps.projection.to_arrays)
    clustered: bool = True  # False: labels are all NO_CLUSTER because no clustering was run

    @property
    def n(self) -> int:
        return len(self.embedding)

    @property
    def dims(self) -> int:
        return self.embedding.shape[1]


maps, latents, thumbnails = LRUCache(2), LRUCache(2), LRUCache(512)


def cache_key(store: ResultStore, *ids: str | None) -> tuple:
    return (id(store), getattr(store, "project", None), *ids)


def map_id(current: MapRef | None) -> str | None:
    """The id that names a drawn map: its clustering, or its projection when it has none."""
    if not current:
        return None
    return current.get("clustering_id") or current.get("projection_id")


def load_map(store: ResultStore, current: MapRef) -> MapData:
    """Embedding, labels and frames table of the map named by a CURRENT value (cached)."""

    def read() -> MapData:
        embedding = projections.read_embedding(store, current["projection_id"]).astype(np.float32)
        if embedding.ndim != 2 or embedding.shape[1] not in (2, 3):
            raise ValueError(f"projection {current['projection_id']!r} has an embedding of shape "
                             f"{embedding.shape}, not (N, 2) or (N, 3)")
        notes = []
        if current.get("clustering_id"):
            labels = clusterings.read_labels(store, current["clustering_id"])
            if len(labels) != len(embedding):
                raise ValueError(f"clustering {current['clustering_id']!r} has {len(labels)} labels for "
                                 f"{len(embedding)} points of projection {current['projection_id']!r}")
        else:
            labels = np.full(len(embedding), NO_CLUSTER, dtype=np.int64)
            notes.append(f"Projection {current['projection_id']} has no clustering yet: run Cluster "
                         "in the Jobs panel to colour it by cluster.")
        frames = None
        try:
            frames = read_frames(store, current["dataset_id"])
        except Exception as exc:  # the map is still worth showing without its metadata
            notes.append(f"No frames table for dataset {current['dataset_id']} ({exc}): no metadata "
                          "to colour by or show.")
        if frames is not None and len(frames) != len(embedding):
            notes.append(f"The frames table of dataset {current['dataset_id']} has {len(frames)} rows "
                         f"for {len(embedding)} points; its metadata is not used.")
            frames = None
        note = " ".join(notes) or None
        if note:
            log.info("%s", note)
        projector = store.metadata(projections.KIND, current["projection_id"]).get(projections.PROJECTOR)
        return MapData(embedding, labels, frames, note, projector, bool(current.get("clustering_id")))

    key = cache_key(store, current.get("clustering_id"), current["projection_id"], current["dataset_id"])
    return maps.get(key, read)


def latent_means(store: ResultStore, latents_id: str) -> np.ndarray:
    """The map's latent means ``mu`` (N, d), float32 (cached)."""
    return latents.get(cache_key(store, latents_id),
                       lambda: read_means(store, latents_id).astype(np.float32))


def clear() -> None:
    for cache in (maps, latents, thumbnails):
        cache.clear()
