"""Owner of ``xpcs_maps/<id>``: measured two-time maps, unlabelled (no model parameters).

What a regressor trained on simulations adapts to (core.xpcs.adapt). Maps of one record may
have different sides (the shared BNL map is 350 × 350, the yolk-plasma one 50 × 50), so each
is its own array.

Layout:
  map_000, map_001, ...   (T_i, T_i) float64   C(t1, t2) of map i, as measured
Metadata: n_maps, sides [T_i], sources [where map i came from], measures [core.xpcs.two_time.
non_equilibrium of map i, diagonal left out], name, and whatever the writer adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.store import Store
from core.xpcs.two_time import non_equilibrium

KIND = "xpcs_maps"


def map_name(i: int) -> str:
    return f"map_{i:03d}"


@dataclass(frozen=True)
class MeasuredMaps:
    id: str
    maps: list[np.ndarray]  # (T_i, T_i) each
    metadata: dict

    @property
    def measures(self) -> list[float]:
        return list(self.metadata["measures"])


def write_maps(store: Store, maps: Sequence[np.ndarray], sources: Sequence[str],
               metadata: Mapping[str, Any] = {}) -> str:
    """Store square maps (any sides) with where each came from; returns the record's id."""
    maps = [np.asarray(m, dtype=np.float64) for m in maps]
    if not maps or len(sources) != len(maps):
        raise ValueError(f"give one source per map and at least one map (got {len(maps)} maps, "
                         f"{len(sources)} sources)")
    for i, m in enumerate(maps):
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 3 or not np.isfinite(m).all():
            raise ValueError(f"map {i} ({sources[i]}) of shape {m.shape} must be a finite square "
                             "two-time map (T, T) with T >= 3")
    return store.put(KIND, arrays={map_name(i): m for i, m in enumerate(maps)}, metadata={
        **metadata, "n_maps": len(maps), "sides": [int(m.shape[0]) for m in maps],
        "sources": [str(s) for s in sources], "measures": [non_equilibrium(m) for m in maps]})


def ingest_npy(store: Store, paths: Sequence[str | Path], *, name: str | None = None) -> str:
    """Store the two-time maps of ``.npy`` files (e.g. the shared measured ones), one map per file."""
    paths = [Path(p) for p in paths]
    maps = []
    for p in paths:
        try:
            maps.append(np.load(p, allow_pickle=False))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read {p} as a .npy two-time map ({err}); give a (T, T) array file") from None
    return write_maps(store, maps, [p.name for p in paths], {"name": name or ", ".join(p.stem for p in paths)})


def read_maps(store: Store, maps_id: str) -> MeasuredMaps:
    meta = store.metadata(KIND, maps_id)
    maps = [store.array(KIND, maps_id, map_name(i)) for i in range(int(meta["n_maps"]))]
    return MeasuredMaps(maps_id, maps, meta)
