"""Owner of ``synthesis_evaluations/<id>``: samplers scored on held-out points of one map.

Layout (core.synthesis.evaluate defines the scores):
  scores   sampler, query, latent_l2, pixel_mse, landing      one row per (sampler, query)
  summary  sampler, n, {latent_l2, pixel_mse, landing}_{mean, std}, best latent ℓ2 first
  query_rows    (Q,) int   rows of the map (its latents and embedding) used as queries
  query_coords  (Q, 2)     their map coordinates
Metadata: clustering_id, projection_id, latents_id, model_id (the decoder), samplers
({name: params}), params (the flow's), timings ({name: seconds}), provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.store import Store

KIND = "synthesis_evaluations"
SCORES, SUMMARY = "scores", "summary"
QUERY_ROWS, QUERY_COORDS = "query_rows", "query_coords"


@dataclass(frozen=True)
class SynthesisEvaluation:
    id: str
    scores: pd.DataFrame
    summary: pd.DataFrame
    query_rows: np.ndarray  # (Q,)
    query_coords: np.ndarray  # (Q, 2)
    metadata: dict


def write_evaluation(store: Store, scores: pd.DataFrame, summary: pd.DataFrame, query_rows: np.ndarray,
                     query_coords: np.ndarray, metadata: Mapping[str, Any]) -> str:
    if len(query_rows) != len(query_coords):
        raise ValueError(f"{len(query_rows)} query rows for {len(query_coords)} coordinates")
    return store.put(KIND, tables={SCORES: scores, SUMMARY: summary},
                     arrays={QUERY_ROWS: np.asarray(query_rows, np.int64),
                             QUERY_COORDS: np.asarray(query_coords, np.float32)},
                     metadata=metadata)


def read_evaluation(store: Store, evaluation_id: str) -> SynthesisEvaluation:
    return SynthesisEvaluation(
        evaluation_id, store.table(KIND, evaluation_id, SCORES), store.table(KIND, evaluation_id, SUMMARY),
        store.array(KIND, evaluation_id, QUERY_ROWS), store.array(KIND, evaluation_id, QUERY_COORDS),
        store.metadata(KIND, evaluation_id))
